package otlp

import (
	"math"
	"slices"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

func TestDeltaSums(t *testing.T) {
	h := newHarness(t)
	got, rejected, _ := h.export(request(nil,
		sum("req", deltaT, true, integer(5, 0, 10), integer(3, 0, 10, str("code", "500"))),
		sum("balance", deltaT, false, dbl(-2.5, 0, 10)),
	))
	want := []sdktest.Metric{
		{Protocol: "grpc", Type: sdk.Counter, Name: "req", Value: 5, Rate: 1},
		{Protocol: "grpc", Type: sdk.Counter, Name: "req", Tags: "code:500", Value: 3, Rate: 1},
		{Protocol: "grpc", Type: sdk.Counter, Name: "balance", Value: -2.5, Rate: 1},
	}
	if rejected != 0 || !slices.Equal(got, want) {
		t.Fatalf("got %v (rejected %d), want %v", got, rejected, want)
	}
}

// TestCumulativeSums: the increase since the last point of the same
// stream; the first point counts whole only if its stream began after the
// source did; a reset (lower value, or a new start time) counts the new
// value.
func TestCumulativeSums(t *testing.T) {
	h := newHarness(t)
	old := uint64(started - 10) // began before the source
	steps := []struct {
		p    *metricspb.NumberDataPoint
		want float64
	}{
		{integer(10, old, 100), 0},                 // first, of an old stream: remembered only
		{integer(15, old, 200), 5},                 //
		{integer(15, old, 300), 0},                 // no change
		{integer(4, old, 400), 4},                  // lower: a reset the start time does not show
		{integer(9, old, 500), 5},                  //
		{integer(2, started+450, 600), 2},          // a new start time: a reset
		{integer(7, started+450, 700), 5},          //
		{dbl(7.5, started+450, 700), 0.5},          // the same time again: a duplicate or a correction
		{integer(1, started+450, 650), math.NaN()}, // older than the last: rejected
		{integer(8, started+450, 800), 0.5},
	}
	for i, s := range steps {
		got, rejected, msg := h.export(request(nil, sum("c", cumulT, true, s.p)))
		if math.IsNaN(s.want) {
			if rejected != 1 || len(got) != 0 || msg == "" {
				t.Fatalf("step %d: got %v, rejected %d (%q), want one rejected", i, got, rejected, msg)
			}
			continue
		}
		if rejected != 0 || len(got) != 1 || got[0].Type != sdk.Counter || got[0].Value != s.want {
			t.Fatalf("step %d: got %v (rejected %d), want a counter of %g", i, got, rejected, s.want)
		}
	}
	if errs := h.col.Errors(); len(errs) != 1 || errs[0] != (sdktest.Error{PacketType: "otlp", Reason: ReasonOutOfOrder}) {
		t.Errorf("errors %v", errs)
	}

	// A stream that began after the source: its first point is all new.
	got, _, _ := h.export(request(nil, sum("new", cumulT, true, dbl(42, started+1, 900))))
	if len(got) != 1 || got[0].Value != 42 {
		t.Errorf("first point of a new stream: %v, want 42", got)
	}
}

// TestStreams: streams differ by point attributes, by resource (all its
// attributes, even those that are not tags) and by scope; two streams with
// the same tags add their increases into one series.
func TestStreams(t *testing.T) {
	h := newHarness(t, "service.name")
	old := uint64(1)
	send := func(inst string, v int64, ts uint64) []sdktest.Metric {
		got, _, _ := h.export(request(attrs("service.name", "api", "service.instance.id", inst),
			sum("c", cumulT, true, integer(v, old, ts, str("k", "v")))))
		return got
	}
	send("a", 100, 1)
	send("b", 1000, 1)
	if got := send("a", 110, 2); got[0].Value != 10 || got[0].Tags != "k:v,service.name:api" {
		t.Fatalf("instance a: %v", got)
	}
	if got := send("b", 1003, 2); got[0].Value != 3 || got[0].Tags != "k:v,service.name:api" {
		t.Fatalf("instance b: %v", got)
	}
}

func TestStreamLimitAndExpiry(t *testing.T) {
	h := newHarness(t)
	h.conv.streams = newStreams(2)
	req := request(nil, sum("c", cumulT, true,
		integer(1, 1, 1, str("i", "1")), integer(1, 1, 1, str("i", "2")), integer(1, 1, 1, str("i", "3"))))
	got, rejected, _ := h.export(req)
	if len(got) != 2 || rejected != 1 {
		t.Fatalf("got %v, rejected %d: want 2 streams kept and 1 rejected", got, rejected)
	}
	if errs := h.col.Errors(); len(errs) != 1 || errs[0].Reason != ReasonTooManyStreams {
		t.Fatalf("errors %v", errs)
	}
	if n := h.conv.streams.expire(h.clock + 1); n != 2 || h.conv.streams.len() != 0 {
		t.Fatalf("expired %d, left %d", n, h.conv.streams.len())
	}
	if _, rejected, _ := h.export(req); rejected != 1 {
		t.Fatalf("after expiry: rejected %d", rejected)
	}
}

func TestNonMonotonicCumulativeIsGauge(t *testing.T) {
	h := newHarness(t)
	got, _, _ := h.export(request(nil, sum("queue", cumulT, false, integer(7, 1, 2), integer(-3, 1, 3, str("q", "b")))))
	want := []sdktest.Metric{
		{Protocol: "grpc", Type: sdk.Gauge, Name: "queue", Value: 7, Rate: 1},
		{Protocol: "grpc", Type: sdk.Gauge, Name: "queue", Tags: "q:b", Value: -3, Rate: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestGauges(t *testing.T) {
	h := newHarness(t)
	nan := dbl(math.NaN(), 0, 1)
	none := &metricspb.NumberDataPoint{TimeUnixNano: 1}
	stale := dbl(3, 0, 1)
	stale.Flags = noRecordedValue
	got, rejected, msg := h.export(request(nil, gauge("g", integer(-4, 0, 1), dbl(0.25, 0, 1, str("a", "b")), nan, none, stale)))
	want := []sdktest.Metric{
		{Protocol: "grpc", Type: sdk.Gauge, Name: "g", Value: -4, Rate: 1},
		{Protocol: "grpc", Type: sdk.Gauge, Name: "g", Tags: "a:b", Value: 0.25, Rate: 1},
	}
	if !slices.Equal(got, want) || rejected != 2 || msg == "" {
		t.Fatalf("got %v, rejected %d (%q)", got, rejected, msg)
	}
	wantErrs := []sdktest.Error{{PacketType: "otlp", Reason: ReasonInvalidValue}, {PacketType: "otlp", Reason: ReasonNoValue}}
	if errs := h.col.Errors(); !slices.Equal(errs, wantErrs) {
		t.Fatalf("errors %v, want %v", errs, wantErrs)
	}
}

func TestRejectedMetrics(t *testing.T) {
	h := newHarness(t)
	got, rejected, _ := h.export(request(nil,
		gauge("", integer(1, 0, 1), integer(2, 0, 1)),
		sum("s", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED, true, integer(1, 0, 1)),
		&metricspb.Metric{Name: "empty"},
		gauge("ok", integer(1, 0, 1)),
	))
	if len(got) != 1 || got[0].Name != "ok" || rejected != 3 {
		t.Fatalf("got %v, rejected %d", got, rejected)
	}
	wantErrs := []sdktest.Error{{PacketType: "otlp", Reason: ReasonNoName}, {PacketType: "otlp", Reason: ReasonNoName}, {PacketType: "otlp", Reason: ReasonBadTemporality}, {PacketType: "otlp", Reason: ReasonNoData}}
	if errs := h.col.Errors(); !slices.Equal(errs, wantErrs) {
		t.Fatalf("errors %v, want %v", errs, wantErrs)
	}
}

func TestTags(t *testing.T) {
	h := newHarness(t, "service.name", "host.name", "deployment.environment")
	res := attrs("service.name", "api", "host.name", "web-1", "service.instance.id", "i-123", "deployment.environment", "prod")
	arr := &commonpb.KeyValue{Key: "arr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
		Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}, {Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}}}}}
	kvl := &commonpb.KeyValue{Key: "kv", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
		Values: attrs("x", "1", "y", "2")}}}}
	byt := &commonpb.KeyValue{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xff, 0}}}}
	dblv := &commonpb.KeyValue{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}}
	got, _, _ := h.export(request(res, gauge("g",
		integer(1, 0, 1, str("z", "last"), str("a", "x,y"), str("k:1", "v:1"), str("deployment.environment", "canary"), arr, kvl, byt, dblv, str("", "nokey")),
		integer(2, 0, 1),
	)))
	// A resource attribute given twice is one tag.
	got2, _, _ := h.export(request(append(res, str("service.name", "other")), gauge("g", integer(3, 0, 1))))
	got = append(got, got2...)
	want := []string{
		"g{a:x_y,arr:1;true,b:/wA=,d:0.5,deployment.environment:canary,host:web-1,k_1:v:1,kv:x=1;y=2,service.name:api,z:last}",
		"g{deployment.environment:prod,host:web-1,service.name:api}",
		"g{deployment.environment:prod,host:web-1,service.name:api}",
	}
	if got := tagsOf(got); !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", join(got), join(want))
	}
}

