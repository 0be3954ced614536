package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/veneurd/veneurd/sdk"
)

// series is a decoded TimeSeries.
type series struct {
	labels  []label
	samples []sample
}

type sample struct {
	bits uint64 // the value's bits, to tell NaNs apart
	ms   int64
}

// String writes s as `{name="value", ...} value @ms`, labels in wire order.
func (s series) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range s.labels {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", l.name, l.value)
	}
	b.WriteByte('}')
	for _, smp := range s.samples {
		v := math.Float64frombits(smp.bits)
		if v != v {
			fmt.Fprintf(&b, " NaN(%#x)", smp.bits)
		} else {
			b.WriteString(" " + strconv.FormatFloat(v, 'g', -1, 64))
		}
		fmt.Fprintf(&b, " @%d", smp.ms)
	}
	return b.String()
}

// decode reads a WriteRequest field by field, strictly: known fields with
// their wire types only, strings valid UTF-8 (as proto3 requires).
func decode(body []byte) ([]series, error) {
	var out []series
	err := fields(body, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return fmt.Errorf("WriteRequest: field %d type %d", num, typ)
		}
		var s series
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				var l label
				err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if typ != protowire.BytesType || num != 1 && num != 2 {
						return fmt.Errorf("Label: field %d type %d", num, typ)
					}
					if !utf8.Valid(v) {
						return fmt.Errorf("Label: invalid UTF-8 %q", v)
					}
					if num == 1 {
						l.name = string(v)
					} else {
						l.value = string(v)
					}
					return nil
				})
				s.labels = append(s.labels, l)
				return err
			case num == 2 && typ == protowire.BytesType:
				var smp sample
				err := fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
					switch {
					case num == 1 && typ == protowire.Fixed64Type:
						smp.bits = x
					case num == 2 && typ == protowire.VarintType:
						smp.ms = int64(x)
					default:
						return fmt.Errorf("Sample: field %d type %d", num, typ)
					}
					return nil
				})
				s.samples = append(s.samples, smp)
				return err
			}
			return fmt.Errorf("TimeSeries: field %d type %d", num, typ)
		})
		out = append(out, s)
		return err
	})
	return out, err
}

// fields calls f with each field of the message b: v for bytes fields, x
// for varint and fixed64 ones.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("field %d: wire type %d", num, typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// checkSpec fails unless s keeps the specification's rules for labels: a
// valid __name__, valid names sorted and unique, no empty values, no name
// but __name__ starting with "__", and one sample that is not a stale
// marker.
func checkSpec(s series) error {
	if len(s.samples) != 1 {
		return fmt.Errorf("%d samples", len(s.samples))
	}
	if s.samples[0].bits == 0x7ff0000000000002 {
		return errors.New("stale marker sent")
	}
	named := false
	for i, l := range s.labels {
		if i > 0 && l.name <= s.labels[i-1].name {
			return fmt.Errorf("labels not sorted or repeated: %q after %q", l.name, s.labels[i-1].name)
		}
		if l.value == "" {
			return fmt.Errorf("label %q: empty value", l.name)
		}
		if l.name == NameLabel {
			named = true
			if !metricNameRE.MatchString(l.value) {
				return fmt.Errorf("invalid metric name %q", l.value)
			}
			continue
		}
		if !labelNameRE.MatchString(l.name) || strings.HasPrefix(l.name, "__") {
			return fmt.Errorf("invalid label name %q", l.name)
		}
	}
	if !named {
		return errors.New("no __name__")
	}
	return nil
}

