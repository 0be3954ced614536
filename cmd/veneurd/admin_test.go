package main

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// promValue reads one sample from a Prometheus text exposition.
func promValue(text, series string) (float64, bool) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestSelfMetricsCountExactly sends known good and bad lines: /metrics and
// the self points flushed through the pipeline show the exact counts.
func TestSelfMetricsCountExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" { path = %q }
`, admin, udp, out))
	// 6 good metric lines (7 samples: one has two values), 5 bad lines:
	// 12 lines received, counting each sample of a multi-value line.
	sendLines(t, udp, strings.Join([]string{
		"good.a:1|c", "good.b:2|g", "good.c:3:4|ms", "nope", "good.d:1|c|@2",
		"good.e:x|c", "good.f:1|s", "good.g:1|h", "_sc|broken|9", "good.h:1|c", "good.i:1|q",
	}, "\n"))
	want := map[string]float64{
		`veneur_worker_metrics_processed_total`:                                      7,
		`veneur_packet_error_total{packet_type="metric",reason="no_value"}`:          1,
		`veneur_packet_error_total{packet_type="metric",reason="bad_rate"}`:          1,
		`veneur_packet_error_total{packet_type="metric",reason="bad_value"}`:         1,
		`veneur_packet_error_total{packet_type="metric",reason="bad_type"}`:          1,
		`veneur_packet_error_total{packet_type="service_check",reason="bad_status"}`: 1,
		`veneur_listen_received_per_protocol_total{protocol="udp"}`:                  12,
	}
	deadline := time.Now().Add(10 * time.Second)
	var metrics string
	for {
		metrics = httpGet(t, "http://"+admin+"/metrics")
		ok := true
		for series, v := range want {
			if got, _ := promValue(metrics, series); got != v {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for series, v := range want {
				got, found := promValue(metrics, series)
				t.Errorf("%s = %v (found %v), want %v", series, got, found, v)
			}
			t.Fatalf("/metrics:\n%s", metrics)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/metrics after the test's traffic:\n%s", metrics)

	// The same counts arrive as self points, tagged veneurd:self.
	lines := d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "veneur.worker.metrics_processed_total", "veneurd:self") >= 7
	})
	if got := daemontest.Sum(lines, "veneur.worker.metrics_processed_total", "veneurd:self"); got != 7 {
		t.Errorf("self point metrics_processed_total = %v, want 7", got)
	}
	if got := daemontest.Sum(lines, "veneur.packet.error_total", "packet_type:metric", "reason:bad_rate", "veneurd:self"); got != 1 {
		t.Errorf("self point packet.error_total{bad_rate} = %v, want 1", got)
	}
	for _, name := range []string{"veneur.mem.heap_alloc_bytes", "veneur.gc.number", "veneur.flush.duration_ns"} {
		found := false
		for _, l := range lines {
			found = found || l.Name == name
		}
		if !found {
			t.Errorf("no self point %s", name)
		}
	}
	if !strings.Contains(metrics, `veneur_sink_metrics_flushed_total{sink="sink.localfile.out"}`) {
		t.Error("no per-sink flush count in /metrics")
	}
}

// TestKernelDropsCounted floods a listener with a tiny receive buffer until
// the kernel drops: veneur.listen.drops_total equals the drops the kernel
// reports for that socket.
func TestKernelDropsCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" {
  listen            = ["udp://%s"]
  read_buffer_bytes = 4096
}
sink "blackhole" "null" {}
`, admin, udp))
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := []byte(strings.Repeat("flood.count:1|c|#a:b,c:d\n", 50))
	for socketDrops(t, d.Cmd.Process.Pid) == 0 {
		for range 2000 {
			c.Write(payload)
		}
	}
	kernel := socketDrops(t, d.Cmd.Process.Pid)
	metric := fmt.Sprintf(`veneur_listen_drops_total{listener="udp://%s"}`, udp)
	got, _ := promValue(httpGet(t, "http://"+admin+"/metrics"), metric)
	t.Logf("kernel drops %d, %s %v", kernel, metric, got)
	if got != float64(kernel) {
		t.Fatalf("%s = %v, the kernel's drops column says %d", metric, got, kernel)
	}
}

