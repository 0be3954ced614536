package otlp

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/veneurd/veneurd/sdk"
)

// TestFieldTags checks every tag the encoder writes against the field's
// number and kind in the generated types of opentelemetry-proto.
func TestFieldTags(t *testing.T) {
	msg := func(m proto.Message) protoreflect.MessageDescriptor { return m.ProtoReflect().Descriptor() }
	for _, c := range []struct {
		tag   byte
		msg   protoreflect.MessageDescriptor
		field protoreflect.Name
	}{
		{tagResourceMetrics, msg(&colmetricspb.ExportMetricsServiceRequest{}), "resource_metrics"},
		{tagResource, msg(&metricspb.ResourceMetrics{}), "resource"},
		{tagScopeMetrics, msg(&metricspb.ResourceMetrics{}), "scope_metrics"},
		{tagAttribute, msg(&resourcepb.Resource{}), "attributes"},
		{tagScope, msg(&metricspb.ScopeMetrics{}), "scope"},
		{tagMetric, msg(&metricspb.ScopeMetrics{}), "metrics"},
		{tagScopeName, msg(&commonpb.InstrumentationScope{}), "name"},
		{tagScopeVersion, msg(&commonpb.InstrumentationScope{}), "version"},
		{tagMetricName, msg(&metricspb.Metric{}), "name"},
		{tagGauge, msg(&metricspb.Metric{}), "gauge"},
		{tagSum, msg(&metricspb.Metric{}), "sum"},
		{tagDataPoint, msg(&metricspb.Gauge{}), "data_points"},
		{tagDataPoint, msg(&metricspb.Sum{}), "data_points"},
		{tagTemporality, msg(&metricspb.Sum{}), "aggregation_temporality"},
		{tagMonotonic, msg(&metricspb.Sum{}), "is_monotonic"},
		{tagStartTime, msg(&metricspb.NumberDataPoint{}), "start_time_unix_nano"},
		{tagTime, msg(&metricspb.NumberDataPoint{}), "time_unix_nano"},
		{tagAsDouble, msg(&metricspb.NumberDataPoint{}), "as_double"},
		{tagPointAttribute, msg(&metricspb.NumberDataPoint{}), "attributes"},
		{tagKey, msg(&commonpb.KeyValue{}), "key"},
		{tagValue, msg(&commonpb.KeyValue{}), "value"},
		{tagStringValue, msg(&commonpb.AnyValue{}), "string_value"},
	} {
		f := c.msg.Fields().ByName(c.field)
		if f == nil {
			t.Errorf("%s has no field %s", c.msg.FullName(), c.field)
			continue
		}
		typ := map[protoreflect.Kind]protowire.Type{
			protoreflect.MessageKind: protowire.BytesType, protoreflect.StringKind: protowire.BytesType,
			protoreflect.Fixed64Kind: protowire.Fixed64Type, protoreflect.DoubleKind: protowire.Fixed64Type,
			protoreflect.EnumKind: protowire.VarintType, protoreflect.BoolKind: protowire.VarintType,
		}[f.Kind()]
		if want := protowire.AppendTag(nil, f.Number(), typ); !bytes.Equal([]byte{c.tag}, want) {
			t.Errorf("%s: tag %#x, want %#x", f.FullName(), c.tag, want)
		}
	}
	if temporalityDelta != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		t.Error("temporalityDelta")
	}
}

// decode unmarshals body with the generated types, which also check that
// every string is valid UTF-8.
func decode(body []byte) (*colmetricspb.ExportMetricsServiceRequest, error) {
	var req colmetricspb.ExportMetricsServiceRequest
	err := proto.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(body, &req)
	return &req, err
}

// kvs writes attributes as {k="v", ...}, in their order.
func kvs(kvs []*commonpb.KeyValue) string {
	var s []string
	for _, kv := range kvs {
		v, ok := kv.Value.GetValue().(*commonpb.AnyValue_StringValue)
		if !ok {
			s = append(s, fmt.Sprintf("%s=%v", kv.Key, kv.Value))
			continue
		}
		s = append(s, fmt.Sprintf("%s=%q", kv.Key, v.StringValue))
	}
	return "{" + strings.Join(s, ", ") + "}"
}

