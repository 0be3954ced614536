package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// recordingConn sends what the client writes over UDP and remembers every
// line, so that expected sums follow from what the client really sent
// (datadog-go drops sampled metrics at random on the client side).
type recordingConn struct {
	net.Conn
	mu    sync.Mutex
	lines []string
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.lines = append(c.lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

var rateRE = regexp.MustCompile(`\|@([0-9.]+)`)

// counterSum is the sum the client's lines for name amount to: each line
// counts value/rate.
func (c *recordingConn) counterSum(name string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum float64
	for _, l := range c.lines {
		n, rest, ok := strings.Cut(l, ":")
		if !ok || n != name {
			continue
		}
		v, _ := strconv.ParseFloat(rest[:strings.IndexByte(rest, '|')], 64)
		rate := 1.0
		if m := rateRE.FindStringSubmatch(l); m != nil {
			rate, _ = strconv.ParseFloat(m[1], 64)
		}
		sum += v / rate
	}
	return sum
}

func newClient(t *testing.T, addr string) (*statsd.Client, *recordingConn) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingConn{Conn: conn}
	c, err := statsd.NewWithWriter(rc, statsd.WithoutTelemetry(), statsd.WithoutClientSideAggregation(),
		statsd.WithoutOriginDetection(), statsd.WithMaxBytesPerPayload(1432))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, rc
}

// TestEndToEnd runs the built binary on a pipeline with a one-second
// interval and checks what a real DogStatsD client sent arrives in the
// localfile sink, aggregated exactly.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	addr := daemontest.FreePort(t, "udp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname = "e2e-host"
  interval = "1s"
}
aggregation {
  percentiles = [0.5, 0.99]
  aggregates  = ["min", "max", "count"]
}
source "dogstatsd" "in" {
  listen = ["udp://%s"]
}
sink "localfile" "out" {
  path = %q
}
sink "blackhole" "null" {}
`, addr, out))

	t.Run("plugins run as separate processes", func(t *testing.T) {
		want := map[string]bool{"source dogstatsd": false, "sink localfile": false, "sink blackhole": false}
		for _, p := range daemontest.Children(d.Cmd.Process.Pid) {
			if len(p.Cmdline) == 4 && p.Cmdline[1] == "plugin-serve" {
				want[p.Cmdline[2]+" "+p.Cmdline[3]] = true
			}
		}
		for k, seen := range want {
			if !seen {
				t.Errorf("no child process serving %s", k)
			}
		}
	})

	client, rec := newClient(t, addr)

	// Counters with sample rates through the client, and the rule that a
	// sample at rate 0.5 counts 2 and 0.5 twice counts 1 over raw UDP.
	for i := range 2000 {
		if err := client.Count("e2e.requests", 1, []string{"env:test", "route:/a"}, 0.5); err != nil {
			t.Fatal(err)
		}
		client.Count("e2e.requests", 3, []string{"route:/a", "env:test"}, 1) // tag order does not matter
		client.Gauge("e2e.temperature", float64(i), []string{"env:test"}, 1)
		client.Set("e2e.users", fmt.Sprintf("user-%d", i%1000), []string{"env:test"}, 1)
	}
	raw, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("e2e.raw:1|c|@0.5\ne2e.half:0.5|c\nbad:x|c\ne2e.half:0.5|c\n"))
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	wantRequests := rec.counterSum("e2e.requests")
	if wantRequests < 6000+1000 { // 2000*3 plus, at rate 0.5, about 2000
		t.Fatalf("the client sent too little: %v", wantRequests)
	}

	d.WaitLines(out, 20*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "e2e.requests", "env:test", "route:/a") >= wantRequests &&
			daemontest.Sum(ls, "e2e.half") >= 1
	})
	// Flushes cut since then show that nothing is still in flight, and
	// anything extra.
	lines := d.WaitFlushed(out, 2, 20*time.Second)

	if got := daemontest.Sum(lines, "e2e.requests", "env:test", "route:/a"); got != wantRequests {
		t.Errorf("e2e.requests = %v, want %v", got, wantRequests)
	}
	if got := daemontest.Sum(lines, "e2e.raw"); got != 2 {
		t.Errorf("1|c|@0.5 counted %v, want 2", got)
	}
	if got := daemontest.Sum(lines, "e2e.half"); got != 1 {
		t.Errorf("0.5|c twice counted %v, want 1", got)
	}
	var lastGauge *daemontest.Line
	for i, l := range lines {
		if l.Name == "e2e.temperature" {
			lastGauge = &lines[i]
		}
		if l.Hostname != "e2e-host" {
			t.Fatalf("hostname %q in %+v", l.Hostname, l)
		}
	}
	if lastGauge == nil || lastGauge.Value != 1999 || lastGauge.Type != "gauge" {
		t.Errorf("last gauge = %+v, want 1999", lastGauge)
	}
	// The set's members were all sent within one or two intervals; each
	// flush reports the members it saw, so the largest report is the
	// cardinality when everything landed in one interval.
	var setMax float64
	var setTimestamps int
	for _, l := range lines {
		if l.Name == "e2e.users" {
			setMax = max(setMax, l.Value)
			setTimestamps++
		}
	}
	if setTimestamps == 1 && math.Abs(setMax-1000) > 20 {
		t.Errorf("set cardinality %v, want 1000 within 2%%", setMax)
	}

	// The bad line between good ones is rejected alone, and logged.
	d.WaitLog("reason=bad_value", 5*time.Second)

	t.Run("timer percentiles", func(t *testing.T) { testTimerPercentiles(t, d, client, out) })
}

// testTimerPercentiles sends 10,000 timings within one interval and checks
// count, min and max exactly and p50 and p99 within 1% of the exact answer.
// Sending starts just after a flush has cut an interval; if the samples
// still straddle two intervals (a very slow machine), it tries again.
func testTimerPercentiles(t *testing.T, d *daemontest.Daemon, client *statsd.Client, out string) {
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := range 3 {
		name := fmt.Sprintf("e2e.latency%d", attempt)
		values := make([]float64, 10000)
		for i := range values {
			values[i] = math.Round(math.Exp(rng.NormFloat64())*1000) / 100 // log-normal, 2 decimals
		}
		// The daemon logs a flush once the sources have handed over the
		// interval that ended: what is sent from here on starts the next.
		d.WaitFlushes(1, 10*time.Second)
		for _, v := range values {
			if err := client.TimeInMilliseconds(name, v, []string{"env:test"}, 1); err != nil {
				t.Fatal(err)
			}
		}
		client.Flush()
		lines := d.WaitLines(out, 20*time.Second, func(ls []daemontest.Line) bool {
			return daemontest.Sum(ls, name+".count", "env:test") >= 10000
		})
		var counts []daemontest.Line
		for _, l := range lines {
			if l.Name == name+".count" {
				counts = append(counts, l)
			}
		}
		if got := daemontest.Sum(lines, name+".count", "env:test"); got != 10000 {
			t.Fatalf("%s.count = %v, want 10000", name, got)
		}
		if len(counts) > 1 {
			t.Logf("attempt %d: samples straddled %d intervals; trying again", attempt, len(counts))
			continue
		}
		ts := counts[0].Timestamp
		get := func(suffix string) float64 {
			for _, l := range lines {
				if l.Name == name+suffix && l.Timestamp == ts {
					return l.Value
				}
			}
			t.Fatalf("no %s%s in the flush at %d", name, suffix, ts)
			return 0
		}
		sorted := append([]float64(nil), values...)
		sort.Float64s(sorted)
		if got := get(".min"); got != sorted[0] {
			t.Errorf("min = %v, want %v", got, sorted[0])
		}
		if got := get(".max"); got != sorted[len(sorted)-1] {
			t.Errorf("max = %v, want %v", got, sorted[len(sorted)-1])
		}
		for _, q := range []struct {
			suffix string
			q      float64
		}{{".50percentile", 0.5}, {".99percentile", 0.99}} {
			// The exact answer interpolates between the order statistics
			// around rank q*(n-1) (Hyndman & Fan's type 7, numpy's default).
			pos := q.q * float64(len(sorted)-1)
			lo := int(pos)
			exact := sorted[lo] + (sorted[lo+1]-sorted[lo])*(pos-float64(lo))
			got := get(q.suffix)
			relErr := math.Abs(got-exact) / exact
			t.Logf("%s: got %v, exact %v, relative error %.4f%%", q.suffix, got, exact, 100*relErr)
			if relErr > 0.01 {
				t.Errorf("%s = %v, exact %v: error %.2f%% > 1%%", q.suffix, got, exact, 100*relErr)
			}
		}
		return
	}
	t.Fatal("could not fit 10,000 samples into one interval in 3 attempts")
}

// TestValidateExamples checks that every example pipeline is valid and that
// a broken file exits 1 with file:line:column.
func TestValidateExamples(t *testing.T) {
	bin := daemontest.Binary(t)
	examples, _ := filepath.Glob("../../examples/*.hcl")
	if len(examples) == 0 {
		t.Fatal("no examples/*.hcl")
	}
	out, err := exec.Command(bin, append([]string{"validate"}, examples...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("veneurd validate examples: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, append([]string{"fmt", "-check"}, examples...)...).CombinedOutput(); err != nil {
		t.Fatalf("examples are not in the canonical layout (veneurd fmt): %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	writeFile(t, bad, "veneurd {\n  interval = \"soon\"\n}\n")
	out, err = exec.Command(bin, "validate", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("validate of a broken file: %v\n%s", err, out)
	}
	if want := bad + ":2:14: error: Invalid duration"; !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}

// TestValidateListenWithoutPort: a listen address that run could not open is
// refused by validate first, at its file:line:column, and run refuses it the
// same way before starting anything.
func TestValidateListenWithoutPort(t *testing.T) {
	bin := daemontest.Binary(t)
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	writeFile(t, bad, "source \"dogstatsd\" \"in\" {\n  listen = [\"udp://127.0.0.1\"]\n}\nsink \"debug\" \"out\" {}\n")
	want := bad + `:2:13: error: Invalid listen address
  "udp://127.0.0.1" has no port: write it as udp://127.0.0.1:8126.
     2 |   listen = ["udp://127.0.0.1"]
       |             ^^^^^^^^^^^^^^^^^
