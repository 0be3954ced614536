package openmetrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/veneurd/veneurd/sdk"
)

// The recorded bodies: testdata/node_exporter-1.txt and -2.txt are two
// scrapes, ten seconds apart, of Debian's prometheus-node-exporter 1.5.0
// on this project's build machine (2 cores), its default collectors and
// interrupts, processes, tcpstat, ksmd, buddyinfo, zoneinfo, meminfo_numa,
// mountstats, cgroups, ethtool, network_route, lnstat and qdisc: 1,007
// samples, 110 KB, a node_exporter-sized target. testdata/prometheus.txt is
// Prometheus 2.42's own /metrics (271 samples, with histograms and
// summaries).

// nopWriter takes samples and drops them: what a scrape costs the source
// itself, without the SDK's aggregation.
type nopWriter struct{ n int }

func (w *nopWriter) Metric(sdk.MetricType, sdk.Scope, []byte, []byte, float64, float64) { w.n++ }
func (w *nopWriter) Event(sdk.Event)                                                    {}
func (w *nopWriter) ServiceCheck(sdk.ServiceCheck)                                      {}
func (w *nopWriter) Error(string, string)                                               {}
func (w *nopWriter) Flush()                                                             {}

func readBodies(b *testing.B, names ...string) [][]byte {
	b.Helper()
	var out [][]byte
	for _, n := range names {
		body, err := os.ReadFile("testdata/" + n)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}

func benchTarget(b *testing.B, w sdk.Writer) *target {
	b.Helper()
	s := New()
	cfg := defaultConfig()
	cfg.Targets = []string{"http://127.0.0.1:9100/metrics"}
	if err := s.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
		b.Fatal(err)
	}
	return s.newTarget(s.cfg.settings.targets[0], nil, w)
}

// BenchmarkIngest is the parse and mapping of one scrape of a recorded
// ~1,000-series node_exporter body, the two recordings in turn, so that
// counters move as they do between real scrapes.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		name   string
		bodies []string
	}{
		{"node_exporter", []string{"node_exporter-1.txt", "node_exporter-2.txt"}},
		{"prometheus", []string{"prometheus.txt"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			bodies := readBodies(b, c.bodies...)
			w := &nopWriter{}
			tg := benchTarget(b, w)
			if err := tg.ingest(expfmt.FmtText, bodies[0]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(bodies[0])))
			b.ReportAllocs()
			w.n = 0
			i := 0
			for b.Loop() {
				i++
				if err := tg.ingest(expfmt.FmtText, bodies[i%len(bodies)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n)/float64(i), "samples/op")
		})
	}
}

// BenchmarkScrape is a whole scrape of the node_exporter body over HTTP on
// the loopback: the request, the body read (gzipped, as node_exporter
// sends it, and unpacked) and its parse and mapping. The server's side,
// which runs in the same process, writes bodies gzipped beforehand.
func BenchmarkScrape(b *testing.B) {
	bodies := readBodies(b, "node_exporter-1.txt", "node_exporter-2.txt")
	zipped := make([][]byte, len(bodies))
	for i, body := range bodies {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(body)
		zw.Close()
		zipped[i] = z.Bytes()
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.FmtText))
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zipped[n.Add(1)%2])
	}))
	defer srv.Close()
	s := New()
	cfg := defaultConfig()
	cfg.Targets = []string{srv.URL + "/metrics"}
	if err := s.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
		b.Fatal(err)
	}
	client := s.client()
	defer client.CloseIdleConnections()
	tg := s.newTarget(s.cfg.settings.targets[0], client, &nopWriter{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if reason, err := tg.scrape(ctx); reason != "" {
			b.Fatal(reason, err)
		}
	}
}
