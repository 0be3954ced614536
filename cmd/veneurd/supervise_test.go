package main

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// pluginPid returns the pid of the daemon's child serving kind and typ.
func pluginPid(t *testing.T, d *daemontest.Daemon, match string) int {
	t.Helper()
	for _, p := range daemontest.Children(d.Cmd.Process.Pid) {
		if strings.Contains(strings.Join(p.Cmdline, " "), match) {
			return p.Pid
		}
	}
	t.Fatalf("no child process matching %q", match)
	return 0
}

// killAndAwaitRestart kills the plugin process pid with SIGKILL and waits
// until veneurd has started another matching match.
func killAndAwaitRestart(t *testing.T, d *daemontest.Daemon, pid int, match string) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.WaitLog("plugin restarted", 10*time.Second)
	if after := pluginPid(t, d, match); after == pid {
		t.Fatalf("%s was not restarted", match)
	}
}

// checkAlive fails the test if veneurd has exited.
func checkAlive(t *testing.T, d *daemontest.Daemon) {
	t.Helper()
	if err := d.Cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatal("veneurd died with its plugin")
	}
}

// sendSteadily sends total counter increments of name over UDP at about
// rate per second. It returns when done, at the first error, or once stop
// is closed (a nil stop never is). It does not touch the test, so it may run
// on any goroutine.
func sendSteadily(addr, name string, total, rate int, stop <-chan struct{}) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	tick := time.NewTicker(time.Second / time.Duration(rate/10))
	defer tick.Stop()
	line := []byte(name + ":1|c\n")
	for sent := 0; sent < total; {
		select {
		case <-tick.C:
		case <-stop:
			return fmt.Errorf("%s: stopped after %d of %d", name, sent, total)
		}
		for range 10 {
			if sent == total {
				break
			}
			if _, err := c.Write(line); err != nil {
				return fmt.Errorf("%s: after %d of %d: %w", name, sent, total, err)
			}
			sent++
		}
	}
	return nil
}

// mustSendSteadily runs sendSteadily on the test goroutine.
func mustSendSteadily(t *testing.T, addr, name string, total, rate int) {
	t.Helper()
	if err := sendSteadily(addr, name, total, rate, nil); err != nil {
		t.Fatal(err)
	}
}

// sender is sendSteadily running on its own goroutine, which reports to the
// test only through Wait.
type sender struct {
	done chan struct{} // closed once it has returned
	err  error
}

// startSending runs sendSteadily on its own goroutine. The test's cleanup
// stops it and waits for it, should the test end first.
func startSending(t *testing.T, addr, name string, total, rate int) *sender {
	s := &sender{done: make(chan struct{})}
	stop := make(chan struct{})
	go func() {
		defer close(s.done)
		s.err = sendSteadily(addr, name, total, rate, stop)
	}()
	t.Cleanup(func() { close(stop); <-s.done })
	return s
}

// Wait waits until the sender has sent everything, and returns its error.
func (s *sender) Wait() error {
	<-s.done
	return s.err
}

// TestSinkKilledUnderTraffic kills the localfile sink's process with
// SIGKILL while counters flow: veneurd keeps running, restarts the sink, and
// the total across all flushes is exact.
func TestSinkKilledUnderTraffic(t *testing.T) {
	// long enough for the restart (1s backoff) and the retry
	sinkKilled(t, 1, `flush_timeout = "5s"`)
}