// TestHistogramDelta checks what a delta point becomes: the count exact
// (the weights), min and max exact (samples of their own), the sum exact
// (the samples moved within their buckets), every sample in its bucket.
func TestHistogramDelta(t *testing.T) {
	h := newHarness(t)
	samples := []float64{0.5, 3, 4, 7, 7, 9, 12, 30, 49, 49, 51, 180, 999, 1500}
	bounds := []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 1000}
	p := explicitPoint(samples, bounds)
	got, rejected, _ := h.export(request(nil, histogram("lat", deltaT, p)))
	if rejected != 0 {
		t.Fatalf("rejected %d", rejected)
	}
	d := digestOf(got, "lat")
	var s float64
	for _, v := range samples {
		s += v
	}
	if d.Count() != float64(len(samples)) || d.Min() != 0.5 || d.Max() != 1500 || math.Abs(d.Sum()-s) > 1e-9*s {
		t.Fatalf("count %g min %g max %g sum %g; want %d, 0.5, 1500, %g", d.Count(), d.Min(), d.Max(), d.Sum(), len(samples), s)
	}
	for _, m := range got {
		if m.Type != sdk.Histogram || m.Scope != sdk.ScopeDefault || m.Name != "lat" {
			t.Errorf("sample %v", m)
		}
		if m.Value < 0.5 || m.Value > 1500 {
			t.Errorf("sample %v outside [min, max]", m)
		}
	}
	// Each sample lies within its bucket: the weights per bucket, less the
	// min and max samples, are the bucket counts.
	perBucket := make([]float64, len(bounds)+1)
	for _, m := range got[2:] {
		i, _ := slices.BinarySearch(bounds, m.Value)
		perBucket[i] += 1 / m.Rate
	}
	want := make([]float64, len(bounds)+1)
	for i, n := range p.BucketCounts {
		want[i] = float64(n)
	}
	iMin, _ := slices.BinarySearch(bounds, 0.5)
	iMax, _ := slices.BinarySearch(bounds, 1500)
	want[iMin]-- // the min sample
	want[iMax]-- // the max sample
	if !slices.Equal(perBucket, want) {
		t.Errorf("weights per bucket %v, want %v", perBucket, want)
	}
}

