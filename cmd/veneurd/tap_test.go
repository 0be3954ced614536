package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/internal/daemontest"
)

// tapping runs `veneurd tap` and collects its standard output's lines.
type tapping struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startTap(t *testing.T, args ...string) *tapping {
	t.Helper()
	tp := &tapping{cmd: exec.Command(daemontest.Binary(t), append([]string{"tap"}, args...)...), done: make(chan struct{})}
	out, err := tp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	tp.cmd.Stderr = &stderr
	if err := tp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(tp.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			tp.mu.Lock()
			tp.lines = append(tp.lines, sc.Text())
			tp.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tp.cmd.Process.Kill()
		tp.cmd.Wait()
		if t.Failed() {
			t.Logf("veneurd tap %s: stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	return tp
}

func (tp *tapping) Lines() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.lines...)
}

// waitTapped waits until the daemon at admin has n taps on block.
func waitTapped(t *testing.T, d *daemontest.Daemon, block string, n int) {
	t.Helper()
	ok := daemontest.Until(10*time.Second, func() bool {
		var st status.Status
		if json.Unmarshal([]byte(d.Get("/api/status")), &st) != nil {
			return false
		}
		got := 0
		for _, b := range st.Taps {
			if b == block {
				got++
			}
		}
		return got == n
	})
	if !ok {
		t.Fatalf("%s is not tapped %d times: %s", block, n, d.Get("/api/status"))
	}
}

// TestTapSinkShowsExactlyItsRoutedPoints taps the sink a routing rule
// sends pay.* to: the tap prints exactly the points the sink writes, the
// routed names with their aggregated values, and nothing routed elsewhere.
func TestTapSinkShowsExactlyItsRoutedPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	pay, rest := filepath.Join(dir, "pay.jsonl"), filepath.Join(dir, "rest.jsonl")
	udp, admin := daemontest.FreePort(t, "udp"), daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "pay" { path = %q }
sink "localfile" "rest" { path = %q }
metric_sink_routing "payments" {
  match { name = prefix("pay.") }
  matched     = [sink.localfile.pay]
  not_matched = [sink.localfile.rest]
}
`, admin, udp, pay, rest))
	tp := startTap(t, "-addr", admin, "-sink", "localfile.pay", "-json")
	waitTapped(t, d, "sink.localfile.pay", 1)
	sendLines(t, udp, "pay.charges:1|c|#currency:eur\npay.charges:2|c|#currency:eur\nother.hits:5|c\npay.balance:7|g\nother.depth:3|g")
	want := []string{"pay.balance [] gauge 7", "pay.charges [currency:eur] counter 3"}
	var got []string
	if !daemontest.Until(15*time.Second, func() bool {
		got = got[:0]
		for _, l := range tp.Lines() {
			var p status.TapPoint
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				t.Fatalf("tap line %q: %v", l, err)
			}
			if p.Block != "sink.localfile.pay" || p.Timestamp == 0 || p.Hostname == "" {
				t.Errorf("tap line %q lacks its block, timestamp or host", l)
			}
			got = append(got, fmt.Sprintf("%s %v %s %g", p.Name, p.Tags, p.Type, p.Value))
		}
		sort.Strings(got)
		return len(got) >= len(want)
	}) {
		t.Fatalf("tap printed %q", got)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tap printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// What the tap printed is what the sink wrote, no more.
	var written []string
	for _, l := range daemontest.ReadLines(t, pay) {
		written = append(written, fmt.Sprintf("%s %v %s %g", l.Name, l.Tags, l.Type, l.Value))
	}
	sort.Strings(written)
	if strings.Join(written, "\n") != strings.Join(got, "\n") {
		t.Errorf("the sink wrote\n%s\nthe tap printed\n%s", strings.Join(written, "\n"), strings.Join(got, "\n"))
	}
}

// TestTapSourceShowsTheSamplesItReads taps a source for pay.*: the tap
// prints each pay sample as it was read, sample rate and tags included,
// and none of the others; it ends after -n lines.
func TestTapSourceShowsTheSamplesItReads(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	udp, admin := daemontest.FreePort(t, "udp"), daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "blackhole" "null" {}
`, admin, udp))
	tp := startTap(t, "-addr", admin, "-source", "source.dogstatsd.in", "-n", "3", "pay.*")
	waitTapped(t, d, "source.dogstatsd.in", 1)
	sendLines(t, udp, "pay.charges:1|c\nother.hits:1|c\npay.balance:2|g|#env:prod,zone:a\npay.latency:3|ms|@0.5\nother.depth:4|g")
	select {
	case <-tp.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("tap -n 3 did not end; it printed %q", tp.Lines())
	}
	if err := tp.cmd.Wait(); err != nil {
		t.Errorf("tap -n 3 exited: %v", err)
	}
	want := "pay.charges counter 1\npay.balance{env:prod,zone:a} gauge 2\npay.latency timer 3 @0.5"
	if got := strings.Join(tp.Lines(), "\n"); got != want {
		t.Errorf("tap printed\n%s\nwant\n%s", got, want)
	}
	// The tap is gone with its reader: the source copies nothing more.
	waitTapped(t, d, "source.dogstatsd.in", 0)
}

// TestStalledTapLosesTapLinesNotData holds taps open that never read, on a
// sink that receives 40,000 points a flush and on its source: the taps lose
// lines and count them, and the sink still gets every sample, exactly.
func TestStalledTapLosesTapLinesNotData(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	udp, admin := daemontest.FreePort(t, "udp"), daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" {
  listen            = ["udp://%s"]
  read_buffer_bytes = 8388608
}
sink "localfile" "out" { path = %q }
`, admin, udp, out))
	c, err := net.Dial("tcp", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /api/tap?block=sink.localfile.out HTTP/1.1\r\nHost: veneurd\r\n\r\n")
	waitTapped(t, d, "sink.localfile.out", 1)
	// And one on the source, for every name: once its buffer is full, the
	// source only counts what it would copy.
	sc, err := net.Dial("tcp", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(sc, "GET /api/tap?block=source.dogstatsd.in HTTP/1.1\r\nHost: veneurd\r\n\r\n")
	waitTapped(t, d, "source.dogstatsd.in", 1)

	const series, rounds = 40_000, 3
	uc, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for r := range rounds {
		var dgram []byte
		for i := range series {
			dgram = fmt.Appendf(dgram, "flood.c%d:1|c\n", i)
			if len(dgram) > 1300 || i == series-1 {
				if _, err := uc.Write(dgram); err != nil {
					t.Fatal(err)
				}
				dgram = dgram[:0]
			}
		}
		// The next round waits for this one to be read: no socket drops.
		d.WaitMetric("veneur_worker_metrics_processed_total", 10*time.Second, func(v float64) bool { return v >= float64((r+1)*series) })
	}
	lines := d.WaitLines(out, 20*time.Second, func(lines []daemontest.Line) bool {
		return daemontest.Sum(lines, "flood.c39999") == rounds
	})
	for _, i := range []int{0, 1, 12345, 39999} {
		if got := daemontest.Sum(lines, fmt.Sprintf("flood.c%d", i)); got != rounds {
			t.Errorf("flood.c%d = %v, want %d", i, got, rounds)
		}
	}
	for _, block := range []string{"sink.localfile.out", "source.dogstatsd.in"} {
		d.WaitMetric(`veneur_tap_lines_dropped_total{block="`+block+`"}`, 10*time.Second, func(v float64) bool { return v > 0 })
	}
	if drops, _ := d.Metric(`veneur_sink_flush_error_total{sink="sink.localfile.out"}`); drops != 0 {
		t.Errorf("%v failed flushes", drops)
	}
}