// encodeOne encodes p alone and checks the body; ok is Point's result.
func encodeOne(t *testing.T, e *Encoder, p sdk.Point) (s series, ok bool) {
	t.Helper()
	e.Reset()
	ok = e.Point(&p)
	body := e.Body()
	if e.Size() != len(body) {
		t.Fatalf("Size %d, body %d bytes", e.Size(), len(body))
	}
	got, err := decode(body)
	if err != nil {
		t.Fatalf("%+v: body does not decode: %v\n%x", p, err, body)
	}
	if !ok {
		if len(body) != 0 || e.Len() != 0 {
			t.Fatalf("%+v refused, yet appended %d bytes, Len %d", p, len(body), e.Len())
		}
		return series{}, false
	}
	if len(got) != 1 || e.Len() != 1 {
		t.Fatalf("%+v: %d series, Len %d", p, len(got), e.Len())
	}
	if err := checkSpec(got[0]); err != nil {
		t.Fatalf("%+v: %v: %s", p, err, got[0])
	}
	return got[0], true
}

const ts = 1795300000

// TestFieldTags checks the tags the encoder writes against the schema of
// the specification.
func TestFieldTags(t *testing.T) {
	for _, c := range []struct {
		tag byte
		num protowire.Number
		typ protowire.Type
	}{
		{tagTimeSeries, 1, protowire.BytesType}, // WriteRequest.timeseries
		{tagLabel, 1, protowire.BytesType},      // TimeSeries.labels
		{tagSample, 2, protowire.BytesType},     // TimeSeries.samples
		{tagLabelName, 1, protowire.BytesType},  // Label.name
		{tagLabelValue, 2, protowire.BytesType}, // Label.value
		{tagSampleValue, 1, protowire.Fixed64Type},
		{tagSampleTime, 2, protowire.VarintType},
	} {
		if want := protowire.EncodeTag(c.num, c.typ); uint64(c.tag) != want {
			t.Errorf("tag %#x, want %#x", c.tag, want)
		}
	}
	if nameLabelHead != string([]byte{tagLabelName, byte(len(NameLabel))})+NameLabel+string([]byte{tagLabelValue}) {
		t.Error("nameLabelHead")
	}
}

