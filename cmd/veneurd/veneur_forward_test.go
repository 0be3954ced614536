package main

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

// veneurConfig is the head of a Veneur configuration: DogStatsD on udp,
// a one-second interval, its datadog sink posting to api.
func veneurConfig(t *testing.T, udp, httpAddr, api, extra string) string {
	return fmt.Sprintf(`statsd_listen_addresses:
  - udp://%s
http_address: %q
interval: 1s
hostname: veneur
stats_address: %q
num_workers: 1
num_readers: 1
percentiles: [0.5, 0.99]
aggregates: [min, max, count]
metric_sinks:
  - kind: datadog
    name: datadog
    config:
      api_key: test
      api_hostname: %q
      flush_max_per_body: 25000
%s`, udp, httpAddr, daemontest.FreePort(t, "udp"), api, extra)
}

// interopLines are the DogStatsD lines of an interop round under prefix p:
// a veneurglobalonly counter totalling 20, a timer of 1..200 and a set of
// 1000 members.
func interopLines(p string) []string {
	var lines []string
	for range 10 {
		lines = append(lines, p+".req:2|c|#veneurglobalonly")
	}
	for v := 1; v <= 200; v++ {
		lines = append(lines, fmt.Sprintf("%s.lat:%d|ms", p, v))
	}
	for i := range 1000 {
		lines = append(lines, fmt.Sprintf("%s.users:u%d|s", p, i))
	}
	return lines
}

// checkInterop checks a round's fleet outputs: the counter exact, p50 and
// p99 of 1..200 within 1% of the range of the exact answers (100.5 and
// 198.01), the set within 2% of 1000.
func checkInterop(t *testing.T, who string, v map[string]float64, p string) {
	t.Helper()
	if v[p+".req"] != 20 {
		t.Errorf("%s: %s.req = %g, want 20", who, p, v[p+".req"])
	}
	if got := v[p+".lat.50percentile"]; math.Abs(got-100.5) > 2 {
		t.Errorf("%s: p50 of 1..200 = %g, want 100.5±2", who, got)
	}
	if got := v[p+".lat.99percentile"]; math.Abs(got-198.01) > 2 {
		t.Errorf("%s: p99 of 1..200 = %g, want 198.01±2", who, got)
	}
	if got := v[p+".users"]; math.Abs(got-1000) > 20 {
		t.Errorf("%s: set of 1000 = %g, want within 2%%", who, got)
	}
}

// TestVeneurLocalIntoVeneurdGlobal runs a real Veneur local forwarding
// (forward_use_grpc) to a veneurd global: what the global flushes of the
// fleet's series is right.
func TestVeneurLocalIntoVeneurdGlobal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	receivers.VeneurBinary(t)
	grpcAddr := daemontest.FreePort(t, "tcp")
	g := startNode(t, "global", fmt.Sprintf("receive {\n  grpc_address = %q\n}\n", grpcAddr))
	dd := receivers.StartDatadogAPI(t)
	udp, httpAddr := daemontest.FreePort(t, "udp"), daemontest.FreePort(t, "tcp")
	receivers.StartVeneur(t, veneurConfig(t, udp, httpAddr, dd.URL,
		fmt.Sprintf("forward_address: %q\nforward_use_grpc: true\n", grpcAddr)), httpAddr)
	local := &tierNode{addr: udp}
	for round := range 3 {
		p := fmt.Sprintf("vl%d", round)
		local.send(t, interopLines(p)...)
		g.WaitLines(g.out, 30*time.Second, func(ls []daemontest.Line) bool {
			return daemontest.Sum(ls, p+".req") >= 20 && countName(ls, p+".users") > 0 && countName(ls, p+".lat.99percentile") > 0
		})
		lines := g.WaitFlushed(g.out, 2, 20*time.Second) // nothing comes twice
		if countName(lines, p+".lat.50percentile") > 1 || countName(lines, p+".users") > 1 {
			t.Logf("round %d crossed one of Veneur's flushes: another", round)
			continue
		}
		v := map[string]float64{p + ".req": daemontest.Sum(lines, p+".req")}
		for _, n := range []string{".lat.50percentile", ".lat.99percentile", ".users"} {
			v[p+n] = lastValue(lines, p+n)
		}
		checkInterop(t, "veneurd global", v, p)
		if n, _ := g.Metric("veneur_worker_metrics_imported_total"); n < 3 {
			t.Errorf("veneur_worker_metrics_imported_total = %g, want at least the 3 series", n)
		}
		return
	}
	t.Fatal("three rounds in a row crossed a flush")
}

// TestVeneurdLocalIntoVeneurGlobal runs a veneurd local forwarding with
// protocol = "veneur" to a real Veneur global: what Veneur flushes of the
// fleet's series is right.
func TestVeneurdLocalIntoVeneurGlobal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	receivers.VeneurBinary(t)
	dd := receivers.StartDatadogAPI(t)
	grpcAddr := daemontest.FreePort(t, "tcp")
	httpAddr := daemontest.FreePort(t, "tcp")
	receivers.StartVeneur(t, veneurConfig(t, daemontest.FreePort(t, "udp"), httpAddr, dd.URL,
		fmt.Sprintf("grpc_address: %q\n", grpcAddr)), httpAddr)
	l := startNode(t, "local", fmt.Sprintf("forward {\n  address  = %q\n  protocol = \"veneur\"\n}\n", grpcAddr))
	for round := range 3 {
		p := fmt.Sprintf("vg%d", round)
		l.send(t, interopLines(p)...)
		var points map[string][]float64
		if !daemontest.Until(30*time.Second, func() bool {
			points = ddPoints(t, dd)
			return sum(points[p+".req"]) >= 20 && len(points[p+".users"]) > 0 && len(points[p+".lat.99percentile"]) > 0
		}) {
			t.Fatalf("Veneur flushed %d series, not yet %s's", len(points), p)
		}
		l.WaitFlushed(l.out, 2, 20*time.Second) // whatever else the local forwards shows
		points = ddPoints(t, dd)
		if len(points[p+".lat.50percentile"]) > 1 || len(points[p+".users"]) > 1 {
			t.Logf("round %d crossed a flush: another", round)
			continue
		}
		v := map[string]float64{p + ".req": sum(points[p+".req"])}
		for _, n := range []string{".lat.50percentile", ".lat.99percentile", ".users"} {
			v[p+n] = points[p+n][0]
		}
		checkInterop(t, "Veneur global", v, p)
		return
	}
	t.Fatal("three rounds in a row crossed a flush")
}

// ddPoints reads the series Veneur posted: each name's values, in order.
func ddPoints(t *testing.T, dd *receivers.DatadogAPI) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, s := range dd.Series(t) {
		for _, pt := range s.Points {
			out[s.Metric] = append(out[s.Metric], pt[1])
		}
	}
	return out
}

func sum(vs []float64) float64 {
	s := 0.0
	for _, v := range vs {
		s += v
	}
	return s
}
