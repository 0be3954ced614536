package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// routedContents renders what a localfile sink wrote, one string per point,
// service check and event, sorted: "name{tags} type value" for a point,
// `check name{tags} status value "message"` for a service check and
// `event "title" "text" {tags}` for an event. A counter that two flushes
// hold (samples that straddled an interval) is summed into one; anything
// else written twice shows twice.
func routedContents(lines []daemontest.Line) []string {
	counters := map[string]float64{}
	var out []string
	for _, l := range lines {
		tags := strings.Join(l.Tags, ",")
		switch {
		case l.Kind == "event":
			out = append(out, fmt.Sprintf("event %q %q {%s}", l.Title, l.Text, tags))
		case l.Kind == "service_check":
			out = append(out, fmt.Sprintf("check %s{%s} %s %g %q", l.Name, tags, l.Type, l.Value, l.Message))
		case l.Type == "counter":
			counters[fmt.Sprintf("%s{%s} %s", l.Name, tags, l.Type)] += l.Value
		default:
			out = append(out, fmt.Sprintf("%s{%s} %s %g", l.Name, tags, l.Type, l.Value))
		}
	}
	for k, v := range counters {
		out = append(out, fmt.Sprintf("%s %g", k, v))
	}
	slices.Sort(out)
	return out
}

// diffContents lists what got lacks of want and what it has besides.
func diffContents(got, want []string) string {
	var b strings.Builder
	rest := slices.Clone(got)
	for _, w := range want {
		if i := slices.Index(rest, w); i >= 0 {
			rest = slices.Delete(rest, i, i+1)
			continue
		}
		fmt.Fprintf(&b, "\n  missing: %s", w)
	}
	for _, r := range rest {
		fmt.Fprintf(&b, "\n  extra:   %s", r)
	}
	return b.String()
}

