package datadog_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
)

// testKey is the API key the tests configure, through env(): it must appear
// nowhere veneurd shows anything.
const testKey = "dd-test-key-0f1e2d3c4b5a69788796a5b4"

// vmName is the name VictoriaMetrics stores a Datadog series under: it
// sanitizes names as Datadog does (internal/receivers).
func vmName(name string) string {
	name = regexp.MustCompile(`[^0-9A-Za-z_.]+`).ReplaceAllString(name, "_")
	name = regexp.MustCompile(`_+`).ReplaceAllString(name, "_")
	return strings.NewReplacer("._", ".", "_.", ".").Replace(name)
}

// expected is what VictoriaMetrics should hold after the datadog sink sent
// the oracle's points with a 1s interval: counters as rates per second (the
// count, over one second), gauges as they are; host: and device: tags as
// the series' host and device, the daemon's hostname otherwise; a bare tag
// as VictoriaMetrics stores one, with the value "no_label_value". A v1
// series' device goes in "device_name", as Veneur and the Datadog agent send
// it and Datadog takes it; VictoriaMetrics reads only "device" there, so a
// v1 device does not land (v2 sends it as a tag, which does).
func expected(points []localfile.Line, v1 bool) map[sinkcheck.Key]float64 {
	want := map[sinkcheck.Key]float64{}
	for _, p := range points {
		labels := map[string]string{"host": p.Hostname}
		for _, tag := range p.Tags {
			k, v, ok := strings.Cut(tag, ":")
			switch {
			case !ok:
				labels[k] = "no_label_value"
			case k == "device" && v1:
			case k == "host" || k == "device":
				labels[k] = v
			default:
				labels[k] = v
			}
		}
		want[sinkcheck.Key{Series: sinkcheck.SeriesName(vmName(p.Name), labels), TS: p.Timestamp}] = p.Value
	}
	return want
}

// TestDeliversToVictoriaMetrics sends the workload through the builtin
// sink (API v1) and through the standalone binary, pinned by its sha256
// (API v2), each to its own VictoriaMetrics, and checks that each holds
// every point the oracle got, once, with its value, tags and host.
func TestDeliversToVictoriaMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	v1, v2 := receivers.VictoriaMetrics(t), receivers.VictoriaMetrics(t)
	t.Setenv("VENEURD_TEST_DD_KEY", testKey)
	r := sinkcheck.Start(t, sinkcheck.Standalone(t, "datadog")+fmt.Sprintf(`
sink "datadog" "v1" {
  address = "%s/datadog"
  api_key = env("VENEURD_TEST_DD_KEY")
}
sink "datadog_standalone" "v2" {
  address     = "%s/datadog"
  api_key     = env("VENEURD_TEST_DD_KEY")
  api_version = 2
}
`, v1.HTTP, v2.HTTP))
	points := r.SendWorkload(t)
	sinkcheck.WaitVM(t, v1, `{__name__=~"e2e[.].*"}`, expected(points, true), 20*time.Second)
	sinkcheck.WaitVM(t, v2, `{__name__=~"e2e[.].*"}`, expected(points, false), 20*time.Second)
	checkNoKey(t, r)
}

// checkNoKey checks that the API key is nowhere in veneurd's logs or
// /config.
func checkNoKey(t *testing.T, r *sinkcheck.Run) {
	t.Helper()
	if strings.Contains(r.Logs(), testKey) {
		t.Error("the API key is in veneurd's log")
	}
	cfg := r.Get("/config")
	if strings.Contains(cfg, testKey) || !strings.Contains(cfg, "api_key") {
		t.Errorf("/config shows the API key, or no api_key at all:\n%s", cfg)
	}
}