`
	for _, args := range [][]string{{"validate", bad}, {"run", "-config", bad}} {
		if stdout, stderr := refused(t, bin, args...); stderr != want || stdout != "" {
			t.Errorf("veneurd %s printed\n%s%s\nwant on stderr\n%s", args[0], stdout, stderr, want)
		}
	}
}

// refused runs veneurd with args, which must exit 1, and returns what it
// printed.
func refused(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("veneurd %s: %v\n%s", args[0], err, errs.String())
	}
	return out.String(), errs.String()
}

// TestValidateSourceWithoutListen: a block of a source that reads nothing
// but its listen sockets, with none, is refused at its file:line:column by
// validate and by run, for builtins and a third-party source alike; the
// openmetrics source, which scrapes, needs none.
func TestValidateSourceWithoutListen(t *testing.T) {
	bin := daemontest.Binary(t)
	dir := t.TempDir()
	example := daemontest.BuildPlugin(t, "./examples/plugins/source_example", dir)
	bad := filepath.Join(dir, "bad.hcl")
	writeFile(t, bad, fmt.Sprintf(`plugin "source" "example" { path = %q }
source "dogstatsd" "in" {}
source "otlp" "in" { listen = [] }
source "example" "in" {}
source "openmetrics" "scrape" {
  targets = ["http://127.0.0.1:9100/metrics"]
}
sink "debug" "out" {}
`, example))
	detail := func(typ string) string {
		return "  The " + typ + ` source reads nothing but the sockets of its listen attribute, so this block would read nothing. Give it the sockets to read, as listen = ["NETWORK://HOST:PORT", ...].` + "\n"
	}
	want := bad + ":2:1: error: No listen address\n" + detail("dogstatsd") +
		"     2 | source \"dogstatsd\" \"in\" {}\n       | ^^^^^^^^^^^^^^^^^^^^^^^\n" +
		bad + ":3:31: error: No listen address\n" + detail("otlp") +
		"     3 | source \"otlp\" \"in\" { listen = [] }\n       |                               ^^\n" +
		bad + ":4:1: error: No listen address\n" + detail("example") +
		"     4 | source \"example\" \"in\" {}\n       | ^^^^^^^^^^^^^^^^^^^^^\n"
	for _, args := range [][]string{{"validate", bad}, {"run", "-config", bad}} {
		// The log lines of the third-party plugin's start come first.
		stdout, stderr := refused(t, bin, args...)
		if !strings.HasSuffix(stderr, want) || strings.Count(stderr, "error:") != 3 || stdout != "" {
			t.Errorf("veneurd %s printed\n%s%s\nwant on stderr, last\n%s", args[0], stdout, stderr, want)
		}
	}
}
