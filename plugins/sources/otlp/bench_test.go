package otlp

import (
	"fmt"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/sdk"
)

// benchRequest is a request of about 1,000 data points as an SDK sends
// them: a resource of six attributes, 100 metrics of 10 points with three
// attributes each. kind is "delta" (delta sums), "cumulative" (cumulative
// sums, each point a stream lookup), "gauge" or "histogram" (delta, the
// SDKs' 15 default bounds).
func benchRequest(kind string, round int) *colmetricspb.ExportMetricsServiceRequest {
	res := attrs("service.name", "checkout", "service.instance.id", "5f1e2a9b-8c7d-4e6f", "host.name", "web-17",
		"telemetry.sdk.language", "go", "telemetry.sdk.name", "opentelemetry", "telemetry.sdk.version", "1.47.0")
	var ms []*metricspb.Metric
	now := uint64(time.Now().UnixNano())
	for m := range 100 {
		name := fmt.Sprintf("app.component%d.operations", m)
		var nps []*metricspb.NumberDataPoint
		var hps []*metricspb.HistogramDataPoint
		for p := range 10 {
			a := attrs("route", fmt.Sprintf("/api/v1/items/%d", p), "method", "GET", "status", "200")
			switch kind {
			case "histogram":
				hp := explicitPoint([]float64{float64(p), float64(p * 10), float64(p * 100), 3, 70}, sdkBounds)
				hp.Attributes, hp.TimeUnixNano = a, now
				hps = append(hps, hp)
			default:
				nps = append(nps, integer(int64(round*(p+1)), 1, now+uint64(round), a...))
			}
		}
		switch kind {
		case "delta":
			ms = append(ms, sum(name, deltaT, true, nps...))
		case "cumulative":
			ms = append(ms, sum(name, cumulT, true, nps...))
		case "gauge":
			ms = append(ms, gauge(name, nps...))
		case "histogram":
			ms = append(ms, histogram(name, deltaT, hps...))
		}
	}
	return request(res, ms...)
}

// nullWriter counts what it is given, as cheaply as a Writer can: the
// benchmarks measure decoding and mapping, not aggregation (BenchmarkWriter
// in sdk measures the Writer).
type nullWriter struct{ n, errs int }

func (w *nullWriter) Metric(sdk.MetricType, sdk.Scope, []byte, []byte, float64, float64) { w.n++ }
func (w *nullWriter) Event(sdk.Event)                                                    {}
func (w *nullWriter) ServiceCheck(sdk.ServiceCheck)                                      {}
func (w *nullWriter) Error(string, string)                                               { w.errs++ }
func (w *nullWriter) Flush()                                                             {}

// BenchmarkExport decodes a protobuf request of 1,000 data points and
// writes its samples, as a worker does; ns/point and allocs/point are per
// data point.
func BenchmarkExport(b *testing.B) {
	for _, kind := range []string{"delta", "cumulative", "gauge", "histogram"} {
		b.Run(kind, func(b *testing.B) {
			body, err := proto.Marshal(benchRequest(kind, 1))
			if err != nil {
				b.Fatal(err)
			}
			c := newConverter([]string{"service.name"}, newStreams(100_000), 0)
			w := &nullWriter{}
			dec := &decoder{}
			const points = 1000
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				req, err := dec.decode(body, limits{maxPoints: 100_000})
				if err != nil {
					b.Fatal(err)
				}
				i++
				if rejected, msg := c.export(req, w, i); rejected != 0 {
					b.Fatal(msg)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/points, "ns/point")
			b.ReportMetric(float64(w.n)/float64(b.N)/points, "samples/point")
		})
	}
}

// BenchmarkConvert is BenchmarkExport without the decoding: the mapping
// alone.
func BenchmarkConvert(b *testing.B) {
	for _, kind := range []string{"delta", "cumulative", "histogram"} {
		b.Run(kind, func(b *testing.B) {
			req := benchRequest(kind, 1)
			c := newConverter([]string{"service.name"}, newStreams(100_000), 0)
			w := &nullWriter{}
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				i++
				c.export(req, w, i)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
		})
	}
}

// TestConvertDoesNotAllocate: once its buffers are warm, mapping a request
// allocates nothing per point (cumulative streams allocate once, when they
// are new).
func TestConvertDoesNotAllocate(t *testing.T) {
	for _, kind := range []string{"delta", "cumulative", "gauge", "histogram"} {
		req := benchRequest(kind, 1)
		c := newConverter([]string{"service.name"}, newStreams(100_000), 0)
		w := &nullWriter{}
		c.export(req, w, 1)
		if n := testing.AllocsPerRun(10, func() { c.export(req, w, 2) }); n > 0 {
			t.Errorf("%s: %v allocations per request of 1,000 points", kind, n)
		}
	}
}
