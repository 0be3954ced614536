package otlp_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
	"github.com/veneurd/veneurd/plugins/sinks/otlp"
)

// labels are the attributes a point should arrive with: its tags, a bare
// tag with the value "true", and the host (a host: tag's, else the
// point's) as the resource attribute host.name.
func labels(p localfile.Line) map[string]string {
	l := map[string]string{"host.name": p.Hostname}
	for _, tag := range p.Tags {
		k, v, ok := strings.Cut(tag, ":")
		switch {
		case k == "host" && ok:
			l["host.name"] = v
		case !ok:
			l[k] = "true"
		default:
			l[k] = v
		}
	}
	return l
}

// expected is what VictoriaMetrics should hold: names as they are, the
// labels above and the instrumentation scope's.
func expected(lines []localfile.Line) map[sinkcheck.Key]float64 {
	want := map[sinkcheck.Key]float64{}
	for _, p := range lines {
		l := labels(p)
		l["scope.name"], l["scope.version"] = "veneurd", otlp.Version
		want[sinkcheck.Key{Series: sinkcheck.SeriesName(p.Name, l), TS: p.Timestamp}] = p.Value
	}
	return want
}

// collectorServer is an OTLP/gRPC receiver made of the OpenTelemetry
// project's generated service: it decodes each request with the official
// types and records it. No collector can be installed here.
type collectorServer struct {
	collector.UnimplementedMetricsServiceServer
	mu  sync.Mutex
	got []*collector.ExportMetricsServiceRequest
}

func (c *collectorServer) Export(_ context.Context, r *collector.ExportMetricsServiceRequest) (*collector.ExportMetricsServiceResponse, error) {
	c.mu.Lock()
	c.got = append(c.got, r)
	c.mu.Unlock()
	return &collector.ExportMetricsServiceResponse{}, nil
}

// points turns what the server received into points by Key, checking each
// metric's shape: a delta Sum starting one interval before its time, or a
// Gauge.
func (c *collectorServer) points(t *testing.T) map[sinkcheck.Key]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := map[sinkcheck.Key]float64{}
	for _, r := range c.got {
		for _, rm := range r.ResourceMetrics {
			l := map[string]string{}
			for _, a := range rm.Resource.GetAttributes() {
				l[a.Key] = a.Value.GetStringValue()
			}
			for _, sm := range rm.ScopeMetrics {
				if sm.Scope.GetName() != "veneurd" || sm.Scope.GetVersion() != otlp.Version {
					t.Errorf("scope %v", sm.Scope)
				}
				for _, m := range sm.Metrics {
					var dps []*metrics.NumberDataPoint
					switch d := m.Data.(type) {
					case *metrics.Metric_Sum:
						dps = d.Sum.DataPoints
						if d.Sum.AggregationTemporality != metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
							t.Errorf("%s: temporality %v, want delta", m.Name, d.Sum.AggregationTemporality)
						}
						for _, dp := range dps {
							if dp.TimeUnixNano-dp.StartTimeUnixNano != uint64(time.Second) {
								t.Errorf("%s: a delta sum from %d to %d, want one interval (1s)", m.Name, dp.StartTimeUnixNano, dp.TimeUnixNano)
							}
						}
					case *metrics.Metric_Gauge:
						dps = d.Gauge.DataPoints
					default:
						t.Errorf("%s: %T, want a sum or a gauge", m.Name, m.Data)
					}
					for _, dp := range dps {
						pl := map[string]string{}
						for k, v := range l {
							pl[k] = v
						}
						for _, a := range dp.Attributes {
							pl[a.Key] = a.Value.GetStringValue()
						}
						got[sinkcheck.Key{Series: sinkcheck.SeriesName(m.Name, pl), TS: int64(dp.TimeUnixNano / 1e9)}] = dp.GetAsDouble()
					}
				}
			}
		}
	}
	return got
}

// TestDelivers sends the workload through the builtin sink over OTLP/HTTP
// to VictoriaMetrics, and through the standalone binary, pinned by its
// sha256, over OTLP/gRPC to a receiver made of OpenTelemetry's generated
// service, and checks that each holds every point the oracle got, once.
func TestDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	vm := receivers.VictoriaMetrics(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, col := grpc.NewServer(), &collectorServer{}
	collector.RegisterMetricsServiceServer(srv, col)
	go srv.Serve(l)
	defer srv.Stop()

	r := sinkcheck.Start(t, sinkcheck.Standalone(t, "otlp")+fmt.Sprintf(`
sink "otlp" "http" {
  endpoint = "%s/opentelemetry/v1/metrics"
}
sink "otlp_standalone" "grpc" {
  endpoint = %q
  protocol = "grpc"
  insecure = true
}
`, vm.HTTP, l.Addr().String()))
	lines := r.SendWorkload(t)
	lines = append(lines, sinkcheck.Checks(daemontest.ReadLines(t, r.Oracle), sinkcheck.Prefix)...)
	sinkcheck.WaitVM(t, vm, `{__name__=~"e2e[.].*"}`, expected(lines), 20*time.Second)

	want := map[sinkcheck.Key]float64{}
	for _, p := range lines {
		want[sinkcheck.Key{Series: sinkcheck.SeriesName(p.Name, labels(p)), TS: p.Timestamp}] = p.Value
	}
	var diff string
	if !daemontest.Until(20*time.Second, func() bool {
		got := col.points(t)
		for k := range got {
			if !strings.HasPrefix(k.Series, sinkcheck.Prefix) {
				delete(got, k) // veneurd's own metrics
			}
		}
		diff = sinkcheck.Diff(got, want)
		return diff == ""
	}) {
		t.Fatalf("OTLP/gRPC: %s", diff)
	}
}

// TestOutage stops the receiver for three intervals: see sinkcheck.Outage.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	sinkcheck.Outage(t, sinkcheck.OutageSink{
		Type: "otlp",
		Block: func(name string, vm *receivers.VM, maxBuffered int) string {
			return fmt.Sprintf(`
sink "otlp" %q {
  endpoint            = "%s/opentelemetry/v1/metrics"
  max_buffered_points = %d
  max_retry_backoff   = "250ms"
  timeout             = "2s"
}
`, name, vm.HTTP, maxBuffered)
		},
		Want:  expected,
		Match: `{__name__=~"e2e[.]outage[.].*"}`,
	})
}
