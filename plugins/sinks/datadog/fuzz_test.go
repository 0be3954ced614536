package datadog

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// The receiving side's types, decoded with encoding/json, independent of
// the encoders.

// DDMetric and DDServiceCheck are Veneur v14.2.0's (sinks/datadog), which
// it marshalled with encoding/json into the bodies of /api/v1/series and
// /api/v1/check_run.
type DDMetric struct {
	Name       string        `json:"metric"`
	Value      [1][2]float64 `json:"points"`
	Tags       []string      `json:"tags,omitempty"`
	MetricType string        `json:"type"`
	Hostname   string        `json:"host,omitempty"`
	DeviceName string        `json:"device_name,omitempty"`
	Interval   int32         `json:"interval,omitempty"`
}

type DDServiceCheck struct {
	Name      string   `json:"check"`
	Status    int      `json:"status"`
	Hostname  string   `json:"host_name"`
	Timestamp int64    `json:"timestamp,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Message   string   `json:"message,omitempty"`
}

// checkRun is DDServiceCheck with tags always written, as CheckRuns does.
type checkRun struct {
	Name      string   `json:"check"`
	Status    int      `json:"status"`
	Hostname  string   `json:"host_name"`
	Timestamp int64    `json:"timestamp,omitempty"`
	Tags      []string `json:"tags"`
	Message   string   `json:"message,omitempty"`
}

// metricPayload and the types below are Datadog's v2 MetricPayload
// (datadog-api-client-go, api/datadogV2), fields in SeriesV2's order.
type metricPayload struct {
	Series []metricSeries `json:"series"`
}

type metricSeries struct {
	Metric    string           `json:"metric"`
	Type      int32            `json:"type"`
	Points    []metricPoint    `json:"points"`
	Interval  int64            `json:"interval,omitempty"`
	Resources []metricResource `json:"resources,omitempty"`
	Tags      []string         `json:"tags,omitempty"`
}

type metricPoint struct {
	Timestamp int64   `json:"timestamp"`
	Value     float64 `json:"value"`
}

type metricResource struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// eventCreateRequest is Datadog's v1 EventCreateRequest, fields in Events'
// order.
type eventCreateRequest struct {
	Title          string   `json:"title"`
	Text           string   `json:"text"`
	DateHappened   int64    `json:"date_happened,omitempty"`
	Priority       string   `json:"priority,omitempty"`
	Host           string   `json:"host,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	AlertType      string   `json:"alert_type,omitempty"`
	AggregationKey string   `json:"aggregation_key,omitempty"`
	SourceTypeName string   `json:"source_type_name,omitempty"`
}

// decode decodes body strictly into v.
func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("invalid JSON: %q", body)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
}

// marshal is what encoding/json writes for v.
func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// veneurMetric is what Veneur's finalizeMetrics makes of p, with the
// point's Hostname where Veneur had its own, and this package's documented
// differences: no series for a point without a name or with a value that is
// not finite (Veneur failed the whole body), no interval unless positive,
// and counts with asCount.
func veneurMetric(p sdk.Point, interval time.Duration, asCount bool) (DDMetric, bool) {
	m := DDMetric{Name: p.Name, Tags: []string{}}
	var hostname, device string
	for _, tag := range p.Tags {
		if strings.HasPrefix(tag, "host:") {
			hostname = tag[5:]
		} else if strings.HasPrefix(tag, "device:") {
			device = tag[7:]
		} else {
			m.Tags = append(m.Tags, tag)
		}
	}
	if hostname == "" {
		hostname = p.Hostname
	}
	value := p.Value
	switch {
	case p.Type == sdk.PointGauge:
		m.MetricType = "gauge"
	case p.Type == sdk.PointCounter && asCount:
		m.MetricType = "count"
	case p.Type == sdk.PointCounter && interval > 0:
		m.MetricType = "rate"
		value = p.Value / interval.Seconds()
	default:
		return m, false
	}
	if p.Name == "" || math.IsNaN(value) || math.IsInf(value, 0) {
		return m, false
	}
	m.Value = [1][2]float64{{float64(p.Timestamp), value}}
	if interval > 0 {
		m.Interval = int32(interval.Seconds())
	}
	m.Hostname, m.DeviceName = hostname, device
	return m, true
}