// TestSlowSinkDelaysNoOne runs a sink that sleeps far past its
// flush_timeout next to a localfile sink, which must still receive every
// flush on time.
func TestSlowSinkDelaysNoOne(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	sleepy := daemontest.BuildPlugin(t, "./internal/daemontest/plugins/sleepy", dir)
	out := filepath.Join(dir, "out.jsonl")
	addr := daemontest.FreePort(t, "udp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
plugin "sink" "sleepy" { path = %q }
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "sleepy" "slow" {
  sleep         = "10s"
  flush_timeout = "300ms"
}
sink "localfile" "out" { path = %q }
`, sleepy, addr, out))

	// Record when each flush's lines appear in the file.
	arrived := map[int64]time.Time{}
	s := startSending(t, addr, "slow.count", 3000, 500)
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range daemontest.ReadLines(t, out) {
			if _, ok := arrived[l.Timestamp]; !ok {
				arrived[l.Timestamp] = time.Now()
			}
		}
		select {
		case <-s.done:
		default:
			if time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		break
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool { return daemontest.Sum(ls, "slow.count") >= 3000 })
	lines := d.WaitFlushed(out, 2, 10*time.Second) // anything extra would show
	if got := daemontest.Sum(lines, "slow.count"); got != 3000 {
		t.Errorf("slow.count = %v, want 3000", got)
	}
	var stamps []int64
	for ts := range arrived {
		stamps = append(stamps, ts)
	}
	sort.Slice(stamps, func(i, j int) bool { return stamps[i] < stamps[j] })
	if len(stamps) < 4 {
		t.Fatalf("only %d flushes arrived: %v", len(stamps), stamps)
	}
	for i, ts := range stamps {
		if i > 0 && ts != stamps[i-1]+1 {
			t.Errorf("flush at %d follows %d: an interval is missing", ts, stamps[i-1])
		}
		if late := arrived[ts].Sub(time.Unix(ts, 0)); late > 700*time.Millisecond {
			t.Errorf("the flush of %d arrived %s late", ts, late)
		}
	}
	d.WaitLog("flush timed out", 5*time.Second)
}

// TestSourceKilled kills the source's process with SIGKILL between two
// bursts of counters. The source holds the interval's state, so what it had
// aggregated since the last flush is lost with it, and nothing else: the
// first burst, flushed before the kill, and the second, sent after the
// restart, are counted exactly, and veneurd keeps running.
func TestSourceKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	addr := daemontest.FreePort(t, "udp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" { path = %q }
`, addr, out))
	const burst = 2000
	mustSendSteadily(t, addr, "before.count", burst, 4000)
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "before.count") >= burst
	})

	// Mid-interval, with state held that no flush has collected yet: just
	// after a cut, the held counters take a tenth of the interval to send.
	d.WaitFlushes(1, 10*time.Second)
	mustSendSteadily(t, addr, "held.count", 200, 2000)
	killAndAwaitRestart(t, d, pluginPid(t, d, "plugin-serve source dogstatsd"), "plugin-serve source dogstatsd")
	mustSendSteadily(t, addr, "after.count", burst, 4000)
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "after.count") >= burst
	})
	lines := d.WaitFlushed(out, 2, 10*time.Second) // anything extra would show
	for name, want := range map[string]float64{"before.count": burst, "after.count": burst} {
		if got := daemontest.Sum(lines, name); got != want {
			t.Errorf("%s = %v across flushes, want exactly %v", name, got, want)
		}
	}
	if held := daemontest.Sum(lines, "held.count"); held > 200 {
		t.Errorf("held.count = %v, more than the 200 sent", held)
	}
	checkAlive(t, d)
}

// TestSinkKilledTwiceInARow kills the sink twice within its restart
// backoff's reset window: the second restart waits 2 s, longer than the
// 1 s flush_timeout, and the flushes the process was down for are held
// and delivered once it is back. Every counter lands exactly once.
func TestSinkKilledTwiceInARow(t *testing.T) {
	sinkKilled(t, 2, "")
}

// sinkKilled sends counters steadily to a localfile sink (sinkExtra added
// to its block), kills the sink kills times in a row, each just after an
// acknowledged flush, and checks that every counter landed exactly once.
// Past one kill, the restart backoff outlasts the 1 s flush_timeout, so
// flushes must have been held for the sink's return.
func sinkKilled(t *testing.T, kills int, sinkExtra string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d, addr, out := startCountedSink(t, sinkExtra)
	const total = 8000
	s := startSending(t, addr, "killed.count", total, 1000)
	d.WaitLines(out, 15*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "killed.count") > 0
	})
	for i := 1; i <= kills; i++ {
		killSinkAfterAck(t, d, i)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if kills > 1 && !strings.Contains(d.Logs(), "holding its flushes") {
		t.Errorf("no flush was held while the sink was down for longer than its flush_timeout:\n%s", d.Logs())
	}
	d.WaitLines(out, 20*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "killed.count") >= total
	})
	lines := d.WaitFlushed(out, 2, 15*time.Second) // anything extra would show
	if got := daemontest.Sum(lines, "killed.count"); got != total {
		t.Fatalf("killed.count = %v across flushes, want exactly %d", got, total)
	}
	checkAlive(t, d)
}

// startCountedSink runs a dogstatsd source into a localfile sink (sinkExtra
// added to its block), flushed every second, with an admin interface; it
// returns the daemon, the source's UDP address and the sink's file.
func startCountedSink(t *testing.T, sinkExtra string) (*daemontest.Daemon, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	addr := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" {
  path = %q
  %s
}
`, admin, addr, out, sinkExtra))
	return d, addr, out
}

// killSinkAfterAck kills the localfile sink between flushes, as a crash
// would most likely strike: just after it has acknowledged a flush (its
// total flush time grows as each returns), with the next a whole interval
// away. A kill during a flush would have it retried, and counted twice had
// the sink written it. It returns once veneurd has restarted the sink for
// the restarts-th time.
func killSinkAfterAck(t *testing.T, d *daemontest.Daemon, restarts int) {
	t.Helper()
	acked := `veneur_sink_metric_flush_total_duration_ns{sink="sink.localfile.out"}`
	v, _ := d.Metric(acked)
	d.WaitMetric(acked, 10*time.Second, func(now float64) bool { return now > v })
	pid := pluginPid(t, d, "plugin-serve sink localfile")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !daemontest.Until(15*time.Second, func() bool { return strings.Count(d.Logs(), "plugin restarted") >= restarts }) {
		t.Fatalf("the sink was not restarted a %d time", restarts)
	}
	if after := pluginPid(t, d, "plugin-serve sink localfile"); after == pid {
		t.Fatal("the sink was not restarted")
	}
}
