package ssf

import (
	"testing"

	"github.com/hashicorp/go-hclog"
	vprotocol "github.com/stripe/veneur/v14/protocol"
	"github.com/stripe/veneur/v14/samplers"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/plugins/sources/ssf/ssfpb"
	"github.com/veneurd/veneurd/sdk"
)

// frameWriter is an sdk.Writer that packs samples into a state.Samples
// frame, as the SDK's Writer does before the frame is aggregated: the cost
// of writing a sample, without aggregation's.
type frameWriter struct {
	f      *state.Samples
	n      int
	errors int
}

func (w *frameWriter) Metric(typ sdk.MetricType, scope sdk.Scope, name, tags []byte, value, rate float64) {
	if w.f.Size() > 1<<19 {
		w.f.Reset()
	}
	if err := w.f.Append(uint8(typ), uint8(scope), name, tags, value, rate); err != nil {
		panic(err)
	}
	w.n++
}
func (w *frameWriter) Event(sdk.Event)               {}
func (w *frameWriter) ServiceCheck(sdk.ServiceCheck) {}
func (w *frameWriter) Error(string, string)          { w.errors++ }
func (w *frameWriter) Flush()                        {}

// benchSpans are spans as services send them: one carrying four samples
// with three tags each, one indicator span carrying two, one of samples
// only with a scope.
func benchSpans(t testing.TB) [][]byte {
	tags := map[string]string{"env": "prod", "service": "api", "region": "us-east-1"}
	return [][]byte{
		marshal(t, &ssfpb.SSFSpan{TraceId: 11, Id: 12, ParentId: 11, StartTimestamp: 1700000000000000000, EndTimestamp: 1700000000012345678,
			Service: "api", Name: "GET /v1/charges", Tags: map[string]string{"http.status": "200"},
			Metrics: []*ssfpb.SSFSample{
				{Metric: ssfpb.SSFSample_COUNTER, Name: "api.requests", Value: 1, SampleRate: 1, Tags: tags},
				{Metric: ssfpb.SSFSample_GAUGE, Name: "db.pool.open", Value: 17, SampleRate: 1, Tags: tags},
				{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "http.latency", Value: 12.75, SampleRate: 0.5, Unit: "ms", Tags: tags},
				{Metric: ssfpb.SSFSample_SET, Name: "users.unique", Message: "u-12345", SampleRate: 1, Tags: tags},
			}}),
		marshal(t, &ssfpb.SSFSpan{TraceId: 21, Id: 21, StartTimestamp: 1700000000000000000, EndTimestamp: 1700000000250000000,
			Service: "checkout", Name: "POST /v1/orders", Indicator: true,
			Metrics: []*ssfpb.SSFSample{
				{Metric: ssfpb.SSFSample_COUNTER, Name: "orders.created", Value: 1, Tags: tags},
				{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "orders.amount", Value: 99.5, Tags: tags},
			}}),
		marshal(t, &ssfpb.SSFSpan{Metrics: []*ssfpb.SSFSample{
			{Metric: ssfpb.SSFSample_COUNTER, Name: "jobs.done", Value: 1, SampleRate: 0.5, Scope: ssfpb.SSFSample_GLOBAL, Tags: tags},
			{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "jobs.duration", Value: 1.5, Tags: map[string]string{"queue": "ingest", "veneurlocalonly": ""}},
		}}),
	}
}

func benchHandler(t testing.TB) (*handler, *frameWriter) {
	cfg := defaultConfig()
	cfg.IndicatorSpanTimerName = "indicator_span.duration_ns"
	cfg.ObjectiveSpanTimerName = "objective_span.duration_ns"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	w := &frameWriter{f: state.NewSamples(1 << 20)}
	return newHandler(cfg, w, hclog.NewNullLogger()), w
}

// BenchmarkSpan decodes spans and writes their samples: ns/op is per span
// (3.3 samples each on average, the timers of indicator spans included).
func BenchmarkSpan(b *testing.B) {
	spans := benchSpans(b)
	h, w := benchHandler(b)
	total := 0
	for _, s := range spans {
		total += len(s)
	}
	b.ReportAllocs()
	b.SetBytes(int64(total / len(spans)))
	i := 0
	for b.Loop() {
		h.packet(spans[i])
		i++
		if i == len(spans) {
			i = 0
		}
	}
	b.StopTimer()
	if w.errors > 0 {
		b.Fatalf("%d errors", w.errors)
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "samples/span")
}

// TestSpanNoAlloc fails if a span allocates once the handler's scratch
// buffers are warm.
func TestSpanNoAlloc(t *testing.T) {
	h, w := benchHandler(t)
	for _, s := range benchSpans(t) {
		h.packet(s)
	}
	for i, s := range benchSpans(t) {
		if allocs := testing.AllocsPerRun(100, func() { h.packet(s) }); allocs != 0 {
			t.Errorf("span %d: %v allocations", i, allocs)
		}
	}
	if w.errors != 0 {
		t.Errorf("%d errors", w.errors)
	}
}

// BenchmarkVeneurSpan runs the same spans through Veneur v14.2.0's own
// code, for comparison: protocol.ParseSSF, then the parser's
// ConvertMetrics and ConvertIndicatorMetrics, as its metric extraction
// calls them (without the hand-over to its workers).
func BenchmarkVeneurSpan(b *testing.B) {
	spans := benchSpans(b)
	p := samplers.NewParser(nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		span, err := vprotocol.ParseSSF(spans[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.ConvertMetrics(span); err != nil {
			b.Fatal(err)
		}
		if vprotocol.ValidTrace(span) {
			if _, err := p.ConvertIndicatorMetrics(span, "indicator_span.duration_ns", "objective_span.duration_ns"); err != nil {
				b.Fatal(err)
			}
		}
		i++
		if i == len(spans) {
			i = 0
		}
	}
}