// TestHealthcheckFollowsPlugins kills a sink: /healthcheck turns 503 while
// it is down, and 200 again once it is restarted.
func TestHealthcheckFollowsPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	sleepy := daemontest.BuildPlugin(t, "./internal/daemontest/plugins/sleepy", dir)
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  http_address     = %q
  enable_profiling = false
}
plugin "sink" "sleepy" { path = %q }
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" { path = %q }
sink "sleepy" "secret" {
  sleep = "1ms"
  token = "hunter2"
}
`, admin, sleepy, udp, filepath.Join(dir, "out.jsonl")))
	status := func() (int, string) {
		resp, err := http.Get("http://" + admin + "/healthcheck")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n])
	}
	if code, body := status(); code != 200 {
		t.Fatalf("healthy daemon: %d %s", code, body)
	}
	// Readiness is not liveness: a plugin that restarts leaves the daemon
	// ready, its sockets bound and its state kept.
	if body := httpGet(t, "http://"+admin+"/readyz"); body != "ready\n" {
		t.Errorf("/readyz of a started daemon: %q", body)
	}
	syscall.Kill(pluginPid(t, d, "plugin-serve sink localfile"), syscall.SIGKILL)
	waitStatus := func(want int) string {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := status()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("healthcheck stayed %d (%s), want %d", code, body, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if body := waitStatus(503); !strings.Contains(body, "sink.localfile.out") {
		t.Errorf("the 503 does not say which plugin is down: %q", body)
	}
	if body := httpGet(t, "http://"+admin+"/readyz"); body != "ready\n" {
		t.Errorf("/readyz while a plugin restarts: %q", body)
	}
	waitStatus(200)

	// The effective config hides what the plugin marks sensitive.
	cfg := httpGet(t, "http://"+admin+"/config")
	if strings.Contains(cfg, "hunter2") || !regexp.MustCompile(`token\s*=\s*"\(sensitive\)"`).MatchString(cfg) {
		t.Errorf("/config does not redact the token:\n%s", cfg)
	}
	if !strings.Contains(cfg, `sink "localfile" "out"`) {
		t.Errorf("/config lacks the sinks:\n%s", cfg)
	}
	if resp, err := http.Get("http://" + admin + "/debug/pprof/"); err != nil || resp.StatusCode != 404 {
		t.Errorf("pprof is served without enable_profiling: %v", err)
	}
	if v, _ := promValue(httpGet(t, "http://"+admin+"/metrics"), `veneur_plugin_restarts_total{plugin="sink.localfile.out"}`); v != 1 {
		t.Errorf("plugin restarts = %v, want 1", v)
	}
}

// TestEmitThroughDaemon sends each kind of message with veneurd emit to a
// running daemon and finds each in its output.
func TestEmitThroughDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	udp := daemontest.FreePort(t, "udp")
	tcp := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
aggregation { aggregates = ["count", "max"] }
source "dogstatsd" "in" { listen = ["udp://%s", "tcp://%s"] }
sink "localfile" "out" { path = %q }
`, udp, tcp, out))
	emit := func(args ...string) {
		t.Helper()
		var stdout, stderr strings.Builder
		if code := dispatch(append([]string{"emit"}, args...), &stdout, &stderr); code != 0 {
			t.Fatalf("emit %v: exit %d: %s", args, code, stderr.String())
		}
	}
	emit("-hostport", udp, "-name", "emit.count", "-count", "5", "-tag", "a:b")
	emit("-hostport", "tcp://"+tcp, "-name", "emit.gauge", "-gauge", "2.5")
	emit("-hostport", udp, "-name", "emit.timing", "-timing", "250ms")
	emit("-hostport", udp, "-name", "emit.set", "-set", "alice")
	emit("-hostport", udp, "-e_title", "deploy", "-e_text", "done", "-e_alert_type", "success")
	emit("-hostport", udp, "-sc_name", "emit.check", "-sc_status", "critical", "-sc_msg", "down")
	emit("-hostport", udp, "-name", "emit.cmd", "-command", "true")
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool {
		var event, check bool
		for _, l := range ls {
			event = event || (l.Kind == "event" && l.Title == "deploy" && l.Text == "done" && l.AlertType == "success")
			check = check || (l.Kind == "service_check" && l.Name == "emit.check" && l.Value == 2 && l.Message == "down")
		}
		return event && check && daemontest.Sum(ls, "emit.count", "a:b") == 5 && daemontest.Sum(ls, "emit.gauge") == 2.5 &&
			daemontest.Sum(ls, "emit.timing.max") == 250 && daemontest.Sum(ls, "emit.set") == 1 &&
			daemontest.Sum(ls, "emit.cmd.count") == 1
	})
}

// TestAdminDefaultAddress checks the admin interface's default: on
// 127.0.0.1:8127 when http_address is left out, and veneurd going on
// without it, saying so, when another process holds that port; none with
// http_address = "".
func TestAdminDefaultAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	pipeline := func(veneurd string) string {
		return fmt.Sprintf("veneurd {\n%s\n}\nsource \"dogstatsd\" \"in\" { listen = [\"udp://%s\"] }\nsink \"debug\" \"out\" {}\n",
			veneurd, daemontest.FreePort(t, "udp"))
	}
	holder, err := net.Listen("tcp", "127.0.0.1:8127")
	if err != nil {
		t.Skipf("127.0.0.1:8127 is in use on this machine: %v", err)
	}
	d := daemontest.Start(t, pipeline(`interval = "1h"`))
	d.WaitLog("going on without it", 10*time.Second)
	d.WaitLog("pipeline started", 10*time.Second)
	d.Stop()
	holder.Close()

	d = daemontest.Start(t, pipeline(`interval = "1h"`))
	d.WaitLog("pipeline started", 10*time.Second)
	resp, err := http.Get("http://127.0.0.1:8127/healthcheck")
	if err != nil {
		t.Fatalf("no admin interface on the default address: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthcheck on the default address: %s", resp.Status)
	}
	d.Stop()

	d = daemontest.Start(t, pipeline(`interval = "1h"
http_address = ""`))
	d.WaitLog("pipeline started", 10*time.Second)
	if strings.Contains(d.Logs(), "admin interface listening") {
		t.Errorf("an admin interface with http_address = \"\":\n%s", d.Logs())
	}
	d.Stop()
}