// v2Series is veneurMetric in v2's schema: the host a resource, a device:
// tag kept among the tags.
func v2Series(p sdk.Point, interval time.Duration, asCount bool) (metricSeries, bool) {
	m, ok := veneurMetric(p, interval, asCount)
	var tags []string
	for _, t := range p.Tags {
		if !strings.HasPrefix(t, "host:") {
			tags = append(tags, t)
		}
	}
	s := metricSeries{Metric: m.Name, Type: map[string]int32{"count": 1, "rate": 2, "gauge": 3}[m.MetricType],
		Points: []metricPoint{{p.Timestamp, m.Value[0][1]}}, Interval: int64(m.Interval), Tags: tags}
	if m.Hostname != "" {
		s.Resources = append(s.Resources, metricResource{m.Hostname, "host"})
	}
	return s, ok
}

// sanitizeAll applies sanitize to every string of *v (a struct or slice of
// them), as a decoder reads back what was written.
func sanitizeAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(sanitize(v.String()))
	case reflect.Struct:
		for i := range v.NumField() {
			sanitizeAll(v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			sanitizeAll(v.Index(i))
		}
	case reflect.Pointer:
		sanitizeAll(v.Elem())
	}
}

// fuzzPoint makes a point of fuzz input; tags are split at commas.
func fuzzPoint(name, tags, host, msg string, typ uint8, value float64, ts int64) sdk.Point {
	p := sdk.Point{Name: name, Type: sdk.PointType(typ % 5), Value: value, Timestamp: ts, Hostname: host, Message: msg}
	if tags != "" {
		p.Tags = strings.Split(tags, ",")
	}
	return p
}

// fuzzInterval makes an interval of fuzz input, at most a day either way.
func fuzzInterval(ms int64) time.Duration { return time.Duration(ms%86_400_000) * time.Millisecond }

// seriesSeed is a seed corpus shared by the series fuzz tests.
func seriesSeed(f *testing.F) {
	f.Add("a.b", "k:v", "h1", uint8(sdk.PointGauge), 1.5, int64(ts), int64(10000), false)
	f.Add("a.count", "a:b,host:h2,z:y", "h1", uint8(sdk.PointCounter), 25.0, int64(ts), int64(10000), false)
	f.Add("a.count", "device:sda,k:v", "h1", uint8(sdk.PointCounter), 25.0, int64(ts), int64(1500), true)
	f.Add("a.b", "", "", uint8(sdk.PointGauge), math.NaN(), int64(ts), int64(0), false)
	f.Add(oddName, oddTag+",host:,device:", oddTag, uint8(sdk.PointGauge), -1e-7, int64(-1), int64(-5), false)
	f.Add("", "host:x,host:y", "h", uint8(sdk.PointStatus), 1e308, int64(math.MaxInt64), int64(100), false)
}

func FuzzEncodeSeriesV1(f *testing.F) {
	seriesSeed(f)
	f.Fuzz(func(t *testing.T, name, tags, host string, typ uint8, value float64, ts int64, intervalMs int64, asCount bool) {
		interval := fuzzInterval(intervalMs)
		p := fuzzPoint(name, tags, host, "", typ, value, ts)
		second := gauge("second", 2, "k:v")
		enc := SeriesV1{Interval: interval, CountersAsCount: asCount}
		enc.Point(&second)
		enc.Reset()

		var want []DDMetric
		for _, q := range []*sdk.Point{&p, &second, &p} {
			m, ok := veneurMetric(*q, interval, asCount)
			if got := enc.Point(q); got != ok {
				t.Fatalf("%+v: Point %v, want %v", *q, got, ok)
			}
			if ok {
				want = append(want, m)
			}
		}
		body := enc.Body()
		if enc.Len() != len(want) || enc.Size() != len(body) {
			t.Fatalf("Len %d Size %d, want %d %d", enc.Len(), enc.Size(), len(want), len(body))
		}
		// Byte for byte what Veneur's encoding/json wrote (its timestamp
		// was a float64, written the same for any integer float64 holds).
		if math.Abs(float64(ts)) < 1<<53 {
			if w := marshal(t, map[string][]DDMetric{"series": want}); string(body) != w {
				t.Fatalf("\ngot  %s\nwant %s", body, w)
			}
		}
		// And the values read back.
		var got struct {
			Series []DDMetric `json:"series"`
		}
		decode(t, body, &got)
		for i := range want {
			if len(want[i].Tags) == 0 {
				want[i].Tags = nil
			}
		}
		sanitizeAll(reflect.ValueOf(want))
		if len(got.Series) != len(want) || len(want) > 0 && !reflect.DeepEqual(got.Series, want) {
			t.Fatalf("read back %+v, want %+v", got.Series, want)
		}
	})
}