func TestPoint(t *testing.T) {
	var e Encoder
	f := func(in sdk.Point, want string) {
		t.Helper()
		if in.Timestamp == 0 {
			in.Timestamp = ts
		}
		got, ok := encodeOne(t, &e, in)
		if !ok {
			t.Fatalf("%+v refused", in)
		}
		if got.String() != want {
			t.Errorf("%+v\n got %s\nwant %s", in, got, want)
		}
	}
	// The example of NOTES.md.
	f(sdk.Point{Name: "api.requests", Tags: []string{"1st:a", "__meta:x", "canary", "env:prod", "k8s.pod/name:p"}, Type: sdk.PointCounter, Value: 42, Hostname: "web1"},
		`{_1st="a", __name__="api_requests", canary="true", env="prod", host="web1", k8s_pod_name="p", tag__meta="x"} 42 @1795300000000`)
	// Veneur's names, '.' made '_'; counters are the interval's count.
	f(sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:us-east-1"}, Type: sdk.PointCounter, Value: 42, Hostname: "web1"},
		`{__name__="api_requests", env="prod", host="web1", region="us-east-1"} 42 @1795300000000`)
	f(sdk.Point{Name: "api.latency.p99", Type: sdk.PointGauge, Value: 0.25},
		`{__name__="api_latency_p99"} 0.25 @1795300000000`)
	// Status points: the status as the value; the message is left out.
	f(sdk.Point{Name: "db.up", Type: sdk.PointStatus, Value: 2, Hostname: "db1", Message: "refused"},
		`{__name__="db_up", host="db1"} 2 @1795300000000`)
	// Names: ':' kept, every other byte outside [a-zA-Z0-9_] made '_' (each
	// byte of a multi-byte rune), a leading digit prefixed.
	f(sdk.Point{Name: "job:rate-5m/é", Type: sdk.PointGauge, Value: 1},
		`{__name__="job:rate_5m___"} 1 @1795300000000`)
	f(sdk.Point{Name: "5xx.count", Type: sdk.PointCounter, Value: 1},
		`{__name__="_5xx_count"} 1 @1795300000000`)
	f(sdk.Point{Name: "\x00\n\xff", Type: sdk.PointGauge, Value: 1},
		`{__name__="___"} 1 @1795300000000`)
	// Label names: ':' replaced too, leading digits prefixed with '_', and
	// the reserved "__" prefixed with "tag"; labels sorted as bytes, so
	// capitals and "_1" come before __name__.
	f(sdk.Point{Name: "x", Tags: []string{"1st:a", "Zone:z", "__name__:evil", "a.b-c:d", "k8s.pod/name:p", "__meta:m"}, Type: sdk.PointGauge, Value: 1},
		`{Zone="z", _1st="a", __name__="x", a_b_c="d", k8s_pod_name="p", tag__meta="m", tag__name__="evil"} 1 @1795300000000`)
	f(sdk.Point{Name: "x", Tags: []string{"_.x:1", "__:2"}, Type: sdk.PointGauge, Value: 1},
		`{__name__="x", tag__="2", tag__x="1"} 1 @1795300000000`)
	// Values: kept as they are, only bytes that are not UTF-8 replaced; the
	// value is what follows the first ':'.
	f(sdk.Point{Name: "x", Tags: []string{"url:http://a/b?c=d", "q:\"quoted\" \n", "bad:\xff\xfeok\xe2\x82", "emoji:😀"}, Type: sdk.PointGauge, Value: 1},
		"{__name__=\"x\", bad=\"\ufffd\ufffdok\ufffd\ufffd\", emoji=\"😀\", q=\"\\\"quoted\\\" \\n\", url=\"http://a/b?c=d\"} 1 @1795300000000")
	// Bare tags are "true"; empty keys and empty values are left out.
	f(sdk.Point{Name: "x", Tags: []string{"", ":", ":v", "canary", "empty:"}, Type: sdk.PointGauge, Value: 1},
		`{__name__="x", canary="true"} 1 @1795300000000`)
	// Duplicate names after sanitising: the last tag wins.
	f(sdk.Point{Name: "x", Tags: []string{"a-b:1", "a.b:2", "a_b:3"}, Type: sdk.PointGauge, Value: 1},
		`{__name__="x", a_b="3"} 1 @1795300000000`)
	f(sdk.Point{Name: "x", Tags: []string{"a.b:2", "a_b:3", "a~b:1"}, Type: sdk.PointGauge, Value: 1},
		`{__name__="x", a_b="1"} 1 @1795300000000`)
	f(sdk.Point{Name: "x", Tags: []string{"k", "k:v"}, Type: sdk.PointGauge, Value: 1},
		`{__name__="x", k="v"} 1 @1795300000000`)
	// An empty value does not replace: it is no label at all.
	f(sdk.Point{Name: "x", Tags: []string{"k.x:v", "k_x:"}, Type: sdk.PointGauge, Value: 1},
		`{__name__="x", k_x="v"} 1 @1795300000000`)
	// A host tag replaces the point's hostname; hostnames are repaired as
	// values are; an empty hostname is no label.
	f(sdk.Point{Name: "x", Tags: []string{"host:tagged"}, Type: sdk.PointGauge, Value: 1, Hostname: "h1"},
		`{__name__="x", host="tagged"} 1 @1795300000000`)
	f(sdk.Point{Name: "x", Tags: []string{"host:"}, Type: sdk.PointGauge, Value: 1, Hostname: "h1"},
		`{__name__="x", host="h1"} 1 @1795300000000`)
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: 1, Hostname: "h\xff"},
		"{__name__=\"x\", host=\"h\ufffd\"} 1 @1795300000000")
	// Values: infinities as they are, every NaN as Prometheus' normal NaN,
	// never the stale marker; zero and negative values and timestamps.
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: math.Inf(-1)}, `{__name__="x"} -Inf @1795300000000`)
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: math.NaN()}, `{__name__="x"} NaN(0x7ff8000000000001) @1795300000000`)
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: math.Float64frombits(0x7ff0000000000002)}, `{__name__="x"} NaN(0x7ff8000000000001) @1795300000000`)
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: math.Float64frombits(0xfff8000000000000)}, `{__name__="x"} NaN(0x7ff8000000000001) @1795300000000`)
	f(sdk.Point{Name: "x", Type: sdk.PointCounter, Value: -3, Timestamp: -1}, `{__name__="x"} -3 @-1000`)
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: 0}, `{__name__="x"} 0 @1795300000000`)
}