func TestHistogramWithoutBuckets(t *testing.T) {
	h := newHarness(t)
	got, _, _ := h.export(request(nil, histogram("h", deltaT,
		&metricspb.HistogramDataPoint{Count: 4, Sum: ptr(10)},
		&metricspb.HistogramDataPoint{Count: 3},
	)))
	want := []sdktest.Metric{
		{Protocol: "grpc", Type: sdk.Histogram, Name: "h", Value: 2.5, Rate: 0.25},
		{Protocol: "grpc", Type: sdk.Histogram, Name: "h", Value: 0, Rate: 1.0 / 3},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestHistogramCumulative(t *testing.T) {
	h := newHarness(t)
	bounds := []float64{10, 100}
	pt := func(start, ts uint64, counts ...uint64) *metricspb.HistogramDataPoint {
		// Each bucket's values are at 5, 50 or 500.
		var n uint64
		var s float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, c := range counts {
			v := []float64{5, 50, 500}[i]
			n += c
			s += float64(c) * v
			if c > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		return &metricspb.HistogramDataPoint{StartTimeUnixNano: start, TimeUnixNano: ts, Count: n, Sum: ptr(s),
			BucketCounts: counts, ExplicitBounds: bounds, Min: ptr(lo), Max: ptr(hi)}
	}
	steps := []struct {
		p    *metricspb.HistogramDataPoint
		want []float64 // weights per bucket
	}{
		{pt(1, 10, 1, 2, 3), nil},                         // old stream: remembered
		{pt(1, 20, 2, 2, 5), []float64{1, 0, 2}},          // the increase
		{pt(1, 30, 0, 1, 0), []float64{0, 1, 0}},          // lower: a reset
		{pt(started+25, 40, 4, 0, 0), []float64{4, 0, 0}}, // new start: a reset
	}
	for i, s := range steps {
		got, rejected, _ := h.export(request(nil, histogram("h", cumulT, s.p)))
		w := make([]float64, 3)
		for _, m := range got {
			j, _ := slices.BinarySearch(bounds, m.Value)
			w[j] += 1 / m.Rate
		}
		if s.want == nil {
			if len(got) != 0 {
				t.Fatalf("step %d: %v, want nothing", i, got)
			}
			continue
		}
		if rejected != 0 || !slices.Equal(w, s.want) {
			t.Fatalf("step %d: weights %v, want %v (%v)", i, w, s.want, got)
		}
		// The sum of the increase is exact: each bucket's values are at
		// 5, 50 or 500.
		var wantSum, gotSum float64
		for j, n := range s.want {
			wantSum += n * []float64{5, 50, 500}[j]
		}
		for _, m := range got {
			gotSum += m.Value / m.Rate
		}
		if math.Abs(gotSum-wantSum) > 1e-9*wantSum {
			t.Errorf("step %d: sum %g, want %g", i, gotSum, wantSum)
		}
	}
}

func TestBadHistograms(t *testing.T) {
	h := newHarness(t)
	bad := []*metricspb.HistogramDataPoint{
		{Count: 3, BucketCounts: []uint64{1, 2}, ExplicitBounds: []float64{1, 2}},             // one count too few
		{Count: 3, BucketCounts: []uint64{1, 1, 1}, ExplicitBounds: []float64{2, 1}},          // bounds not increasing
		{Count: 4, BucketCounts: []uint64{1, 1, 1}, ExplicitBounds: []float64{1, 2}},          // counts do not add up
		{Count: 3, BucketCounts: []uint64{1, 1, 1}, ExplicitBounds: []float64{1, math.NaN()}}, // NaN bound
		{Count: 1, Sum: ptr(math.Inf(1))},
	}
	got, rejected, _ := h.export(request(nil, histogram("h", deltaT, bad...)))
	if len(got) != 0 || rejected != int64(len(bad)) {
		t.Fatalf("got %v, rejected %d", got, rejected)
	}
}

func TestExponentialHistogram(t *testing.T) {
	h := newHarness(t)
	p := &metricspb.ExponentialHistogramDataPoint{
		Count: 10, Sum: ptr(-1 + 0 + 2*1.5 + 3*3 + 3*7), Scale: 0, ZeroCount: 1, ZeroThreshold: 0,
		Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 0, BucketCounts: []uint64{2, 3, 3}}, // (1,2] (2,4] (4,8]
		Negative: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 0, BucketCounts: []uint64{1}},       // [-2,-1)
		Min:      ptr(-1), Max: ptr(7),
	}
	got, rejected, _ := h.export(request(nil, expHistogram("e", deltaT, p)))
	if rejected != 0 {
		t.Fatalf("rejected %d", rejected)
	}
	d := digestOf(got, "e")
	if d.Count() != 10 || d.Min() != -1 || d.Max() != 7 || math.Abs(d.Sum()-*p.Sum) > 1e-9 {
		t.Fatalf("count %g min %g max %g sum %g, want 10, -1, 7, %g: %v", d.Count(), d.Min(), d.Max(), d.Sum(), *p.Sum, got)
	}
	// Values stay within their buckets: (1,2], (2,4], (4,8] hold 2, 3 and
	// 3 (the last less the max sample), 0 holds 1, and the negative bucket
	// only the min sample.
	w := map[string]float64{}
	for _, m := range got {
		switch v := m.Value; {
		case v == -1:
			w["min"] += 1 / m.Rate
		case v == 7:
			w["max"] += 1 / m.Rate
		case v == 0:
			w["0"] += 1 / m.Rate
		case v > 1 && v <= 2:
			w["(1,2]"] += 1 / m.Rate
		case v > 2 && v <= 4:
			w["(2,4]"] += 1 / m.Rate
		case v > 4 && v <= 8:
			w["(4,8]"] += 1 / m.Rate
		default:
			t.Errorf("sample %v in no bucket", m)
		}
	}
	want := map[string]float64{"min": 1, "max": 1, "0": 1, "(1,2]": 2, "(2,4]": 3, "(4,8]": 2}
	for k, v := range want {
		if w[k] != v {
			t.Errorf("%s: weight %g, want %g (%v)", k, w[k], v, w)
		}
	}
}

// TestExponentialCumulativeDownscale: a cumulative exponential histogram
// whose scale drops between points (the SDK halves its resolution when the
// range grows): the last point is brought to the new scale before the
// difference is taken.
func TestExponentialCumulativeDownscale(t *testing.T) {
	h := newHarness(t)
	first := &metricspb.ExponentialHistogramDataPoint{StartTimeUnixNano: 1, TimeUnixNano: 10, Count: 3, Scale: 1,
		Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 2, BucketCounts: []uint64{1, 1, 1}}} // indexes 2, 3, 4 at scale 1
	second := &metricspb.ExponentialHistogramDataPoint{StartTimeUnixNano: 1, TimeUnixNano: 20, Count: 7, Scale: 0,
		Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 1, BucketCounts: []uint64{3, 4}}} // indexes 1, 2 at scale 0: (2,4], (4,8]
	if got, _, _ := h.export(request(nil, expHistogram("e", cumulT, first))); len(got) != 0 {
		t.Fatalf("first point of an old stream: %v", got)
	}
	got, rejected, _ := h.export(request(nil, expHistogram("e", cumulT, second)))
	// At scale 0 the first point is (2,4]: 2 (indexes 2 and 3), (4,8]: 1.
	// The increase is (2,4]: 1, (4,8]: 3.
	w := map[string]float64{}
	for _, m := range got {
		if m.Value > 2 && m.Value <= 4 {
			w["(2,4]"] += 1 / m.Rate
		} else if m.Value > 4 && m.Value <= 8 {
			w["(4,8]"] += 1 / m.Rate
		} else {
			t.Errorf("sample %v", m)
		}
	}
	if rejected != 0 || w["(2,4]"] != 1 || w["(4,8]"] != 3 {
		t.Fatalf("weights %v, want (2,4]: 1, (4,8]: 3", w)
	}
}

