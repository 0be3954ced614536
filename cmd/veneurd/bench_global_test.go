package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/forward"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

func TestBenchGlobalUsage(t *testing.T) {
	var out bytes.Buffer
	if code := dispatch([]string{"bench-global", "-h"}, &out, &out); code != 0 || !strings.Contains(out.String(), "Usage: veneurd bench-global") {
		t.Fatalf("bench-global -h: exit %d\n%s", code, out.String())
	}
	out.Reset()
	dispatch([]string{"-h"}, &out, &out)
	if !strings.Contains(out.String(), "  bench-global ") {
		t.Errorf("help lacks bench-global:\n%s", out.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-protocol", "statsd"}, "-protocol is veneurd or veneur"},
		{[]string{"-target", "192.0.2.1:8128"}, "-allow-remote"},
		{[]string{"-target", "nowhere"}, "bad -target"},
		{[]string{"-locals", "0"}, "-locals"},
		{[]string{"-timers", "0", "-counters", "0"}, "not both 0"},
		{[]string{"-offset", "10s"}, "-offset"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		out.Reset()
		if code := dispatch(append([]string{"bench-global"}, c.args...), &out, &out); code != 2 || !strings.Contains(out.String(), c.want) {
			t.Errorf("bench-global %v: exit %d, want 2 and %q in:\n%s", c.args, code, c.want, out.String())
		}
	}
}

// benchGlobalRun runs bench-global with args and returns its interval lines
// and its summary.
func benchGlobalRun(t *testing.T, args ...string) ([]globalInterval, globalSummary) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := dispatch(append([]string{"bench-global"}, args...), &stdout, &stderr)
	t.Logf("%s%s", stderr.String(), stdout.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var ivs []globalInterval
	var sum globalSummary
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if strings.Contains(l, `"summary":true`) {
			if err := json.Unmarshal([]byte(l), &sum); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			continue
		}
		var iv globalInterval
		if err := json.Unmarshal([]byte(l), &iv); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		ivs = append(ivs, iv)
	}
	if !sum.Summary {
		t.Fatalf("no summary line in:\n%s", stdout.String())
	}
	return ivs, sum
}

// smallFleet is a short run: 3 locals of 300 timer series and 200 global
// counters each, one interval of 1s.
var smallFleet = []string{"-locals", "3", "-timers", "300", "-counters", "200", "-samples", "3",
	"-intervals", "1", "-interval", "1s", "-offset", "100ms"}

// checkMerged checks that one interval forwarded and had counted as merged
// every series of smallFleet.
func checkMerged(t *testing.T, ivs []globalInterval, sum globalSummary) {
	t.Helper()
	const series = 3 * (300 + 200)
	if len(ivs) != 1 || sum.Intervals != 1 || sum.Merged != 1 || sum.Series != series {
		t.Fatalf("%d intervals, summary %+v: want one of %d series, merged", len(ivs), sum, series)
	}
	iv := ivs[0]
	if iv.Series != series || iv.Locals != 3 || iv.MergeS == nil || iv.ForwardErrors != 0 {
		t.Errorf("interval %+v: want %d series from 3 locals acknowledged, no errors", iv, series)
	}
	if iv.Imported == nil || *iv.Imported != series || !sum.CountsRight || len(sum.Imported) != 1 {
		t.Errorf("imported %v (summary %v, right %v), want %d", benchValue(iv.Imported), sum.Imported, sum.CountsRight, series)
	}
	if iv.CPUS == nil || iv.PeakRSS == nil || *iv.PeakRSS < 1<<20 || sum.Cores == nil {
		t.Errorf("interval %+v: want the global's CPU and peak RSS", iv)
	}
}

// TestBenchGlobalReceiver runs bench-global against a Receiver in this
// process, merging into an aggregator, its count served as a veneurd's
// admin /metrics serves it.
func TestBenchGlobalReceiver(t *testing.T) {
	tel := telemetry.New()
	g := aggregate.New(aggregate.Config{Percentiles: []float64{0.5}, Aggregates: aggregate.Max, Hostname: "global"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := forward.NewReceiver(g.Import, tel).Serve(l)
	defer srv.Stop(context.Background())
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tel.WritePrometheus(w) }))
	defer admin.Close()

	ivs, sum := benchGlobalRun(t, append([]string{"-target", l.Addr().String(), "-admin", admin.URL,
		"-pid", strconv.Itoa(os.Getpid())}, smallFleet...)...)
	checkMerged(t, ivs, sum)
	if n := tel.CounterValue(forward.MetricsImported); n != 1500 {
		t.Errorf("the receiver merged %d series, want 1500", n)
	}
	// The locals shared their series: the global holds 300 timers and 200
	// counters, the counters' sums from 3 locals.
	f := g.Flush(1)
	timers, counters := map[string]bool{}, 0.0
	for _, p := range f.Points {
		if name, ok := strings.CutSuffix(p.Name, ".50percentile"); ok {
			timers[name+"|"+strings.Join(p.Tags, ",")] = true
		}
		if strings.HasPrefix(p.Name, "svc.requests.") {
			counters += p.Value
		}
	}
	if len(timers) != 300 || counters != 3*200 {
		t.Errorf("the global flushed %d timers' medians and counters summing to %v, want 300 and 600", len(timers), counters)
	}
}