// TestRefused checks the points that cannot be encoded.
func TestRefused(t *testing.T) {
	var e Encoder
	if _, ok := encodeOne(t, &e, sdk.Point{Name: "", Tags: []string{"a:b"}, Value: 1, Hostname: "h"}); ok {
		t.Fatal("empty name accepted")
	}
}

// TestBody checks that a body holds the points appended since Reset, in
// order, and that Reset empties it.
func TestBody(t *testing.T) {
	var e Encoder
	if len(e.Body()) != 0 || e.Len() != 0 || e.Size() != 0 {
		t.Fatal("zero Encoder not empty")
	}
	e.Point(&sdk.Point{Name: "old", Type: sdk.PointGauge, Value: 1, Timestamp: ts})
	e.Reset()
	pts := realisticPoints(50)
	pts = slices.Insert(pts, 10, sdk.Point{Name: "", Value: 1})
	for i := range pts {
		e.Point(&pts[i])
		if e.Size() != len(e.Body()) {
			t.Fatalf("Size %d, body %d", e.Size(), len(e.Body()))
		}
	}
	if e.Len() != 50 {
		t.Fatalf("Len %d, want 50", e.Len())
	}
	got, err := decode(e.Body())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("%d series, want 50", len(got))
	}
	var one Encoder
	for i, p := range slices.Delete(pts, 10, 11) {
		want, _ := encodeOne(t, &one, p)
		if got[i].String() != want.String() {
			t.Errorf("series %d: %s, alone %s", i, got[i], want)
		}
	}
}

// TestSameLabels checks that labels made for a point are used again only
// for a point with equal tags and hostname, whatever their memory.
func TestSameLabels(t *testing.T) {
	var e Encoder
	tags := []string{"a:1", "b:2"}
	f := func(p sdk.Point, want string) {
		t.Helper()
		p.Name, p.Timestamp = "x", ts
		if !e.Point(&p) {
			t.Fatal("refused")
		}
		got, err := decode(e.Body())
		if err != nil {
			t.Fatal(err)
		}
		if s := got[len(got)-1].String(); s != want {
			t.Errorf("got %s, want %s", s, want)
		}
	}
	f(sdk.Point{Tags: tags, Hostname: "h1"}, `{__name__="x", a="1", b="2", host="h1"} 0 @1795300000000`)
	f(sdk.Point{Tags: tags, Hostname: "h2"}, `{__name__="x", a="1", b="2", host="h2"} 0 @1795300000000`)
	tags[1] = "b:3"
	f(sdk.Point{Tags: tags, Hostname: "h2"}, `{__name__="x", a="1", b="3", host="h2"} 0 @1795300000000`)
	f(sdk.Point{Tags: tags[:1], Hostname: "h2"}, `{__name__="x", a="1", host="h2"} 0 @1795300000000`)
	f(sdk.Point{Tags: []string{"a:1h", "2"}}, `{_2="true", __name__="x", a="1h"} 0 @1795300000000`)
	f(sdk.Point{Tags: []string{"a:1"}, Hostname: "h2"}, `{__name__="x", a="1", host="h2"} 0 @1795300000000`)
	f(sdk.Point{Tags: []string{"a:1"}, Hostname: "h2"}, `{__name__="x", a="1", host="h2"} 0 @1795300000000`)
	f(sdk.Point{}, `{__name__="x"} 0 @1795300000000`)
	e.Reset()
	f(sdk.Point{Tags: []string{"host:h3"}, Hostname: "h2"}, `{__name__="x", host="h3"} 0 @1795300000000`)
}