// render writes req one line per metric:
//
//	{host.name="h1"} name gauge @t value {k="v", ...}
//	{host.name="h1"} name sum(delta,monotonic) t0..t value {k="v", ...}
//
// with times in seconds when whole, and "scope=name/version" lines when the
// scope is not veneurd's without a version.
func render(req *colmetricspb.ExportMetricsServiceRequest) string {
	var b strings.Builder
	tm := func(ns uint64) string {
		if ns%uint64(time.Second) == 0 {
			return strconv.FormatUint(ns/uint64(time.Second), 10)
		}
		return strconv.FormatUint(ns, 10) + "ns"
	}
	for _, rm := range req.ResourceMetrics {
		res := kvs(rm.GetResource().GetAttributes())
		if rm.Resource == nil {
			res = "nil"
		}
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.GetName() != ScopeName || sm.Scope.GetVersion() != "" {
				fmt.Fprintf(&b, "scope=%s/%s\n", sm.Scope.GetName(), sm.Scope.GetVersion())
			}
			for _, m := range sm.Metrics {
				var dps []*metricspb.NumberDataPoint
				var kind string
				switch d := m.Data.(type) {
				case *metricspb.Metric_Gauge:
					kind, dps = "gauge", d.Gauge.DataPoints
				case *metricspb.Metric_Sum:
					kind = "sum(" + strings.ToLower(strings.TrimPrefix(d.Sum.AggregationTemporality.String(), "AGGREGATION_TEMPORALITY_"))
					if d.Sum.IsMonotonic {
						kind += ",monotonic"
					}
					kind += ")"
					dps = d.Sum.DataPoints
				default:
					kind = fmt.Sprintf("%T", d)
				}
				for _, dp := range dps {
					when := "@" + tm(dp.TimeUnixNano)
					if dp.StartTimeUnixNano != 0 {
						when = tm(dp.StartTimeUnixNano) + ".." + tm(dp.TimeUnixNano)
					}
					v := strconv.FormatFloat(dp.GetAsDouble(), 'g', -1, 64)
					if _, ok := dp.Value.(*metricspb.NumberDataPoint_AsDouble); !ok {
						v = fmt.Sprintf("%v", dp.Value)
					}
					fmt.Fprintf(&b, "%s %s %s %s %s %s\n", res, m.Name, kind, when, v, kvs(dp.Attributes))
				}
			}
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

const ts = 1795300000

func TestPoint(t *testing.T) {
	e := Encoder{Interval: 10 * time.Second}
	f := func(in sdk.Point, want string) {
		t.Helper()
		if in.Timestamp == 0 {
			in.Timestamp = ts
		}
		e.Reset()
		if !e.Point(&in) {
			t.Fatalf("%+v refused", in)
		}
		req := check(t, &e)
		if got := render(req); got != want {
			t.Errorf("%+v\n got %s\nwant %s", in, got, want)
		}
	}
	// Counters are delta sums over the interval; names are unchanged.
	f(sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:us-east-1"}, Type: sdk.PointCounter, Value: 42, Hostname: "web1"},
		`{host.name="web1"} api.requests sum(delta,monotonic) 1795299990..1795300000 42 {env="prod", region="us-east-1"}`)
	f(sdk.Point{Name: "balance.change", Type: sdk.PointCounter, Value: -3, Hostname: "web1"},
		`{host.name="web1"} balance.change sum(delta) 1795299990..1795300000 -3 {}`)
	f(sdk.Point{Name: "api.latency.p99", Type: sdk.PointGauge, Value: 0.25, Hostname: "web1"},
		`{host.name="web1"} api.latency.p99 gauge @1795300000 0.25 {}`)
	// Status points: a gauge of the status; the message is left out.
	f(sdk.Point{Name: "db.up", Type: sdk.PointStatus, Value: 2, Hostname: "db1", Message: "refused"},
		`{host.name="db1"} db.up gauge @1795300000 2 {}`)
	// A host tag names the host and is no attribute; an empty one is
	// ignored; a bare "host" is an attribute.
	f(sdk.Point{Name: "x", Tags: []string{"a:1", "host:tagged"}, Type: sdk.PointGauge, Value: 1, Hostname: "h1"},
		`{host.name="tagged"} x gauge @1795300000 1 {a="1"}`)
	f(sdk.Point{Name: "x", Tags: []string{"host:"}, Type: sdk.PointGauge, Value: 1, Hostname: "h1"},
		`{host.name="h1"} x gauge @1795300000 1 {}`)
	f(sdk.Point{Name: "x", Tags: []string{"host"}, Type: sdk.PointGauge, Value: 1, Hostname: "h1"},
		`{host.name="h1"} x gauge @1795300000 1 {host="true"}`)
	// No host: a resource without attributes.
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: 1},
		`{} x gauge @1795300000 1 {}`)
	// Tags: "k:v" is k="v" (the value is what follows the first ':'), "k"
	// is k="true", "k:" is k="", an empty key is left out; the last tag of
	// a key wins; attributes sorted by key.
	f(sdk.Point{Name: "x", Tags: []string{"", ":", ":v", "canary", "empty:", "url:http://a/b?c=d"}, Type: sdk.PointGauge, Value: 1},
		`{} x gauge @1795300000 1 {canary="true", empty="", url="http://a/b?c=d"}`)
	f(sdk.Point{Name: "x", Tags: []string{"k", "k.x:1", "k:v", "k:w"}, Type: sdk.PointGauge, Value: 1},
		`{} x gauge @1795300000 1 {k="w", k.x="1"}`)
	f(sdk.Point{Name: "x", Tags: []string{"b:2", "a:1"}, Type: sdk.PointGauge, Value: 1},
		`{} x gauge @1795300000 1 {a="1", b="2"}`)
	// Strings are made valid UTF-8, each bad byte a U+FFFD.
	f(sdk.Point{Name: "x\xff", Tags: []string{"k\xfe:v\xe2\x82", "emoji:😀", "q:\"\n"}, Type: sdk.PointGauge, Value: 1, Hostname: "h\xff"},
		"{host.name=\"h\ufffd\"} x\ufffd gauge @1795300000 1 {emoji=\"😀\", k\ufffd=\"v\ufffd\ufffd\", q=\"\\\"\\n\"}")
	// Values: NaN and infinities kept.
	f(sdk.Point{Name: "x", Type: sdk.PointGauge, Value: math.Inf(-1)}, `{} x gauge @1795300000 -Inf {}`)
	f(sdk.Point{Name: "x", Type: sdk.PointCounter, Value: math.NaN()}, `{} x sum(delta) 1795299990..1795300000 NaN {}`)
	f(sdk.Point{Name: "x", Type: sdk.PointCounter, Value: math.Inf(1)}, `{} x sum(delta,monotonic) 1795299990..1795300000 +Inf {}`)
	f(sdk.Point{Name: "x", Type: sdk.PointCounter, Value: 0}, `{} x sum(delta,monotonic) 1795299990..1795300000 0 {}`)
	e.Interval = 1500 * time.Millisecond
	f(sdk.Point{Name: "x", Type: sdk.PointCounter, Value: 1}, `{} x sum(delta,monotonic) 1795299998500000000ns..1795300000 1 {}`)
}

