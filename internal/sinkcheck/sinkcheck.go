// Package sinkcheck runs a vendor sink end to end for its tests: veneurd on
// a pipeline with a DogStatsD source, the sink under test, and a localfile
// sink beside it. The localfile sink is the oracle: it receives exactly the
// points the sink under test does, so a test can check that every one of
// them reached the receiver, value, tags and host, as the sink's
// documented mapping says.
package sinkcheck

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
)

// Prefix starts the name of every metric of the workload.
const Prefix = "e2e."

// Hostname is the daemon's hostname in the pipeline.
const Hostname = "e2e-host"

// Workload is the DogStatsD input of every sink's end-to-end test: each
// kind of metric, with what a mapping must handle: bare tags, a host: tag
// that overrides the host, a device: tag, sample rates, names with
// characters some receivers do not allow.
func Workload() []string {
	lines := []string{
		"e2e.requests:3|c|#route:a,env:test",
		"e2e.requests:1|c|@0.5|#route:a,env:test", // counts 2
		"e2e.requests:4|c|#route:b,env:test",
		"e2e.temp:21.5|g|#room:lab",
		"e2e.temp:-3.25|g|#room:cellar",
		"e2e.canary:1|c|#canary,env:test", // a bare tag
		"e2e.remote:5|g|#host:other-host,device:sda",
		"e2e.name-with.odd_chars:7|g",
		"_sc|e2e.check|1|#svc:api|m:degraded",
	}
	for i := 1; i <= 100; i++ {
		lines = append(lines, fmt.Sprintf("e2e.latency:%d|ms|#svc:api", i))
	}
	for i := range 40 {
		lines = append(lines, fmt.Sprintf("e2e.users:user%d|s", i))
	}
	return lines
}

// Aggregation is the pipeline's aggregation block: what the histogram's
// points are.
const Aggregation = `aggregation {
  percentiles = [0.5, 0.99]
  aggregates  = ["min", "max", "count"]
}`

// Pipeline is a pipeline reading DogStatsD on addr (UDP), flushing every
// second to a localfile sink at oracle and to sinks, the blocks under test,
// with its admin interface on admin.
func Pipeline(addr, admin, oracle, sinks string) string {
	return fmt.Sprintf(`veneurd {
  hostname     = %q
  interval     = "1s"
  http_address = %q
}
%s
source "dogstatsd" "in" {
  listen = ["udp://%s"]
}
sink "localfile" "oracle" {
  path = %q
}
%s
`, Hostname, admin, Aggregation, addr, oracle, sinks)
}

// Run is an end-to-end run: the daemon, its DogStatsD address and the
// oracle's path.
type Run struct {
	*daemontest.Daemon
	Addr   string
	Oracle string
}

// Start starts veneurd on Pipeline with sinks.
func Start(t *testing.T, sinks string) *Run {
	t.Helper()
	addr := daemontest.FreePort(t, "udp")
	oracle := filepath.Join(t.TempDir(), "oracle.jsonl")
	d := daemontest.Start(t, Pipeline(addr, daemontest.FreePort(t, "tcp"), oracle, sinks))
	return &Run{Daemon: d, Addr: addr, Oracle: oracle}
}