// veneurSanitise is the sanitise function of Veneur's cortex sink
// (github.com/stripe/veneur/v14 sinks/cortex), for comparison.
func veneurSanitise(input string) string {
	output := make([]rune, len(input))
	prefix := false
	for i, r := range input {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == ':':
			output[i] = r
		case r >= '0' && r <= '9':
			if i == 0 {
				prefix = true
			}
			output[i] = r
		default:
			output[i] = '_'
		}
	}
	if prefix {
		return "_" + string(output)
	}
	return string(output)
}

// TestVeneurNames checks that ASCII metric names come out as Veneur's cortex
// sink sends them. (Veneur went rune by rune and left NULs after a
// multi-byte rune; names are sanitised byte by byte here.)
func TestVeneurNames(t *testing.T) {
	var e Encoder
	for _, name := range []string{"a.b.c", "api.request-count", "0x", "9.9", "a:b", "_x", "A-Z a~z", "%!@#$^&*()", "x\x00\x7f"} {
		want := veneurSanitise(name)
		s, _ := encodeOne(t, &e, sdk.Point{Name: name, Tags: []string{"k:v"}})
		if got := s.labels[slices.IndexFunc(s.labels, func(l label) bool { return l.name == NameLabel })].value; got != want {
			t.Errorf("%q: got %q, Veneur %q", name, got, want)
		}
	}
}

// TestAllocs checks that a warm encoder allocates nothing per point.
func TestAllocs(t *testing.T) {
	pts := append(realisticPoints(1000), distinctPoints(1000)...)
	var e Encoder
	encode := func() {
		e.Reset()
		for i := range pts {
			e.Point(&pts[i])
		}
		_ = e.Body()
	}
	encode()
	if n := testing.AllocsPerRun(10, encode); n != 0 {
		t.Fatalf("%v allocations per 1000 points", n)
	}
}

// realisticPoints returns n points as a daemon flushes them: names of about
// 30 bytes with dots (sanitised), 4 to 6 tags, some with '-' or '.' in
// their keys, one hostname. Each run of 6 points (a timer's) shares its
// tags.
func realisticPoints(n int) []sdk.Point { return makePoints(n, false) }

// distinctPoints returns points as realisticPoints does, but each with tags
// of its own (one tag differs from the previous point's).
func distinctPoints(n int) []sdk.Point { return makePoints(n, true) }

func makePoints(n int, distinct bool) []sdk.Point {
	tagSets := [][]string{
		{"env:production", "region:us-east-1", "service:checkout", "version:2024.06.1"},
		{"availability-zone:us-east-1a", "env:production", "kube.namespace:payments", "service:checkout", "team:core"},
		{"canary", "env:production", "http.method:GET", "http.status_code:200", "region:us-east-1", "service:api-gateway"},
	}
	suffixes := []string{".count", ".max", ".min", ".median", ".95percentile", ".avg"}
	types := []sdk.PointType{sdk.PointCounter, sdk.PointGauge, sdk.PointGauge, sdk.PointGauge, sdk.PointGauge, sdk.PointGauge}
	pts := make([]sdk.Point, n)
	for i := range pts {
		pts[i] = sdk.Point{
			Name:      fmt.Sprintf("checkout.payment.request_%03d%s", i/6%1000, suffixes[i%6]),
			Tags:      tagSets[i/6%len(tagSets)],
			Type:      types[i%6],
			Value:     float64(i) * 1.25,
			Timestamp: ts,
			Hostname:  "ip-10-0-12-34.ec2.internal",
		}
		if distinct {
			tags := slices.Clone(pts[i].Tags)
			tags[0] += strconv.Itoa(i % 2)
			pts[i].Tags = tags
		}
	}
	return pts
}

