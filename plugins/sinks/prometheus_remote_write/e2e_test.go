package remotewrite_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
)

var notName = regexp.MustCompile(`[^a-zA-Z0-9_:]`)

// promName is a name as the sink sanitises it; label names are sanitised
// the same way, ':' included.
func promName(s string, label bool) string {
	s = notName.ReplaceAllString(s, "_")
	if label {
		s = strings.ReplaceAll(s, ":", "_")
	}
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}

// expected is what a remote write receiver should hold of the oracle's
// points and service checks: names and tag keys sanitised, a bare tag with
// the value "true", the host a label (a host: tag's, else the point's),
// counters as the interval's count, service checks as their status.
func expected(lines []localfile.Line) map[sinkcheck.Key]float64 {
	want := map[sinkcheck.Key]float64{}
	for _, p := range lines {
		labels := map[string]string{"host": p.Hostname}
		for _, tag := range p.Tags {
			k, v, ok := strings.Cut(tag, ":")
			if !ok {
				v = "true"
			}
			labels[promName(k, true)] = v
		}
		want[sinkcheck.Key{Series: sinkcheck.SeriesName(promName(p.Name, false), labels), TS: p.Timestamp}] = p.Value
	}
	return want
}

// fromProm turns a range query's samples into points by Key.
func fromProm(samples []receivers.Sample) map[sinkcheck.Key]float64 {
	got := map[sinkcheck.Key]float64{}
	for _, s := range samples {
		labels := map[string]string{}
		for k, v := range s.Labels {
			if k != "__name__" {
				labels[k] = v
			}
		}
		got[sinkcheck.Key{Series: sinkcheck.SeriesName(s.Labels["__name__"], labels), TS: s.Timestamp / 1000}] = s.Value
	}
	return got
}

// TestDeliversToPrometheus sends the workload through the builtin sink to
// Prometheus 2.42, the reference receiver, and through the standalone
// binary, pinned by its sha256, to VictoriaMetrics, and checks that each
// holds every point and service check the oracle got, once, with its value
// and labels.
func TestDeliversToPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	prom, vm := receivers.Prometheus(t), receivers.VictoriaMetrics(t)
	const token = "rw-token-5f4e3d2c1b0a"
	t.Setenv("VENEURD_TEST_RW_TOKEN", token)
	r := sinkcheck.Start(t, sinkcheck.Standalone(t, "prometheus_remote_write")+fmt.Sprintf(`
sink "prometheus_remote_write" "prom" {
  endpoint     = %q
  bearer_token = env("VENEURD_TEST_RW_TOKEN")
}
sink "prometheus_remote_write_standalone" "vm" {
  endpoint = "%s/api/v1/write"
}
`, prom.RemoteWrite, vm.HTTP))
	lines := r.SendWorkload(t)
	lines = append(lines, sinkcheck.Checks(daemontest.ReadLines(t, r.Oracle), sinkcheck.Prefix)...)
	want := expected(lines)
	sinkcheck.WaitVM(t, vm, `{__name__=~"e2e_.*"}`, want, 20*time.Second)
	var diff string
	if !daemontest.Until(20*time.Second, func() bool {
		diff = sinkcheck.Diff(fromProm(prom.Query(t, `{__name__=~"e2e_.*"}[1h]`, time.Now())), want)
		return diff == ""
	}) {
		t.Fatalf("Prometheus: %s", diff)
	}
	if strings.Contains(r.Logs(), token) || strings.Contains(r.Get("/config"), token) {
		t.Error("the bearer token shows in veneurd's log or /config")
	}
}

// TestOutage stops the receiver for three intervals: see sinkcheck.Outage.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	sinkcheck.Outage(t, sinkcheck.OutageSink{
		Type: "prometheus_remote_write",
		Block: func(name string, vm *receivers.VM, maxBuffered int) string {
			return fmt.Sprintf(`
sink "prometheus_remote_write" %q {
  endpoint            = "%s/api/v1/write"
  max_buffered_points = %d
  max_retry_backoff   = "250ms"
  timeout             = "2s"
}
`, name, vm.HTTP, maxBuffered)
		},
		Want:  expected,
		Match: `{__name__=~"e2e_outage_.*"}`,
	})
}
