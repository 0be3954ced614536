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
// rate per second and returns when done.
func sendSteadily(t *testing.T, addr, name string, total, rate int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tick := time.NewTicker(time.Second / time.Duration(rate/10))
	defer tick.Stop()
	line := []byte(name + ":1|c\n")
	for sent := 0; sent < total; {
		<-tick.C
		for range 10 {
			if sent == total {
				break
			}
			if _, err := c.Write(line); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
}

// TestSinkKilledUnderTraffic kills the localfile sink's process with
// SIGKILL while counters flow: veneurd keeps running, restarts the sink, and
// the total across all flushes is exact.
func TestSinkKilledUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	addr := daemontest.FreePort(t, "udp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" {
  path          = %q
  flush_timeout = "5s" # long enough for the restart (1s backoff) and the retry
}
`, addr, out))
	before := pluginPid(t, d, "plugin-serve sink localfile")
	done := make(chan struct{})
	const total = 6000
	go func() { defer close(done); sendSteadily(t, addr, "killed.count", total, 1000) }()

	// Kill it between flushes, as a crash would most likely strike.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2500 * time.Millisecond)))
	killAndAwaitRestart(t, d, before, "plugin-serve sink localfile")
	<-done
	lines := d.WaitLines(out, 15*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "killed.count") >= total
	})
	time.Sleep(1500 * time.Millisecond)
	lines = daemontest.ReadLines(t, out)
	if got := daemontest.Sum(lines, "killed.count"); got != total {
		t.Fatalf("killed.count = %v across flushes, want exactly %d", got, total)
	}
	checkAlive(t, d)
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
	done := make(chan struct{})
	go func() { defer close(done); sendSteadily(t, addr, "slow.count", 3000, 500) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range daemontest.ReadLines(t, out) {
			if _, ok := arrived[l.Timestamp]; !ok {
				arrived[l.Timestamp] = time.Now()
			}
		}
		select {
		case <-done:
		default:
			if time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		break
	}
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool { return daemontest.Sum(ls, "slow.count") >= 3000 })
	time.Sleep(1200 * time.Millisecond)
	lines := daemontest.ReadLines(t, out)
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
	sendSteadily(t, addr, "before.count", burst, 4000)
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "before.count") >= burst
	})

	// Mid-interval, with state held that no flush has collected yet.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1200 * time.Millisecond)))
	sendSteadily(t, addr, "held.count", 200, 2000)
	killAndAwaitRestart(t, d, pluginPid(t, d, "plugin-serve source dogstatsd"), "plugin-serve source dogstatsd")
	sendSteadily(t, addr, "after.count", burst, 4000)
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "after.count") >= burst
	})
	time.Sleep(1500 * time.Millisecond)
	lines := daemontest.ReadLines(t, out)
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