// BenchmarkEncode encodes 1000 points, their tags shared by runs of 6.
func BenchmarkEncode(b *testing.B) { benchmarkEncode(b, realisticPoints(1000)) }

// BenchmarkEncodeDistinct encodes 1000 points, each with tags unlike the
// previous point's.
func BenchmarkEncodeDistinct(b *testing.B) { benchmarkEncode(b, distinctPoints(1000)) }

func benchmarkEncode(b *testing.B, pts []sdk.Point) {
	var e Encoder
	encode := func() int {
		e.Reset()
		for i := range pts {
			e.Point(&pts[i])
		}
		return len(e.Body())
	}
	encode() // warm up: grow the buffers and meet the hosts
	b.ReportAllocs()
	size := 0
	for b.Loop() {
		size = encode()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
	b.ReportMetric(float64(size)/float64(len(pts)), "bytes/point")
}

// referenceLabels is the mapping of NOTES.md written plainly, to check
// Point against.
func referenceLabels(p sdk.Point) []label {
	sanitise := func(s string, colon bool) string {
		b := []byte(s)
		for i, c := range b {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || colon && c == ':') {
				b[i] = '_'
			}
		}
		if '0' <= s[0] && s[0] <= '9' {
			return "_" + string(b)
		}
		return string(b)
	}
	m := map[string]string{NameLabel: sanitise(p.Name, true)}
	if p.Hostname != "" {
		m[HostLabel] = string([]rune(p.Hostname)) // each bad byte a U+FFFD
	}
	for _, t := range p.Tags {
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			v = "true"
		}
		if k == "" || v == "" {
			continue
		}
		k = sanitise(k, false)
		if strings.HasPrefix(k, "__") {
			k = "tag" + k
		}
		m[k] = string([]rune(v))
	}
	var out []label
	for k, v := range m {
		out = append(out, label{k, v})
	}
	slices.SortFunc(out, func(a, b label) int { return strings.Compare(a.name, b.name) })
	return out
}

// FuzzEncode checks that any point comes out as a body that decodes, with
// labels as the specification wants them, and with the value and timestamp
// given, or is refused for its empty name.
func FuzzEncode(f *testing.F) {
	f.Add("api.requests", "env:prod,region:us-east-1", "web1", byte(1), 42.0, int64(ts))
	f.Add("5xx", "1st:a,__name__:evil,Zone:z,k8s.pod/name:p", "", byte(2), math.Inf(1), int64(0))
	f.Add("\xff\x00", "bad:\xff\xfe,:,k,k:,host:h", "h\xff", byte(3), math.NaN(), int64(-1))
	f.Add("", "a:b", "h", byte(2), 1.0, int64(ts))
	var e Encoder
	f.Fuzz(func(t *testing.T, name, tags, host string, typ byte, value float64, stamp int64) {
		p := sdk.Point{Name: name, Type: sdk.PointType(typ), Value: value, Timestamp: stamp, Hostname: host}
		if tags != "" {
			p.Tags = strings.Split(tags, ",")
		}
		s, ok := encodeOne(t, &e, p)
		if ok != (name != "") {
			t.Fatalf("%+v: Point returned %v", p, ok)
		}
		if !ok {
			return
		}
		want := math.Float64bits(value)
		if value != value {
			want = NormalNaN
		}
		if smp := s.samples[0]; smp.bits != want || smp.ms != stamp*1000 {
			t.Fatalf("%+v: sample %#x @%d", p, smp.bits, smp.ms)
		}
		// Again, with the labels the encoder kept.
		e.Point(&p)
		if all, err := decode(e.Body()); err != nil || len(all) != 2 || all[1].String() != s.String() {
			t.Fatalf("%+v: again: %v %v", p, all, err)
		}
		if want := referenceLabels(p); !slices.Equal(s.labels, want) {
			t.Fatalf("%+v:\n got %v\nwant %v", p, s.labels, want)
		}
	})
}
