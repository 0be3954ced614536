package otlp

import (
	"math"
	"slices"
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/veneurd/veneurd/internal/tdigest"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// Builders of OTLP requests for the tests.

const (
	deltaT = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	cumulT = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func attrs(kv ...string) []*commonpb.KeyValue {
	var out []*commonpb.KeyValue
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, str(kv[i], kv[i+1]))
	}
	return out
}

// request wraps metrics in one resource (resource attributes res) and one
// scope.
func request(res []*commonpb.KeyValue, ms ...*metricspb.Metric) *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     &resourcepb.Resource{Attributes: res},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: &commonpb.InstrumentationScope{Name: "test"}, Metrics: ms}},
	}}}
}

func dbl(v float64, start, t uint64, a ...*commonpb.KeyValue) *metricspb.NumberDataPoint {
	return &metricspb.NumberDataPoint{Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v},
		StartTimeUnixNano: start, TimeUnixNano: t, Attributes: a}
}

func integer(v int64, start, t uint64, a ...*commonpb.KeyValue) *metricspb.NumberDataPoint {
	return &metricspb.NumberDataPoint{Value: &metricspb.NumberDataPoint_AsInt{AsInt: v},
		StartTimeUnixNano: start, TimeUnixNano: t, Attributes: a}
}

func gauge(name string, ps ...*metricspb.NumberDataPoint) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: ps}}}
}

func sum(name string, temp metricspb.AggregationTemporality, mono bool, ps ...*metricspb.NumberDataPoint) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
		DataPoints: ps, AggregationTemporality: temp, IsMonotonic: mono}}}
}

func histogram(name string, temp metricspb.AggregationTemporality, ps ...*metricspb.HistogramDataPoint) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
		DataPoints: ps, AggregationTemporality: temp}}}
}

func expHistogram(name string, temp metricspb.AggregationTemporality, ps ...*metricspb.ExponentialHistogramDataPoint) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
		DataPoints: ps, AggregationTemporality: temp}}}
}

func ptr(f float64) *float64 { return &f }

// started is the source's start in the tests' requests: times before it
// are of streams that began before the source.
const started = 1_000_000

// harness converts requests as one worker does, into a Collector.
type harness struct {
	t     *testing.T
	conv  *converter
	col   *sdktest.Collector
	w     sdk.Writer
	clock int64
}

func newHarness(t *testing.T, include ...string) *harness {
	col := &sdktest.Collector{}
	return &harness{t: t, conv: newConverter(include, newStreams(1000), started), col: col, w: col.Writer("grpc")}
}

// export converts req and returns the samples it wrote, with the number of
// points rejected.
func (h *harness) export(req *colmetricspb.ExportMetricsServiceRequest) ([]sdktest.Metric, int64, string) {
	h.t.Helper()
	before := len(h.col.Metrics())
	h.clock++
	rejected, msg := h.conv.export(req, h.w, h.clock)
	h.w.Flush()
	for _, p := range h.col.Problems() {
		h.t.Errorf("Writer contract: %s", p)
	}
	return h.col.Metrics()[before:], rejected, msg
}

// digestOf adds the histogram samples named name to a digest as veneurd
// aggregates them (weight 1/rate).
func digestOf(ms []sdktest.Metric, name string) *tdigest.Merging {
	d := tdigest.New(tdigest.DefaultCompression)
	for _, m := range ms {
		if m.Name == name && m.Type == sdk.Histogram {
			d.Add(m.Value, 1/m.Rate)
		}
	}
	return d
}

// exactQuantile is the q quantile of sorted samples, the nearest-rank
// definition.
func exactQuantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// explicitPoint builds a delta explicit-bucket point of samples, as an
// OpenTelemetry SDK does: bucket i holds the values in (bounds[i-1],
// bounds[i]].
func explicitPoint(samples, bounds []float64) *metricspb.HistogramDataPoint {
	counts := make([]uint64, len(bounds)+1)
	var s float64
	for _, v := range samples {
		i, _ := slices.BinarySearch(bounds, v) // first bound >= v
		counts[i]++
		s += v
	}
	return &metricspb.HistogramDataPoint{Count: uint64(len(samples)), Sum: ptr(s), BucketCounts: counts, ExplicitBounds: bounds,
		Min: ptr(slices.Min(samples)), Max: ptr(slices.Max(samples))}
}

// exponentialPoint builds a delta exponential point of positive samples at
// scale, as an OpenTelemetry SDK does: bucket index i holds (base^i,
// base^(i+1)].
func exponentialPoint(samples []float64, scale int32) *metricspb.ExponentialHistogramDataPoint {
	idx := func(v float64) int64 { return expIndex(v, scale) }
	lo, hi := idx(slices.Min(samples)), idx(slices.Max(samples))
	counts := make([]uint64, hi-lo+1)
	var s float64
	for _, v := range samples {
		counts[idx(v)-lo]++
		s += v
	}
	return &metricspb.ExponentialHistogramDataPoint{Count: uint64(len(samples)), Sum: ptr(s), Scale: scale,
		Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: int32(lo), BucketCounts: counts},
		Min:      ptr(slices.Min(samples)), Max: ptr(slices.Max(samples))}
}

func tagsOf(ms []sdktest.Metric) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name+"{"+m.Tags+"}")
	}
	return out
}

func join(s []string) string { return strings.Join(s, " ") }

// expIndex is the index of the exponential bucket at scale holding v > 0:
// the i with base^i < v <= base^(i+1).
func expIndex(v float64, scale int32) int64 {
	i := int64(math.Ceil(math.Log2(v)*math.Ldexp(1, int(scale)))) - 1
	for expLower(i+1, scale) < v {
		i++
	}
	for expLower(i, scale) >= v {
		i--
	}
	return i
}