// TestRoutingEndToEnd runs the built binary on a pipeline with three
// localfile sinks, three metric_sink_routing rules, a drop rule and tag
// policies on two sinks, and checks that each sink's file holds exactly the
// points, service checks and events its routes give it, and that the drops
// are counted exactly on /metrics.
func TestRoutingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	files := map[string]string{}
	for _, s := range []string{"a", "b", "c"} {
		files[s] = filepath.Join(dir, s+".jsonl")
	}
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	// payments: pay.* of team:payments, but for canaries, go to a; every
	// other point, event and check to c.
	// web: lat.max (a histogram's flushed point) and web.api.errors or
	// web.ui.errors, matched by either block, go to b.
	// dev: pay.* tagged env:dev goes to b, whichever sink payments chose.
	// b gets env:prod in place of the points' env tag and loses their host
	// tags, and takes names of 20 bytes at most; c takes two tags at most.
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname     = "routing-host"
  interval     = "1s"
  self_metrics = false
  http_address = %q
}
aggregation {
  percentiles = []
  aggregates  = ["min", "max", "count"]
}
source "dogstatsd" "in" {
  listen = ["udp://%s"]
}
sink "localfile" "a" {
  path = %q
}
sink "localfile" "b" {
  path            = %q
  add_tags        = { env = "prod" }
  strip_tags      = ["host"]
  max_name_length = 20
}
sink "localfile" "c" {
  path     = %q
  max_tags = 2
}
metric_sink_routing "payments" {
  match {
    name = prefix("pay.")
    tags = [exact("team:payments"), unset(prefix("canary"))]
  }
  matched     = [sink.localfile.a]
  not_matched = [sink.localfile.c]
}
metric_sink_routing "web" {
  match {
    name = exact("lat.max")
  }
  match {
    name = regex("^web\\.(api|ui)\\.errors$")
  }
  matched = [sink.localfile.b]
}
metric_sink_routing "dev" {
  match {
    name = prefix("pay.")
    tags = [exact("env:dev")]
  }
  matched = [sink.localfile.b]
}
drop "noise" {
  match {
    name = prefix("debug.")
  }
  match {
    tags = [exact("drop:me")]
  }
}
`, admin, udp, files["a"], files["b"], files["c"]))

	datagrams := []string{
		// pay.requests{env:dev,team:payments}: 10, to a and, by dev, to b.
		"pay.requests:1|c|#team:payments,env:dev\npay.requests:2|c|#env:dev,team:payments\n" +
			"pay.requests:3|c|#team:payments,env:dev\npay.requests:4|c|#env:dev,team:payments",
		// A canary: not for a (payments sends it to c, whose max_tags drops
		// it), for b by dev: 12.
		"pay.requests:5|c|#canary:true,env:dev,team:payments\npay.requests:7|c|#team:payments,canary:true,env:dev",
		// Not team:payments: c alone.
		"pay.refunds:1|c|#team:billing\npay.refunds:1|c|#team:billing\npay.refunds:1|c|#team:billing",
		// team:payments but not pay.*: c alone.
		"api.calls:2|c|#team:payments\napi.calls:2|c|#team:payments",
		// web matches: b, without host and with env:prod; and c.
		"web.api.errors:2|c|#env:dev,host:web1\nweb.api.errors:3|c|#host:web1,env:dev",
		// The regex is anchored: c alone.
		"web.ui.errors.total:1|c\nweb.ui.errors.total:3|c",
		// A name of 23 bytes: for a, and for b by dev, whose
		// max_name_length drops it.
		"pay.settlements.latency:1|c|#env:dev,team:payments\npay.settlements.latency:2|c|#env:dev,team:payments\n" +
			"pay.settlements.latency:3|c|#env:dev,team:payments",
		// The histogram flushes lat.max, lat.min and lat.count: all to c,
		// lat.max alone to b.
		"lat:10|h|#env:dev\nlat:30|h|#env:dev\nlat:20|h|#env:dev",
		// Dropped by the rule noise, by either match block: 5 samples.
		"debug.trace:1|c|#env:dev\ndebug.trace:1|c|#env:dev\ndebug.trace:1|c|#env:dev",
		"pay.requests:100|c|#drop:me,team:payments\npay.requests:100|c|#team:payments,drop:me",
		// Events are routed by title.
		"_e{10,14}:pay.deploy|v42 rolled out|#env:dev,team:payments",
		"_e{10,12}:pay.outage|error budget|#canary:true,env:dev,team:payments",
		"_e{15,3}:deploy finished|web|#host:web1",
		// Service checks are status points routed by name.
		"_sc|pay.health|0|#env:dev,team:payments|m:ok",
		"_sc|web.ui.errors|2|#host:web1|m:disk full",
	}
	received := 0
	for _, dg := range datagrams {
		received += strings.Count(dg, "\n") + 1
	}
	want := map[string][]string{
		"a": {
			`check pay.health{env:dev,team:payments} status 0 "ok"`,
			`event "pay.deploy" "v42 rolled out" {env:dev,team:payments}`,
			"pay.requests{env:dev,team:payments} counter 10",
			"pay.settlements.latency{env:dev,team:payments} counter 6",
		},
		"b": {
			`check pay.health{env:prod,team:payments} status 0 "ok"`,
			`check web.ui.errors{env:prod} status 2 "disk full"`,
			`event "pay.deploy" "v42 rolled out" {env:prod,team:payments}`,
			`event "pay.outage" "error budget" {canary:true,env:prod,team:payments}`,
			"lat.max{env:prod} gauge 30",
			"pay.requests{canary:true,env:prod,team:payments} counter 12",
			"pay.requests{env:prod,team:payments} counter 10",
			"web.api.errors{env:prod} counter 5",
		},
		"c": {
			"api.calls{team:payments} counter 4",
			`check web.ui.errors{host:web1} status 2 "disk full"`,
			`event "deploy finished" "web" {host:web1}`,
			"lat.count{env:dev} counter 3",
			"lat.max{env:dev} gauge 30",
			"lat.min{env:dev} gauge 10",
			"pay.refunds{team:billing} counter 3",
			"web.api.errors{env:dev,host:web1} counter 5",
			"web.ui.errors.total{} counter 4",
		},
	}
	for _, w := range want {
		slices.Sort(w)
	}

	// Send everything just after a flush has cut an interval, so that the
	// histogram's samples land in one.
	d.WaitFlushes(1, 10*time.Second)
	for _, dg := range datagrams {
		sendLines(t, udp, dg)
	}
	const workerDrops = `veneur_worker_metrics_dropped_total{reason="dropped_by_rule",rule="noise"}`
	d.WaitMetric(`veneur_listen_received_per_protocol_total{protocol="udp"}`, 10*time.Second,
		func(v float64) bool { return v >= float64(received) })
	d.WaitMetric(workerDrops, 10*time.Second, func(v float64) bool { return v >= 5 })
	got := map[string][]string{}
	if !daemontest.Until(20*time.Second, func() bool {
		all := true
		for s := range want {
			got[s] = routedContents(daemontest.ReadLines(t, files[s]))
			all = all && slices.Equal(got[s], want[s])
		}
		return all
	}) {
		for _, s := range []string{"a", "b", "c"} {
			if !slices.Equal(got[s], want[s]) {
				t.Errorf("sink.localfile.%s does not hold what its routes give it:%s", s, diffContents(got[s], want[s]))
			}
		}
		t.FailNow()
	}
	// Two flushes more: anything extra would be counted by now (a flush
	// counts its drops before it logs).
	d.WaitFlushes(2, 10*time.Second)
	metrics := httpGet(t, "http://"+admin+"/metrics")
	for series, want := range map[string]float64{
		`veneur_listen_received_per_protocol_total{protocol="udp"}`: float64(received),
		workerDrops: 5,
		`veneur_sink_metrics_dropped_total{reason="max_tags",sink="sink.localfile.c"}`:        2, // the canary counter and event
		`veneur_sink_metrics_dropped_total{reason="max_name_length",sink="sink.localfile.b"}`: 1,
	} {
		if got, ok := promValue(metrics, series); !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", series, got, ok, want)
		}
	}
	if n := strings.Count(metrics, "veneur_sink_metrics_dropped_total{"); n != 2 {
		t.Errorf("%d series of veneur_sink_metrics_dropped_total, want 2:\n%s", n, grepLines(metrics, "metrics_dropped_total"))
	}

	// Stopped, the daemon has delivered every flush: the files are final.
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if strings.Contains(d.Logs(), "does not apply drop rules") {
		t.Error("the builtin source says it does not apply drop rules")
	}
	for _, s := range []string{"a", "b", "c"} {
		lines := daemontest.ReadLines(t, files[s])
		if got := routedContents(lines); !slices.Equal(got, want[s]) {
			t.Errorf("sink.localfile.%s after shutdown:%s", s, diffContents(got, want[s]))
		}
		for _, l := range lines {
			if l.Kind != "event" && l.Hostname != "routing-host" {
				t.Errorf("sink.localfile.%s: hostname %q in %+v", s, l.Hostname, l)
			}
		}
	}
}

// routePipeline writes the pipeline of TestRouteReload: route.count goes to
// count's sink and route.other to other's.
func routePipeline(udp, admin, a, b, count, other string) string {
	return fmt.Sprintf(`veneurd {
  interval     = "1s"
  self_metrics = false
  http_address = %q
}
source "dogstatsd" "in" {
  listen = ["udp://%s"]
}
sink "localfile" "a" {
  path = %q
}
sink "localfile" "b" {
  path = %q
}
metric_sink_routing "count" {
  match {
    name = exact("route.count")
  }
  matched = [%s]
}
metric_sink_routing "other" {
  match {
    name = exact("route.other")
  }
  matched = [%s]
}
`, admin, udp, a, b, count, other)
}

// routedFlush is what one flush (one timestamp) of TestRouteReload sent to
// each sink.
type routedFlush struct{ countA, countB, otherA, otherB float64 }

// routes says which routes a flush followed: "old" (route.count to a,
// route.other to b), "new" (the other way round), or a description of what
// went wrong.
func (f routedFlush) routes() string {
	count, err := followed("route.count", f.countA, f.countB)
	if err != "" {
		return err
	}
	other, err := followed("route.other", f.otherB, f.otherA)
	if err != "" {
		return err
	}
	switch {
	case count == other, other == "":
		return count
	case count == "":
		return other
	default:
		return fmt.Sprintf("mixed: route.count by the %s routes, route.other by the %s", count, other)
	}
}

// followed says which routes a metric's counts in a flush followed: "old"
// when only the sink of the old routes got it, "new" when only the other
// did, "" when neither; or, when both did, what went wrong.
func followed(name string, old, new float64) (routes, wrong string) {
	switch {
	case old > 0 && new > 0:
		return "", name + " went to both sinks"
	case old > 0:
		return "old", ""
	case new > 0:
		return "new", ""
	}
	return "", ""
}

// TestRouteReload swaps two routes with a SIGHUP while counters flow at a
// steady pace: every sample is counted once across the two sinks, each flush
// follows the old routes or the new ones, never a mix, the old up to the
// reload and the new after it. A reload whose routes name an undeclared
// sink is refused, and the routes in effect keep applying.
func TestRouteReload(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	path := filepath.Join(dir, "pipeline.hcl")
	writeFile(t, path, routePipeline(udp, admin, a, b, "sink.localfile.a", "sink.localfile.b"))
	d := daemontest.StartPath(t, path)

	const total, rate = 10000, 1000 // ten seconds of each
	count := startSending(t, udp, "route.count", total, rate)
	other := startSending(t, udp, "route.other", total, rate)

	// The old routes flush with traffic, then the new ones take over.
	d.WaitFlushes(4, 10*time.Second)
	writeFile(t, path, routePipeline(udp, admin, a, b, "sink.localfile.b", "sink.localfile.a"))
	signaled := time.Now()
	d.Signal(syscall.SIGHUP)
	d.WaitLog("config reloaded", 20*time.Second)
	reloaded := time.Now()
	d.WaitFlushes(2, 10*time.Second)

	// A route to an undeclared sink is refused, at its line and column.
	broken := routePipeline(udp, admin, a, b, "sink.localfile.c", "sink.localfile.a")
	writeFile(t, path, broken)
	d.Signal(syscall.SIGHUP)
	d.WaitLog("config reload failed", 20*time.Second)
	refused := time.Now()
	line := strings.Count(broken[:strings.Index(broken, "sink.localfile.c")], "\n") + 1
	if want := fmt.Sprintf("%s:%d:14: error: Undeclared sink", path, line); !strings.Contains(d.Logs(), want) {
		t.Errorf("the refused reload does not report %q:\n%s", want, d.Logs())
	}
	if strings.Count(d.Logs(), "config reloaded") != 1 {
		t.Error("the broken config was applied")
	}

	for _, s := range []*sender{count, other} {
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	sums := func() (float64, float64) {
		la, lb := daemontest.ReadLines(t, a), daemontest.ReadLines(t, b)
		return daemontest.Sum(la, "route.count") + daemontest.Sum(lb, "route.count"),
			daemontest.Sum(la, "route.other") + daemontest.Sum(lb, "route.other")
	}
	if !daemontest.Until(20*time.Second, func() bool { c, o := sums(); return c >= total && o >= total }) {
		c, o := sums()
		t.Fatalf("route.count = %v and route.other = %v across the sinks, want %d each", c, o, total)
	}
	metrics := httpGet(t, "http://"+admin+"/metrics")
	for series, want := range map[string]float64{"veneur_config_reload_total": 1, "veneur_config_reload_error_total": 1} {
		if got, ok := promValue(metrics, series); !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", series, got, ok, want)
		}
	}
	// Stopped, the daemon has delivered every flush: anything doubled would
	// show.
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if c, o := sums(); c != total || o != total {
		t.Errorf("route.count = %v and route.other = %v across the sinks, want exactly %d each", c, o, total)
	}

	flushes := map[int64]*routedFlush{}
	for sink, path := range map[string]string{"a": a, "b": b} {
		for _, l := range daemontest.ReadLines(t, path) {
			f := flushes[l.Timestamp]
			if f == nil {
				f = &routedFlush{}
				flushes[l.Timestamp] = f
			}
			switch sink + " " + l.Name {
			case "a route.count":
				f.countA += l.Value
			case "b route.count":
				f.countB += l.Value
			case "a route.other":
				f.otherA += l.Value
			case "b route.other":
				f.otherB += l.Value
			default:
				t.Errorf("sink.localfile.%s holds %+v", sink, l)
			}
		}
	}
	stamps := make([]int64, 0, len(flushes))
	for ts := range flushes {
		stamps = append(stamps, ts)
	}
	slices.Sort(stamps)
	var before, after, afterRefused int
	for _, ts := range stamps {
		at := time.Unix(ts, 0)
		routes := flushes[ts].routes()
		// A flush stamped T is cut at T and routed right after (the cut
		// waits a quarter of the interval at most): one stamped two
		// seconds or more before the SIGHUP, a margin for a loaded
		// machine, was routed before it; one stamped once the reload was
		// logged, after it. Flushes in between may follow either.
		switch {
		case !at.Add(2 * time.Second).After(signaled):
			before++
			if routes != "old" {
				t.Errorf("the flush at %d, before the reload at %s, %s: want the old routes (%+v)", ts, signaled.Format("15:04:05.000"), routes, *flushes[ts])
			}
		case !at.Before(reloaded):
			after++
			if !at.Before(refused) {
				afterRefused++
				// The refused config would have sent route.count nowhere.
				if f := flushes[ts]; ts != stamps[len(stamps)-1] && (f.countB == 0 || f.otherA == 0) {
					t.Errorf("the flush at %d, after the refused reload, lacks a counter (%+v)", ts, *f)
				}
			}
			if routes != "new" {
				t.Errorf("the flush at %d, after the reload at %s, %s: want the new routes (%+v)", ts, reloaded.Format("15:04:05.000"), routes, *flushes[ts])
			}
		default:
			if routes != "old" && routes != "new" {
				t.Errorf("the flush at %d, during the reload, %s (%+v)", ts, routes, *flushes[ts])
			}
			t.Logf("the flush at %d, during the reload (%s to %s), followed the %s routes", ts,
				signaled.Format("15:04:05.000"), reloaded.Format("15:04:05.000"), routes)
		}
	}
	t.Logf("%d flushes before the reload, %d after it, %d of them after the refused reload", before, after, afterRefused)
	if before == 0 || after == 0 || afterRefused == 0 {
		t.Errorf("flushes with traffic: %d before the reload, %d after it, %d after the refused one; want some of each", before, after, afterRefused)
	}
}