func TestSummary(t *testing.T) {
	h := newHarness(t)
	pt := func(ts, count uint64, s float64) *metricspb.SummaryDataPoint {
		return &metricspb.SummaryDataPoint{StartTimeUnixNano: 1, TimeUnixNano: ts, Count: count, Sum: s,
			Attributes: attrs("k", "v"),
			QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{
				{Quantile: 0, Value: 1}, {Quantile: 0.5, Value: 5}, {Quantile: 0.99, Value: 9}, {Quantile: 0.999, Value: 9.9}, {Quantile: 1, Value: 10}}}
	}
	summary := func(p *metricspb.SummaryDataPoint) *metricspb.Metric {
		return &metricspb.Metric{Name: "rt", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{p}}}}
	}
	h.export(request(nil, summary(pt(10, 100, 500))))
	got, _, _ := h.export(request(nil, summary(pt(20, 130, 650.5))))
	want := []sdktest.Metric{
		{Protocol: "grpc", Type: sdk.Gauge, Name: "rt.min", Tags: "k:v", Value: 1, Rate: 1},
		{Protocol: "grpc", Type: sdk.Gauge, Name: "rt.50percentile", Tags: "k:v", Value: 5, Rate: 1},
		{Protocol: "grpc", Type: sdk.Gauge, Name: "rt.99percentile", Tags: "k:v", Value: 9, Rate: 1},
		{Protocol: "grpc", Type: sdk.Gauge, Name: "rt.99_9percentile", Tags: "k:v", Value: 9.9, Rate: 1},
		{Protocol: "grpc", Type: sdk.Gauge, Name: "rt.max", Tags: "k:v", Value: 10, Rate: 1},
		{Protocol: "grpc", Type: sdk.Counter, Name: "rt.count", Tags: "k:v", Value: 30, Rate: 1},
		{Protocol: "grpc", Type: sdk.Counter, Name: "rt.sum", Tags: "k:v", Value: 150.5, Rate: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%v\nwant\n%v", got, want)
	}
}