// TestAPIContract sends a flush with a service check and an event to a
// test server that checks each request against Datadog's documented API:
// no Datadog receiver can run here, so this is as far as checks and events
// can be tested. The server answers the first series request 503 with
// Retry-After: 1, which must be retried after that second, and every
// check_run request 400, which must not be retried but counted; the 400's
// answer quotes the API key, which must still not reach the log.
func TestAPIContract(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	api := newFakeAPI(t, testKey)
	t.Setenv("VENEURD_TEST_DD_KEY", testKey)
	r := sinkcheck.Start(t, fmt.Sprintf(`
sink "datadog" "fake" {
  address                = %q
  api_key                = env("VENEURD_TEST_DD_KEY")
  max_requests_in_flight = 1
}
`, api.URL))
	r.Send(t, append(sinkcheck.Workload(), "_e{9,10}:deploy ok|rolled out|#svc:api|p:low|t:success"))
	r.WaitFlushed(r.Oracle, 2, 20*time.Second)
	r.WaitMetric(`veneur_sink_metrics_dropped_total{reason="rejected",sink="sink.datadog.fake"}`, 20*time.Second,
		func(v float64) bool { return v >= 1 })
	api.waitSeries(t, 2, 20*time.Second)

	api.mu.Lock()
	defer api.mu.Unlock()
	for _, e := range api.errors {
		t.Error(e)
	}
	first, second := api.series[0], api.series[1]
	if first.status != 503 || second.status != 202 || second.at.Sub(first.at) < time.Second || first.body != second.body {
		t.Errorf("series: first answered %d at %s, then %d at %s: want 503, then the same body again at least 1s later",
			first.status, first.at.Format("15:04:05.000"), second.status, second.at.Format("15:04:05.000"))
	}
	if len(api.checks) != 1 {
		t.Errorf("%d check_run requests, want 1: a 400 is not retried", len(api.checks))
	} else if c := api.checks[0]; c.Check != "e2e.check" || c.Status != 1 || c.HostName != sinkcheck.Hostname ||
		c.Message != "degraded" || strings.Join(c.Tags, ",") != "svc:api" {
		t.Errorf("check_run %+v", c)
	}
	if len(api.events) != 1 {
		t.Fatalf("%d events, want 1", len(api.events))
	}
	if e := api.events[0]; e.Title != "deploy ok" || e.Text != "rolled out" || e.Priority != "low" || e.AlertType != "success" ||
		e.Host != sinkcheck.Hostname || strings.Join(e.Tags, ",") != "svc:api" || e.DateHappened == 0 {
		t.Errorf("event %+v", e)
	}
	if v, _ := r.Metric(`veneur_sink_retries_total{sink="sink.datadog.fake"}`); v < 1 {
		t.Errorf("retries counted %g, want at least the 503's", v)
	}
	if v, _ := r.Metric(`veneur_sink_metrics_dropped_total{reason="rejected",sink="sink.datadog.fake"}`); v != 1 {
		t.Errorf("rejected points counted %g, want the one service check", v)
	}
	if !strings.Contains(r.Logs(), "receiver rejected a request") || !strings.Contains(r.Logs(), "400 Bad Request") {
		t.Error("the rejection is not logged")
	}
	checkNoKey(t, r)
}

// body reads a request's body, gunzipped.
func body(r *http.Request) ([]byte, error) {
	if r.Header.Get("Content-Encoding") != "gzip" {
		return nil, fmt.Errorf("%s: Content-Encoding %q, want gzip", r.URL.Path, r.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// TestOutage stops the receiver for three intervals: see sinkcheck.Outage.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Setenv("VENEURD_TEST_DD_KEY", testKey)
	sinkcheck.Outage(t, sinkcheck.OutageSink{
		Type: "datadog",
		Block: func(name string, vm *receivers.VM, maxBuffered int) string {
			return fmt.Sprintf(`
sink "datadog" %q {
  address             = "%s/datadog"
  api_key             = env("VENEURD_TEST_DD_KEY")
  max_buffered_points = %d
  max_retry_backoff   = "250ms"
  timeout             = "2s"
}
`, name, vm.HTTP, maxBuffered)
		},
		Want:  func(points []localfile.Line) map[sinkcheck.Key]float64 { return expected(points, true) },
		Match: `{__name__=~"e2e[.]outage[.].*"}`,
	})
}