func FuzzEncodeSeriesV2(f *testing.F) {
	seriesSeed(f)
	f.Fuzz(func(t *testing.T, name, tags, host string, typ uint8, value float64, ts int64, intervalMs int64, asCount bool) {
		interval := fuzzInterval(intervalMs)
		p := fuzzPoint(name, tags, host, "", typ, value, ts)
		second := counter("second", 2)
		enc := SeriesV2{Interval: interval, CountersAsCount: asCount}
		enc.Point(&second)
		enc.Reset()

		want := metricPayload{Series: []metricSeries{}}
		for _, q := range []*sdk.Point{&p, &second, &p} {
			s, ok := v2Series(*q, interval, asCount)
			if got := enc.Point(q); got != ok {
				t.Fatalf("%+v: Point %v, want %v", *q, got, ok)
			}
			if ok {
				want.Series = append(want.Series, s)
			}
		}
		body := enc.Body()
		if enc.Len() != len(want.Series) || enc.Size() != len(body) {
			t.Fatalf("Len %d Size %d, want %d %d", enc.Len(), enc.Size(), len(want.Series), len(body))
		}
		if w := marshal(t, want); string(body) != w {
			t.Fatalf("\ngot  %s\nwant %s", body, w)
		}
		var got metricPayload
		decode(t, body, &got)
		for i := range want.Series {
			if len(want.Series[i].Tags) == 0 {
				want.Series[i].Tags = nil
			}
		}
		sanitizeAll(reflect.ValueOf(&want))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %+v, want %+v", got, want)
		}
	})
}

// veneurCheck is what Veneur's finalizeMetrics makes of a status point,
// with this package's differences: the status must be one of 0..3 (Veneur
// truncated the value), and a device: tag stays a tag.
func veneurCheck(p sdk.Point) (checkRun, bool) {
	c := checkRun{Name: p.Name, Status: int(p.Value), Timestamp: p.Timestamp, Message: p.Message, Tags: []string{}}
	for _, tag := range p.Tags {
		if strings.HasPrefix(tag, "host:") {
			c.Hostname = tag[5:]
		} else {
			c.Tags = append(c.Tags, tag)
		}
	}
	if c.Hostname == "" {
		c.Hostname = p.Hostname
	}
	ok := p.Type == sdk.PointStatus && p.Name != "" && float64(c.Status) == p.Value && c.Status >= 0 && c.Status <= 3
	return c, ok
}

