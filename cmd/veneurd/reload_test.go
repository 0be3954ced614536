package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/proc"
)

// udpRcvbufErrors reads the kernel's count of UDP datagrams dropped for a
// full receive buffer, machine-wide.
func udpRcvbufErrors(t *testing.T) uint64 {
	t.Helper()
	n, err := proc.UDPRcvbufErrors(0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// socketDrops sums the kernel's drops of the UDP sockets open in pid and
// its children.
func socketDrops(t *testing.T, pid int) uint64 {
	t.Helper()
	inodes := map[uint64]bool{}
	pids := []int{pid}
	for _, c := range daemontest.Children(pid) {
		pids = append(pids, c.Pid)
	}
	for _, p := range pids {
		held, _ := proc.SocketInodes(p)
		for _, ino := range held {
			inodes[ino] = true
		}
	}
	socks, err := proc.UDPSockets(0)
	if err != nil {
		t.Fatal(err)
	}
	var drops uint64
	for _, s := range socks {
		if inodes[s.Inode] {
			drops += s.Drops
		}
	}
	return drops
}

// reloadPipeline writes a pipeline for the reload tests.
type reloadPipeline struct {
	udp, tcp, out     string
	debug, debugQuiet bool
	percentiles       string
	readers           int
	withTCP           bool
}

func (p reloadPipeline) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "veneurd {\n  interval = \"1s\"\n}\naggregation {\n  percentiles = %s\n}\n", p.percentiles)
	listen := fmt.Sprintf("%q", "udp://"+p.udp)
	if p.withTCP {
		listen += fmt.Sprintf(", %q", "tcp://"+p.tcp)
	}
	fmt.Fprintf(&b, "source \"dogstatsd\" \"in\" {\n  listen  = [%s]\n  readers = %d\n}\n", listen, p.readers)
	fmt.Fprintf(&b, "sink \"localfile\" \"out\" {\n  path = %q\n}\n", p.out)
	if p.debug {
		fmt.Fprintf(&b, "sink \"debug\" \"dbg\" {\n  events = %v\n}\n", !p.debugQuiet)
	}
	return b.String()
}

// TestReloadUnderLoad reloads five times, with a change each time, while
// counters flow at a steady rate: the total over all flushes is exact and
// the kernel drops nothing.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	p := reloadPipeline{udp: daemontest.FreePort(t, "udp"), tcp: daemontest.FreePort(t, "tcp"),
		out: filepath.Join(dir, "out.jsonl"), percentiles: "[0.5]", readers: 1}
	path := filepath.Join(dir, "pipeline.hcl")
	writeFile(t, path, p.String())
	d := daemontest.StartPath(t, path)
	snmpBefore := udpRcvbufErrors(t)

	const total = 16000
	s := startSending(t, p.udp, "reload.count", total, 2000)

	changes := []func(){
		func() { p.debug = true },                // a sink added
		func() { p.debugQuiet = true },           // a sink's config changed
		func() { p.percentiles = "[0.5, 0.99]" }, // percentiles changed
		func() { p.readers = 2 },                 // the source's readers changed
		func() { p.withTCP = true },              // a listener added
	}
	for i, change := range changes {
		// Each configuration flushes, with the counters flowing, before the
		// next change.
		d.WaitFlushes(1, 10*time.Second)
		change()
		writeFile(t, path, p.String())
		d.Signal(syscall.SIGHUP)
		waitCount(t, d, "config reloaded", i+1, 20*time.Second)
	}
	select {
	case <-s.done:
		t.Log("the counters stopped before the last reload")
	default:
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	d.WaitLines(p.out, 20*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "reload.count") >= total
	})
	lines := d.WaitFlushed(p.out, 2, 20*time.Second) // anything extra would show
	if got := daemontest.Sum(lines, "reload.count"); got != total {
		t.Errorf("reload.count = %v over all flushes, want exactly %d", got, total)
	}
	if drops := socketDrops(t, d.Cmd.Process.Pid); drops != 0 {
		t.Errorf("the kernel dropped %d datagrams on veneurd's sockets", drops)
	}
	// Machine-wide, other tests running at the same time may drop too:
	// report, the per-socket count above is the assertion.
	t.Logf("UDP RcvbufErrors grew by %d during the test", udpRcvbufErrors(t)-snmpBefore)
	if n := countSockets(t, d.Cmd.Process.Pid, p.udp); n != 2 {
		t.Errorf("readers = 2 left %d sockets on %s", n, p.udp)
	}
	// The added TCP listener works.
	c, err := netDial("tcp", p.tcp)
	if err != nil {
		t.Fatalf("the added tcp listener: %v", err)
	}
	// The percentiles changed by a reload apply.
	c.Write([]byte("reload.tcp:1|c\nreload.timer:5|ms\n"))
	c.Close()
	d.WaitLines(p.out, 10*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "reload.tcp") == 1 && daemontest.Sum(ls, "reload.timer.99percentile") == 5
	})
	if !strings.Contains(d.Stdout(), "reload.count") {
		t.Error("the debug sink added by a reload printed nothing")
	}
}