// check checks that e's body decodes, has Size bytes and Len metrics, and
// is exactly what the generated code writes for the message it decodes to.
func check(t *testing.T, e *Encoder) *colmetricspb.ExportMetricsServiceRequest {
	t.Helper()
	body := e.Body()
	if e.Size() != len(body) {
		t.Fatalf("Size %d, body %d bytes", e.Size(), len(body))
	}
	req, err := decode(body)
	if err != nil {
		t.Fatalf("body does not decode: %v\n%x", err, body)
	}
	n := 0
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			n += len(sm.Metrics)
		}
	}
	if n != e.Len() {
		t.Fatalf("%d metrics, Len %d", n, e.Len())
	}
	// The same size means the same fields: none repeated, none extra, no
	// zero value written where the generated code leaves it out.
	if n := proto.Size(req); n != len(body) {
		t.Fatalf("body has %d bytes, the generated code writes %d for it\n%x", len(body), n, body)
	}
	// The same bytes, as long as protobuf-go keeps its field order (by
	// number, oneof members last), which the encoder follows.
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, body) {
		t.Fatalf("body differs from the generated code's\n got %x\nwant %x", body, again)
	}
	return req
}

// TestExample checks the example of NOTES.md.
func TestExample(t *testing.T) {
	e := NewEncoder("1.4.0")
	e.Interval = 10 * time.Second
	for _, p := range []sdk.Point{
		{Name: "api.requests", Tags: []string{"canary", "env:prod", "region:us-east-1"}, Type: sdk.PointCounter, Value: 42, Timestamp: ts, Hostname: "web1"},
		{Name: "api.latency.p99", Tags: []string{"env:prod"}, Type: sdk.PointGauge, Value: 0.25, Timestamp: ts, Hostname: "web1"},
		{Name: "db.up", Tags: []string{"host:db1"}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "web1", Message: "refused"},
	} {
		e.Point(&p)
	}
	const want = `scope=veneurd/1.4.0
{host.name="web1"} api.requests sum(delta,monotonic) 1795299990..1795300000 42 {canary="true", env="prod", region="us-east-1"}
{host.name="web1"} api.latency.p99 gauge @1795300000 0.25 {env="prod"}
scope=veneurd/1.4.0
{host.name="db1"} db.up gauge @1795300000 2 {}`
	if got := render(check(t, e)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestRefused checks the points that cannot be encoded.
func TestRefused(t *testing.T) {
	var e Encoder
	if e.Point(&sdk.Point{Name: "", Tags: []string{"a:b"}, Value: 1, Hostname: "h"}) {
		t.Fatal("empty name accepted")
	}
	if len(e.Body()) != 0 || e.Len() != 0 || e.Size() != 0 {
		t.Fatal("refused point appended")
	}
}

// TestHosts checks that points are grouped by host, in the order hosts
// first came, and that Reset empties the body.
func TestHosts(t *testing.T) {
	e := NewEncoder("1.2.3")
	e.Interval = 10 * time.Second
	if len(e.Body()) != 0 || e.Len() != 0 || e.Size() != 0 {
		t.Fatal("new Encoder not empty")
	}
	e.Point(&sdk.Point{Name: "old", Type: sdk.PointGauge, Value: 1, Timestamp: ts, Hostname: "h0"})
	e.Reset()
	for _, p := range []sdk.Point{
		{Name: "a", Type: sdk.PointGauge, Value: 1, Hostname: "h1"},
		{Name: "b", Type: sdk.PointCounter, Value: 2, Hostname: "h2"},
		{Name: "c", Type: sdk.PointGauge, Value: 3, Hostname: "h1"},
		{Name: "d", Tags: []string{"host:h2"}, Type: sdk.PointGauge, Value: 4, Hostname: "h1"},
		{Name: "e", Type: sdk.PointGauge, Value: 5},
		{Name: "f", Type: sdk.PointGauge, Value: 6, Hostname: "h1"},
	} {
		p.Timestamp = ts
		e.Point(&p)
		check(t, e)
	}
	const want = `scope=veneurd/1.2.3
{host.name="h1"} a gauge @1795300000 1 {}
{host.name="h1"} c gauge @1795300000 3 {}
{host.name="h1"} f gauge @1795300000 6 {}
scope=veneurd/1.2.3
{host.name="h2"} b sum(delta,monotonic) 1795299990..1795300000 2 {}
{host.name="h2"} d gauge @1795300000 4 {}
scope=veneurd/1.2.3
{} e gauge @1795300000 5 {}`
	if got := render(check(t, e)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Body is the same when asked again.
	if got := render(check(t, e)); got != want {
		t.Errorf("again:\n%s", got)
	}

	e.Reset()
	e.Point(&sdk.Point{Name: "g", Type: sdk.PointGauge, Value: 7, Timestamp: ts, Hostname: "h2"})
	if got := render(check(t, e)); got != "scope=veneurd/1.2.3\n{host.name=\"h2\"} g gauge @1795300000 7 {}" {
		t.Errorf("after Reset: %s", got)
	}
}

// TestManyHosts checks bodies of many hosts, and that an encoder forgets
// hosts past maxRemembered and still encodes right.
func TestManyHosts(t *testing.T) {
	var e Encoder
	for round := range 3 {
		e.Reset()
		if round == 2 && len(e.groups) != 0 {
			t.Fatalf("round %d: %d hosts remembered", round, len(e.groups))
		}
		n := maxRemembered + 10
		for i := range n {
			e.Point(&sdk.Point{Name: "x", Type: sdk.PointGauge, Value: float64(i), Timestamp: ts, Hostname: fmt.Sprintf("h%d-%d", round, i%(n/2))})
		}
		req := check(t, &e)
		if len(req.ResourceMetrics) != n/2 {
			t.Fatalf("%d resources, want %d", len(req.ResourceMetrics), n/2)
		}
		for i, rm := range req.ResourceMetrics {
			host := rm.Resource.Attributes[0].Value.GetStringValue()
			ms := rm.ScopeMetrics[0].Metrics
			if host != fmt.Sprintf("h%d-%d", round, i) || len(ms) != 2 ||
				ms[0].GetGauge().DataPoints[0].GetAsDouble() != float64(i) || ms[1].GetGauge().DataPoints[0].GetAsDouble() != float64(i+n/2) {
				t.Fatalf("resource %d: %s", i, rm)
			}
		}
	}
	e.Reset()
	if len(e.groups) != maxRemembered/2+5 || len(e.index) != len(e.groups) {
		t.Fatalf("%d hosts remembered", len(e.groups))
	}
}

// TestAllocs checks that a warm encoder allocates nothing per point, with
// one host and with 100.
func TestAllocs(t *testing.T) {
	for _, hosts := range []int{1, 100} {
		pts := append(realisticPoints(1000, hosts, false), realisticPoints(1000, hosts, true)...)
		e := NewEncoder("1.0.0")
		e.Interval = 10 * time.Second
		encode := func() {
			e.Reset()
			for i := range pts {
				e.Point(&pts[i])
			}
			_ = e.Body()
		}
		encode()
		if n := testing.AllocsPerRun(10, encode); n != 0 {
			t.Errorf("%d hosts: %v allocations per 1000 points", hosts, n)
		}
	}
}

// realisticPoints returns n points as a daemon flushes them: names of about
// 30 bytes, 4 to 6 tags, hosts hostnames taken in turn. Each run of 6
// points (a timer's) shares its tags; with distinct, each point has tags of
// its own (one tag differs from the previous point's).
func realisticPoints(n, hosts int, distinct bool) []sdk.Point {
	tagSets := [][]string{
		{"env:production", "region:us-east-1", "service:checkout", "version:2024.06.1"},
		{"availability-zone:us-east-1a", "env:production", "kube.namespace:payments", "service:checkout", "team:core"},
		{"canary", "env:production", "http.method:GET", "http.status_code:200", "region:us-east-1", "service:api-gateway"},
	}
	suffixes := []string{".count", ".max", ".min", ".median", ".95percentile", ".avg"}
	types := []sdk.PointType{sdk.PointCounter, sdk.PointGauge, sdk.PointGauge, sdk.PointGauge, sdk.PointGauge, sdk.PointGauge}
	names := make([]string, hosts)
	for i := range names {
		names[i] = fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", i/256, i%256)
	}
	pts := make([]sdk.Point, n)
	for i := range pts {
		pts[i] = sdk.Point{
			Name:      fmt.Sprintf("checkout.payment.request_%03d%s", i/6%1000, suffixes[i%6]),
			Tags:      tagSets[i/6%len(tagSets)],
			Type:      types[i%6],
			Value:     float64(i) * 1.25,
			Timestamp: ts,
			Hostname:  names[i%hosts],
		}
		if distinct {
			tags := slices.Clone(pts[i].Tags)
			tags[0] += strconv.Itoa(i % 2)
			pts[i].Tags = tags
		}
	}
	return pts
}

// BenchmarkEncode encodes 1000 points of one host, their tags shared by
// runs of 6.
func BenchmarkEncode(b *testing.B) { benchmarkEncode(b, realisticPoints(1000, 1, false)) }

// BenchmarkEncode100Hosts encodes 1000 points of 100 hosts in turn, their
// tags shared by runs of 6.
func BenchmarkEncode100Hosts(b *testing.B) { benchmarkEncode(b, realisticPoints(1000, 100, false)) }

// BenchmarkEncodeDistinct encodes 1000 points of one host, each with tags
// unlike the previous point's.
func BenchmarkEncodeDistinct(b *testing.B) { benchmarkEncode(b, realisticPoints(1000, 1, true)) }

// BenchmarkEncodeDistinct100Hosts encodes 1000 points of 100 hosts in turn,
// each with tags unlike the previous point's.
func BenchmarkEncodeDistinct100Hosts(b *testing.B) {
	benchmarkEncode(b, realisticPoints(1000, 100, true))
}

func benchmarkEncode(b *testing.B, pts []sdk.Point) {
	e := NewEncoder("1.0.0")
	e.Interval = 10 * time.Second
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

// TestSameTags checks that attributes made for a point are used again only
// for a point with equal tags, whatever their memory, and that the host
// comes from the point at hand.
func TestSameTags(t *testing.T) {
	var e Encoder
	tags := []string{"a:1", "b:2"}
	f := func(p sdk.Point, want string) {
		t.Helper()
		p.Name, p.Type, p.Timestamp = "x", sdk.PointGauge, ts
		e.Reset()
		if !e.Point(&p) {
			t.Fatal("refused")
		}
		if got := render(check(t, &e)); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	f(sdk.Point{Tags: tags, Hostname: "h1"}, `{host.name="h1"} x gauge @1795300000 0 {a="1", b="2"}`)
	f(sdk.Point{Tags: tags, Hostname: "h2"}, `{host.name="h2"} x gauge @1795300000 0 {a="1", b="2"}`)
	tags[1] = "b:3"
	f(sdk.Point{Tags: tags, Hostname: "h2"}, `{host.name="h2"} x gauge @1795300000 0 {a="1", b="3"}`)
	f(sdk.Point{Tags: tags[:1], Hostname: "h2"}, `{host.name="h2"} x gauge @1795300000 0 {a="1"}`)
	f(sdk.Point{Tags: []string{"a:1", "host:h3"}, Hostname: "h2"}, `{host.name="h3"} x gauge @1795300000 0 {a="1"}`)
	f(sdk.Point{Tags: []string{"a:1", "host:h4"}, Hostname: "h2"}, `{host.name="h4"} x gauge @1795300000 0 {a="1"}`)
	f(sdk.Point{Tags: []string{"a:1", "host:h4"}, Hostname: "h2"}, `{host.name="h4"} x gauge @1795300000 0 {a="1"}`)
	f(sdk.Point{Tags: []string{"a:1"}, Hostname: "h2"}, `{host.name="h2"} x gauge @1795300000 0 {a="1"}`)
	f(sdk.Point{Tags: []string{"a:1"}, Hostname: "h\xff"}, "{host.name=\"h\ufffd\"} x gauge @1795300000 0 {a=\"1\"}")
	f(sdk.Point{Tags: []string{"a:1"}, Hostname: "h\xfe"}, "{host.name=\"h\ufffd\"} x gauge @1795300000 0 {a=\"1\"}")
	f(sdk.Point{}, `{} x gauge @1795300000 0 {}`)
}

// hostOf returns the host.name of a point with tags on hostname, as the
// documentation has it: the last non-empty host tag, or else the hostname,
// each byte that is not UTF-8 made U+FFFD.
func hostOf(tags []string, hostname string) string {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, "host:"); ok && v != "" {
			hostname = v
		}
	}
	return string([]rune(hostname)) // each bad byte a U+FFFD
}

// referenceAttributes is the mapping of tags to attributes of NOTES.md
// written plainly, to check Point against, as kvs writes it.
func referenceAttributes(tags []string) string {
	m := map[string]string{}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			v = "true"
		} else if k == "host" {
			continue
		}
		if k != "" {
			m[string([]rune(k))] = string([]rune(v)) // each bad byte a U+FFFD
		}
	}
	var kvs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kvs = append(kvs, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(kvs, ", ") + "}"
}

// FuzzEncode checks that any points come out as a body the generated
// ExportMetricsServiceRequest unmarshals (as the OTLP/gRPC client and
// receivers do), byte for byte what the generated code writes, with the
// name, value and attributes expected; or are refused for an empty name.
func FuzzEncode(f *testing.F) {
	f.Add("api.requests", "env:prod,region:us-east-1", "web1", "web2", byte(1), 42.0, int64(ts))
	f.Add("x\xff", "k\xfe:v\xe2\x82,:,canary,empty:,host:tagged", "h\xff", "", byte(3), math.NaN(), int64(-1))
	f.Add("", "a:b", "h", "h", byte(2), 1.0, int64(ts))
	e := NewEncoder("v\xff")
	f.Fuzz(func(t *testing.T, name, tags, host, host2 string, typ byte, value float64, stamp int64) {
		p := sdk.Point{Name: name, Type: sdk.PointType(typ), Value: value, Timestamp: stamp, Hostname: host}
		if tags != "" {
			p.Tags = strings.Split(tags, ",")
		}
		e.Interval = time.Duration(stamp % 1000)
		e.Reset()
		// p, then p on host2, then p again: two groups when the hosts
		// differ and no host tag names the host.
		for _, h := range []string{host, host2, host} {
			p.Hostname = h
			if e.Point(&p) != (name != "") {
				t.Fatalf("%+v: Point returned %v", p, name == "")
			}
		}
		req := check(t, e)
		if name == "" {
			if len(e.Body()) != 0 {
				t.Fatalf("%+v: refused, yet appended", p)
			}
			return
		}
		// The groups expected: the host of p on host, on host2, then on
		// host again.
		var want []string
		for _, h := range []string{host, host2} {
			h = hostOf(p.Tags, h)
			if !slices.Contains(want, h) {
				want = append(want, h)
			}
		}
		var got []string
		for _, rm := range req.ResourceMetrics {
			h := ""
			if attrs := rm.Resource.Attributes; len(attrs) > 0 {
				h = attrs[0].Value.GetStringValue()
				if len(attrs) != 1 || attrs[0].Key != HostAttribute || h == "" {
					t.Fatalf("resource %s", rm.Resource)
				}
			}
			got = append(got, h)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%+v on %q and %q: hosts %q, want %q", p, host, host2, got, want)
		}
		for _, rm := range req.ResourceMetrics {
			if len(rm.ScopeMetrics) != 1 || rm.ScopeMetrics[0].Scope.GetName() != ScopeName || rm.ScopeMetrics[0].Scope.GetVersion() != "v\ufffd" {
				t.Fatalf("scope: %s", rm)
			}
			for _, m := range rm.ScopeMetrics[0].Metrics {
				if want := string(appendValidUTF8(nil, name)); m.Name != want {
					t.Fatalf("name %q, want %q", m.Name, want)
				}
				var dp *metricspb.NumberDataPoint
				if sum := m.GetSum(); sum != nil {
					dp = sum.DataPoints[0]
					if p.Type != sdk.PointCounter || sum.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA ||
						sum.IsMonotonic != (value >= 0) || dp.StartTimeUnixNano != uint64(stamp)*uint64(time.Second)-uint64(e.Interval) {
						t.Fatalf("%+v: %s", p, m)
					}
				} else {
					dp = m.GetGauge().DataPoints[0]
					if p.Type == sdk.PointCounter || dp.StartTimeUnixNano != 0 {
						t.Fatalf("%+v: %s", p, m)
					}
				}
				if math.Float64bits(dp.GetAsDouble()) != math.Float64bits(value) || dp.TimeUnixNano != uint64(stamp)*uint64(time.Second) {
					t.Fatalf("%+v: %s", p, dp)
				}
				if got, want := kvs(dp.Attributes), referenceAttributes(p.Tags); got != want {
					t.Fatalf("%+v:\n got %s\nwant %s", p, got, want)
				}
			}
		}
	})
}