// Send sends lines to the daemon, several to a datagram.
func (r *Run) Send(t *testing.T, lines []string) {
	t.Helper()
	c, err := net.Dial("udp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b []byte
	for _, l := range lines {
		if len(b)+len(l)+1 > 1400 {
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
			b = b[:0]
		}
		b = append(append(b, l...), '\n')
	}
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

// SendWorkload sends Workload and returns the oracle's points of it once two
// flushes have passed (see daemontest.WaitFlushed), checking that the
// workload arrived whole.
func (r *Run) SendWorkload(t *testing.T) []localfile.Line {
	t.Helper()
	r.Send(t, Workload())
	got := Points(r.WaitFlushed(r.Oracle, 2, 20*time.Second), Prefix)
	// The oracle's own values, against the exact answers: the sinks are
	// then checked against the oracle.
	f := func(name string, want, tolerance float64, tags ...string) {
		t.Helper()
		if v := daemontest.Sum(got, name, tags...); math.Abs(v-want) > tolerance {
			t.Fatalf("the oracle got %s%v = %g, want %g±%g: the workload was not received whole", name, tags, v, want, tolerance)
		}
	}
	f("e2e.latency.count", 100, 0, "svc:api")
	f("e2e.latency.max", 100, 0, "svc:api")
	f("e2e.latency.50percentile", 50.5, 1, "svc:api") // the t-digest's error at 100 samples
	f("e2e.requests", 5, 0, "env:test", "route:a")
	f("e2e.users", 40, 0) // a HyperLogLog is exact at 40 members
	return got
}

// Points returns the lines that are metric points (not events or service
// checks) named with prefix.
func Points(lines []localfile.Line, prefix string) []localfile.Line {
	var out []localfile.Line
	for _, l := range lines {
		if l.Kind == "" && strings.HasPrefix(l.Name, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// Checks returns the oracle's service checks named with prefix.
func Checks(lines []localfile.Line, prefix string) []localfile.Line {
	var out []localfile.Line
	for _, l := range lines {
		if l.Kind == localfile.KindServiceCheck && strings.HasPrefix(l.Name, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// Key identifies a point as a receiver stores it: its series, as the
// sink's mapping names it, and its timestamp in seconds.
type Key struct {
	Series string
	TS     int64
}

// Compare checks that got, what the receiver holds, is exactly want, what
// the oracle says it should hold after the sink's mapping; it reports every
// difference. Values must be equal to within a relative 1e-12 (a receiver
// may store a float64 that went through text).
func Compare(t *testing.T, got, want map[Key]float64) {
	t.Helper()
	if diff := Diff(got, want); diff != "" {
		t.Error(diff)
	}
}

// Diff describes how got differs from want, "" when it does not.
func Diff(got, want map[Key]float64) string {
	var b strings.Builder
	keys := make([]Key, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if c := strings.Compare(a.Series, b.Series); c != 0 {
			return c
		}
		return int(a.TS - b.TS)
	})
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "\n  missing  %s @%d = %g", k.Series, k.TS, w)
		case !wok:
			fmt.Fprintf(&b, "\n  extra    %s @%d = %g", k.Series, k.TS, g)
		case !near(g, w):
			fmt.Fprintf(&b, "\n  value    %s @%d = %g, want %g", k.Series, k.TS, g, w)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return fmt.Sprintf("the receiver holds %d points, the oracle says %d:%s", len(got), len(want), b.String())
}

// near reports whether a and b are equal to within a relative 1e-12.
func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*max(math.Abs(a), math.Abs(b))
}

// Tag returns the value of tag key in tags, and whether it is there.
func Tag(tags []string, key string) (string, bool) {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, key+":"); ok {
			return v, true
		}
	}
	return "", false
}

// Received turns what a receiver holds into points by Key, the series
// written as name{k="v",...} with labels sorted. A series that holds two
// samples at one timestamp arrived twice: Received reports each such point
// as a duplicate.
func Received(series []receivers.Series) (got map[Key]float64, duplicates []string) {
	got = map[Key]float64{}
	for _, s := range series {
		name := SeriesName(s.Name, s.Labels)
		for i, ts := range s.Timestamps {
			k := Key{Series: name, TS: ts / 1000}
			if _, ok := got[k]; ok {
				duplicates = append(duplicates, fmt.Sprintf("%s @%d", name, k.TS))
			}
			got[k] = s.Values[i]
		}
	}
	return got, duplicates
}

// SeriesName writes a series as name{k="v",...}, labels sorted by key.
func SeriesName(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// WaitVM waits until vm holds exactly want among the series match selects,
// each point once, and fails the test with the difference when it does not
// within timeout.
func WaitVM(t *testing.T, vm *receivers.VM, match string, want map[Key]float64, timeout time.Duration) {
	t.Helper()
	var diff string
	ok := daemontest.Until(timeout, func() bool {
		got, dups := Received(vm.Export(t, match))
		diff = Diff(got, want)
		if len(dups) > 0 {
			diff += "\n  arrived twice: " + strings.Join(dups, ", ")
		}
		return diff == ""
	})
	if !ok {
		t.Fatalf("%s after %s: %s", vm.HTTP, timeout, diff)
	}
}

// OutageSink describes the sink an outage test runs: Block returns the
// block of a sink named name, delivering to vm with max_buffered_points
// maxBuffered, and Want maps the oracle's points to what the receiver
// should hold; Match selects them in VictoriaMetrics' export.
type OutageSink struct {
	Type  string
	Block func(name string, vm *receivers.VM, maxBuffered int) string
	Want  func(points []localfile.Line) map[Key]float64
	Match string // must select the series of metrics named e2e.outage.*
}

// Outage stops the receivers of two sinks for three intervals, while
// veneurd flushes 20 counters each interval, and starts them again. The
// sink whose buffer holds it all must deliver every point of those
// intervals once; the one whose buffer holds 25 points must deliver what
// it kept and count exactly the rest as dropped (buffer_full).
func Outage(t *testing.T, s OutageSink) {
	t.Helper()
	big, small := receivers.VictoriaMetrics(t), receivers.VictoriaMetrics(t)
	const series, intervals, smallBuffer = 20, 3, 25
	r := Start(t, s.Block("big", big, 10_000)+s.Block("small", small, smallBuffer)+fmt.Sprintf(`
metric_sink_routing "self" {
  match {
    tags = [exact("veneurd:self")]
  }
  matched     = [sink.localfile.oracle]
  not_matched = [sink.localfile.oracle, sink.%[1]s.big, sink.%[1]s.small]
}
`, s.Type))
	r.WaitFlushed(r.Oracle, 1, 20*time.Second)
	big.Stop()
	small.Stop()
	for i := range intervals {
		lines := make([]string, series)
		for j := range lines {
			lines[j] = fmt.Sprintf("e2e.outage.c%d:%d|c|#interval:%d", j, j+1, i)
		}
		r.Send(t, lines)
		r.WaitFlushed(r.Oracle, 1, 20*time.Second)
	}
	r.WaitFlushed(r.Oracle, 1, 20*time.Second) // the last interval's state, should it have joined the next
	points := Points(daemontest.ReadLines(t, r.Oracle), "e2e.outage.")
	if len(points) != series*intervals {
		t.Fatalf("the oracle has %d points of the outage, want %d", len(points), series*intervals)
	}
	big.Start()
	small.Start()
	want := s.Want(points)
	WaitVM(t, big, s.Match, want, 30*time.Second)

	// The small buffer: what arrived, and what was counted dropped, make
	// up every point, and what arrived is some of the points, once each.
	dropped := `veneur_sink_metrics_dropped_total{reason="buffer_full",sink="sink.` + s.Type + `.small"}`
	var got map[Key]float64
	var lost float64
	ok := daemontest.Until(30*time.Second, func() bool {
		var dups []string
		got, dups = Received(small.Export(t, s.Match))
		if len(dups) > 0 {
			t.Fatalf("arrived twice: %v", dups)
		}
		lost, _ = r.Metric(dropped)
		return len(got)+int(lost) == len(want)
	})
	if !ok || len(got) == 0 || len(got) > smallBuffer {
		t.Fatalf("with a buffer of %d points, %d of %d points arrived and %g were counted dropped (%s)",
			smallBuffer, len(got), len(want), lost, dropped)
	}
	for k, v := range got {
		if w, ok := want[k]; !ok || !near(v, w) {
			t.Errorf("%s @%d = %g arrived, but the oracle has %g (%t)", k.Series, k.TS, v, w, ok)
		}
	}
	t.Logf("outage of %d intervals: %d points; buffer of %d: %d arrived, %g counted dropped",
		intervals, len(want), smallBuffer, len(got), lost)
}

// Standalone builds the sink typ's own binary, veneurd-sink-TYP, and
// returns the plugin block that pins it by its sha256, as the type
// TYP_standalone: the same code as the builtin, loaded as a third party's.
func Standalone(t *testing.T, typ string) string {
	t.Helper()
	bin := daemontest.BuildPlugin(t, "./plugins/sinks/"+typ+"/cmd/veneurd-sink-"+typ, t.TempDir())
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("plugin \"sink\" \"%s_standalone\" {\n  path   = %q\n  sha256 = %q\n}\n", typ, bin, hex.EncodeToString(sum[:]))
}