// TestBenchGlobalDaemon runs bench-global against a veneurd global.
func TestBenchGlobalDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	admin := daemontest.FreePort(t, "tcp")
	grpcAddr := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
receive {
  grpc_address = %q
}
sink "blackhole" "null" {}
`, admin, grpcAddr))
	ivs, sum := benchGlobalRun(t, append([]string{"-target", grpcAddr, "-admin", admin,
		"-pid", strconv.Itoa(d.Cmd.Process.Pid)}, smallFleet...)...)
	checkMerged(t, ivs, sum)
}

// TestBenchGlobalVeneur runs bench-global against a Veneur v14.2.0 global
// (built by scripts/test-deps.sh; skipped without it), counting what it
// imported from its own metrics.
func TestBenchGlobalVeneur(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	grpcAddr := daemontest.FreePort(t, "tcp")
	httpAddr := daemontest.FreePort(t, "tcp")
	stats := daemontest.FreePort(t, "udp")
	cfg := fmt.Sprintf(`hostname: global
interval: 2s
synchronize_with_interval: true
grpc_address: %q
http_address: %q
stats_address: %q
num_workers: 2
metric_sinks:
  - kind: debug
    name: discard
`, grpcAddr, httpAddr, stats)
	v := receivers.StartVeneur(t, cfg, httpAddr)

	// Veneur counts what it imported at its flush, every 2s; bench-global
	// waits for its first, and reads the count 1s after each.
	ivs, sum := benchGlobalRun(t, append(append([]string{"-protocol", "veneur", "-target", grpcAddr, "-admin", "",
		"-veneur-stats", stats, "-pid", strconv.Itoa(v.Pid())}, smallFleet...), "-interval", "2s", "-offset", "1s")...)
	checkMerged(t, ivs, sum)
}

func TestCountIn(t *testing.T) {
	dgram := []byte("veneur.worker.metrics_imported_total:1200|c|#veneurglobalonly\n" +
		"veneur.worker.metrics_processed_total:5|c\n" +
		"veneur.worker.metrics_imported_total:300|c\n" +
		"veneur.worker.metrics_imported_total:7|g\n" +
		"veneur.worker.metrics_imported_total_x:9|c")
	if n, ok := countIn(dgram, veneurImported); n != 1500 || !ok {
		t.Errorf("counted %d (%v), want 1500", n, ok)
	}
	if n, ok := countIn([]byte("veneur.worker.metrics_imported_total:0|c"), veneurImported); n != 0 || !ok {
		t.Errorf("a count of 0: %d (%v)", n, ok)
	}
	if _, ok := countIn([]byte("veneur.worker.metrics_processed_total:3|c"), veneurImported); ok {
		t.Error("found a count in a datagram without one")
	}
}