// waitCount waits until the log holds s at least n times.
func waitCount(t *testing.T, d *daemontest.Daemon, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(d.Logs(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times, want %d", s, strings.Count(d.Logs(), s), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadBrokenConfig sends SIGHUP, and POST /-/reload, with a broken
// file: the old pipeline keeps flushing and the error names
// file:line:column.
func TestReloadBrokenConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	good := fmt.Sprintf(`veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" { path = %q }
`, admin, udp, out)
	path := filepath.Join(dir, "pipeline.hcl")
	writeFile(t, path, good)
	d := daemontest.StartPath(t, path)

	writeFile(t, path, strings.Replace(good, `interval     = "1s"`, `interval     = "1 second"`, 1))
	d.Signal(syscall.SIGHUP)
	d.WaitLog("config reload failed", 10*time.Second)
	if want := path + ":2:18: error: Invalid duration"; !strings.Contains(d.Logs(), want) {
		t.Errorf("the reload error does not name %q:\n%s", want, d.Logs())
	}
	resp, err := http.Post("http://"+admin+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), path+":2:18: error: Invalid duration") {
		t.Errorf("POST /-/reload: %d\n%s", resp.StatusCode, body)
	}

	sendLines(t, udp, "after.broken:1|c\n")
	d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool { return daemontest.Sum(ls, "after.broken") == 1 })

	metrics := httpGet(t, "http://"+admin+"/metrics")
	if !strings.Contains(metrics, "veneur_config_reload_error_total 2") {
		t.Errorf("reload errors not counted:\n%s", metrics)
	}
	writeFile(t, path, good)
	resp, err = http.Post("http://"+admin+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /-/reload of a good config: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(httpGet(t, "http://"+admin+"/metrics"), "veneur_config_reload_total 1") {
		t.Error("the reload was not counted")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSigtermFlushesPartialInterval stops veneurd in the middle of a long
// interval: what it received is flushed, exactly, and it exits 0.
func TestSigtermFlushesPartialInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1h"
  http_address = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" { path = %q }
`, admin, udp, out))
	mustSendSteadily(t, udp, "partial.count", 3000, 3000)
	// Wait until the daemon has the samples in hand, mid-interval.
	d.WaitMetric("veneur_worker_metrics_processed_total", 10*time.Second, func(v float64) bool { return v == 3000 })
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if got := daemontest.Sum(daemontest.ReadLines(t, out), "partial.count"); got != 3000 {
		t.Fatalf("partial.count = %v after SIGTERM, want 3000", got)
	}
}

// TestNoLeakedProcessesAfterReloads reloads 20 times, changing a sink each
// time: an old sink process never outlives its final flush.
func TestNoLeakedProcessesAfterReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	p := reloadPipeline{udp: daemontest.FreePort(t, "udp"), out: filepath.Join(dir, "out.jsonl"),
		percentiles: "[0.5]", readers: 1, debug: true}
	path := filepath.Join(dir, "pipeline.hcl")
	writeFile(t, path, p.String())
	d := daemontest.StartPath(t, path)
	for i := range 20 {
		p.debugQuiet = !p.debugQuiet
		writeFile(t, path, p.String())
		d.Signal(syscall.SIGHUP)
		waitCount(t, d, "config reloaded", i+1, 20*time.Second)
	}
	// Three plugins: the source, localfile and debug.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := len(daemontest.Children(d.Cmd.Process.Pid))
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d child processes after 20 reloads, want 3: %v", n, daemontest.Children(d.Cmd.Process.Pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