// TestWeights: every whole weight reaches the digest exactly, split where
// no rate gives it.
func TestWeights(t *testing.T) {
	h := newHarness(t)
	for _, n := range []uint64{1, 2, 3, 49, 93, 98, 99, 1000003, 1 << 40, 1<<53 - 1} {
		got, _, _ := h.export(request(nil, histogram("w", deltaT, &metricspb.HistogramDataPoint{Count: n})))
		var total float64
		for _, m := range got {
			total += 1 / m.Rate
		}
		if total != float64(n) || len(got) > 3 {
			t.Errorf("weight %d: %d samples weighing %v", n, len(got), total)
		}
	}
}

// TestOTLPJSON decodes OTLP's JSON as the specification writes it (as in
// opentelemetry-proto's examples/metrics.json): lowerCamelCase keys, 64-bit
// integers as strings, enums as numbers, trace and span ids in hex.
func TestOTLPJSON(t *testing.T) {
	body := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
	"scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},"metrics":[
	{"name":"my.counter","unit":"1","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
		{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
		 "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}],
		 "exemplars":[{"asInt":"3","timeUnixNano":"1544712660300000000","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},
	{"name":"my.gauge","gauge":{"dataPoints":[{"asInt":"10","timeUnixNano":"1544712660300000000"}]}},
	{"name":"my.histogram","histogram":{"aggregationTemporality":1,"dataPoints":[
		{"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000","count":"2","sum":2,
		 "bucketCounts":["1","1"],"explicitBounds":[1],"min":0,"max":2}]}}]}]}]}`
	req := &colmetricspb.ExportMetricsServiceRequest{}
	if err := decodeJSON([]byte(body), limits{maxPoints: 10}, req); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "service.name")
	got, rejected, _ := h.export(req)
	if rejected != 0 {
		t.Fatalf("rejected %d", rejected)
	}
	want := []string{
		"my.counter{my.counter.attr:some value,service.name:my.service}",
		"my.gauge{service.name:my.service}",
		"my.histogram{service.name:my.service}",
		"my.histogram{service.name:my.service}",
	}
	if got := tagsOf(got); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got[0].Value != 5 || got[1].Value != 10 || got[2].Value != 0 || got[3].Value != 2 {
		t.Errorf("values %v", got)
	}
}