func FuzzEncodeCheckRuns(f *testing.F) {
	f.Add("db.up", "k:v", "h1", "refused", uint8(sdk.PointStatus), 2.0, int64(ts))
	f.Add("db.up", "a:b,device:sda,host:h2", "h1", "", uint8(sdk.PointStatus), 0.0, int64(0))
	f.Add(oddName, oddTag+",host:", "", oddName, uint8(sdk.PointStatus), 3.0, int64(-1))
	f.Add("db.up", "", "h1", "", uint8(sdk.PointStatus), 1.5, int64(ts))
	f.Add("db.up", "", "h1", "", uint8(sdk.PointStatus), math.NaN(), int64(ts))
	f.Add("db.up", "", "h1", "", uint8(sdk.PointGauge), 1.0, int64(ts))
	f.Fuzz(func(t *testing.T, name, tags, host, msg string, typ uint8, value float64, ts int64) {
		p := fuzzPoint(name, tags, host, msg, typ, value, ts)
		second := status("second", 1, "m")
		var enc CheckRuns
		enc.Point(&second)
		enc.Reset()

		want := []checkRun{}
		for _, q := range []*sdk.Point{&p, &second, &p} {
			c, ok := veneurCheck(*q)
			if got := enc.Point(q); got != ok {
				t.Fatalf("%+v: Point %v, want %v", *q, got, ok)
			}
			if ok {
				want = append(want, c)
			}
		}
		body := enc.Body()
		if enc.Len() != len(want) || enc.Size() != len(body) {
			t.Fatalf("Len %d Size %d, want %d %d", enc.Len(), enc.Size(), len(want), len(body))
		}
		if w := marshal(t, want); string(body) != w {
			t.Fatalf("\ngot  %s\nwant %s", body, w)
		}
		var got []DDServiceCheck
		decode(t, body, &got)
		sanitizeAll(reflect.ValueOf(want))
		if len(got) != len(want) {
			t.Fatalf("read back %d checks, want %d", len(got), len(want))
		}
		for i, w := range want {
			g := got[i] // "tags":[] reads back as an empty slice
			if !reflect.DeepEqual(checkRun(g), w) {
				t.Fatalf("read back %+v, want %+v", g, w)
			}
		}
	})
}

func FuzzEncodeEvents(f *testing.F) {
	f.Add("deploy", "v2 is out", "h1", "deploys", "normal", "jenkins", "info", "env:prod", int64(ts), int64(ts), "self")
	f.Add("deploy", "", "", "", "", "", "", "", int64(0), int64(ts), "self")
	f.Add("", "no title", "", "", "", "", "", "", int64(0), int64(0), "")
	f.Add(oddName, oddName, oddTag, oddTag, "high", oddName, "fatal", oddTag+",host:x", int64(-1), int64(0), "")
	f.Add("t", strings.Repeat("é", 4001), "", strings.Repeat("\xff", 101), "low", "", "user_update", "", int64(1), int64(2), "")
	f.Fuzz(func(t *testing.T, title, text, host, key, priority, source, alert, tags string, evTS, flushTS int64, defaultHost string) {
		e := sdk.Event{Title: title, Text: text, Timestamp: evTS, Hostname: host, AggregationKey: key, Priority: priority,
			SourceType: source, AlertType: alert}
		if tags != "" {
			e.Tags = strings.Split(tags, ",")
		}
		enc := Events{Hostname: defaultHost}
		old := sdk.Event{Title: "old", Text: "old"}
		enc.Event(&old, 1)
		body := enc.Event(&e, flushTS)
		if title == "" {
			if body != nil || enc.Len() != 0 || enc.Size() != 0 {
				t.Fatalf("event without a title: %q", body)
			}
			return
		}
		if enc.Len() != 1 || enc.Size() != len(body) || !bytes.Equal(enc.Body(), body) {
			t.Fatalf("Len %d, Size %d, Body %q, returned %q", enc.Len(), enc.Size(), enc.Body(), body)
		}

		want := eventCreateRequest{Title: title, Text: text, DateHappened: evTS, Host: host, Tags: e.Tags,
			AggregationKey: key, SourceTypeName: source}
		if want.DateHappened == 0 {
			want.DateHappened = flushTS
		}
		if want.Host == "" {
			want.Host = defaultHost
		}
		if priority == "normal" || priority == "low" {
			want.Priority = priority
		}
		switch alert {
		case "error", "warning", "info", "success", "user_update", "recommendation", "snapshot":
			want.AlertType = alert
		}
		// Byte for byte encoding/json's, with the cuts this package makes.
		cut := want
		cut.Text, cut.AggregationKey = truncate(text, 4000), truncate(key, 100)
		if w := marshal(t, cut); string(body) != w {
			t.Fatalf("\ngot  %s\nwant %s", body, w)
		}
		// Read back, with the cuts made independently.
		var got eventCreateRequest
		decode(t, body, &got)
		sanitizeAll(reflect.ValueOf(&want))
		want.Text, want.AggregationKey = runePrefix(text, 4000), runePrefix(key, 100)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %+v, want %+v", got, want)
		}
	})
}
