package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func needProc(t *testing.T) {
	t.Helper()
	if err := haveProc(); err != nil {
		t.Skip(err)
	}
}

func TestBenchParseMetrics(t *testing.T) {
	text := `# TYPE veneur_gc_number gauge
veneur_gc_number 3
# TYPE veneur_packet_error_total counter
veneur_packet_error_total{packet_type="metric",reason="bad_value"} 7
veneur_packet_error_total{packet_type="metric",reason="odd } label"} 2
veneur_packet_error_total{packet_type="metric",reason="tab	here \"quoted\" back\\slash new\nline"} 1e+06
veneur_packet_error_total_other 100
# TYPE veneur_worker_metrics_processed_total counter
veneur_worker_metrics_processed_total 1.23456789e+08
# TYPE veneur_worker_metrics_dropped_total counter
veneur_worker_metrics_dropped_total{reason="dropped_by_rule",rule="a"} 5
veneur_worker_metrics_dropped_total{reason="dropped_by_rule",rule="b"} 6
`
	c, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if c != (AdminCounts{Processed: 123456789, Errors: 1000009, Dropped: 11}) {
		t.Fatalf("got %+v", c)
	}
	if _, err := ParseMetrics(strings.NewReader("veneur_gc_number 3\n")); err == nil {
		t.Fatal("metrics without the processed counter accepted")
	}
	if _, err := ParseMetrics(strings.NewReader("veneur_worker_metrics_processed_total x\n")); err == nil {
		t.Fatal("a bad value accepted")
	}
}

// startSleep starts a child `sleep` and returns its pid; it is killed at the
// end of the test.
func startSleep(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// waitFor polls cond every 10 ms for up to timeout.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestBenchMeterCPUAndRSS(t *testing.T) {
	needProc(t)
	self := os.Getpid()
	child := startSleep(t)

	// The child is part of our tree as soon as it is started.
	pids, err := ProcessTree(self)
	if err != nil {
		t.Fatal(err)
	}
	if pids[0] != self || !slices.Contains(pids, child) {
		t.Fatalf("tree of %d = %v, lacks the child %d", self, pids, child)
	}
	if _, err := ProcessTree(1 << 30); err == nil {
		t.Fatal("the tree of a process that does not exist")
	}

	// CPU: burn at least 200 ms and see it counted, and not more than the
	// wall time allows.
	start := time.Now()
	cpu0, err := TreeCPU(self)
	if err != nil {
		t.Fatal(err)
	}
	var used time.Duration
	ok := waitForSpin(10*time.Second, func() bool {
		cpu, err := TreeCPU(self)
		if err != nil {
			t.Fatal(err)
		}
		used = cpu - cpu0
		return used >= 200*time.Millisecond
	})
	wall := time.Since(start)
	if !ok {
		t.Fatalf("burnt CPU for %v, counted %v", wall, used)
	}
	if limit := wall*time.Duration(runtime.NumCPU()) + 20*time.Millisecond; used > limit {
		t.Fatalf("counted %v of CPU in %v of wall time on %d CPUs", used, wall, runtime.NumCPU())
	}
	t.Logf("burnt %v of CPU in %v", used, wall)
	// The sleeping child uses (next to) nothing.
	if c, err := TreeCPU(child); err != nil || c > 200*time.Millisecond {
		t.Fatalf("sleep used %v: %v", c, err)
	}

	// RSS: sleep is small but resident; we are bigger, the tree bigger
	// still.
	childRSS := TreeRSS([]int{child})
	selfRSS := TreeRSS([]int{self})
	treeRSS := TreeRSS(pids)
	t.Logf("RSS: sleep %d KiB, test %d KiB, tree %d KiB", childRSS>>10, selfRSS>>10, treeRSS>>10)
	if childRSS < 64<<10 || childRSS > 64<<20 {
		t.Errorf("sleep's RSS %d bytes is not sane", childRSS)
	}
	if selfRSS < 1<<20 || selfRSS > 8<<30 {
		t.Errorf("the test's RSS %d bytes is not sane", selfRSS)
	}
	if treeRSS < selfRSS+childRSS {
		t.Errorf("tree RSS %d < %d + %d", treeRSS, selfRSS, childRSS)
	}
	// The sampler takes a first sample at once.
	m := &Meter{Pid: child}
	if peak := m.WatchRSS()(); peak < 64<<10 {
		t.Errorf("WatchRSS peak %d", peak)
	}
}

// waitForSpin spins (burning CPU) until cond holds or timeout passes.
func waitForSpin(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	x := 1.0
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		for i := range 1_000_000 {
			x = x*1.0000001 + float64(i&1)
		}
	}
	return x != 0
}

// socketInodeOf returns the inode of a socket of ours.
func socketInodeOf(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return st.Ino
}

// TestBenchMeterSocketDrops floods a UDP socket that nobody reads, with a
// tiny receive buffer, and checks the drops read for its inode against the
// system-wide RcvbufErrors.
//
// Every datagram the kernel drops for a full receive buffer is counted both
// in the socket's drops (the last column of /proc/net/udp) and in Udp
// RcvbufErrors, so over the flood the counter grows by at least our drops.
// It is shared by every socket of the network namespace, though: other
// processes dropping at the same time (such as other tests flooding other
// daemons) add to it. So the test asserts snmp >= drops, and snmp - drops
// within a small margin, and tries again a few times when the margin is
// exceeded: noise makes one attempt fail, not all of them.
func TestBenchMeterSocketDrops(t *testing.T) {
	needProc(t)
	self := os.Getpid()
	for attempt := range 5 {
		rc, drops, err := floodOnce(t, self)
		if err != nil {
			t.Fatal(err)
		}
		margin := max(20, drops/100)
		t.Logf("attempt %d: socket drops %d, RcvbufErrors grew by %d", attempt, drops, rc)
		if drops < 1000 {
			t.Fatalf("only %d drops for 2000 datagrams into a ~4 KiB buffer", drops)
		}
		if rc < drops {
			t.Fatalf("RcvbufErrors grew by %d, less than the %d drops of one socket", rc, drops)
		}
		if rc-drops <= margin {
			return
		}
	}
	t.Fatal("RcvbufErrors and the socket's drops never agreed: too much concurrent noise?")
}

func floodOnce(t *testing.T, self int) (rcvbuf, drops uint64, err error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	// The kernel raises a tiny SO_RCVBUF to its minimum (a few KiB).
	if err := conn.SetReadBuffer(1); err != nil {
		return 0, 0, err
	}
	ino := socketInodeOf(t, conn)
	inodes := SocketInodes([]int{self})
	if !inodes[ino] {
		return 0, 0, fmt.Errorf("SocketInodes(self) lacks the socket %d", ino)
	}
	out, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	one := map[uint64]bool{ino: true}
	d0, err := SocketDrops(self, one)
	if err != nil {
		return 0, 0, err
	}
	r0, err := RcvbufErrors(self)
	if err != nil {
		return 0, 0, err
	}
	payload := make([]byte, 500)
	for range 2000 {
		out.Write(payload)
	}
	d1, err := SocketDrops(self, one)
	if err != nil {
		return 0, 0, err
	}
	r1, err := RcvbufErrors(self)
	if err != nil {
		return 0, 0, err
	}
	if _, ok := d1[ino]; !ok {
		return 0, 0, fmt.Errorf("socket %d not in /proc/net/udp", ino)
	}
	return r1 - r0, d1[ino] - d0[ino], nil
}

func TestBenchFindListener(t *testing.T) {
	needProc(t)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A client connected to the port must not be taken for the listener.
	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tg, _ := ParseTarget("udp://" + conn.LocalAddr().String())
	if pid, err := FindListener(tg); err != nil || pid != os.Getpid() {
		t.Fatalf("FindListener(%s) = %d, %v; want %d", tg, pid, err, os.Getpid())
	}

	path := filepath.Join(t.TempDir(), "s.sock")
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if pid, err := FindListener(Target{Network: "unixgram", Address: path}); err != nil || pid != os.Getpid() {
		t.Fatalf("FindListener(unixgram %s) = %d, %v", path, pid, err)
	}

	free, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := free.LocalAddr().String()
	free.Close()
	tg, _ = ParseTarget(addr)
	if _, err := FindListener(tg); err == nil {
		t.Fatal("found a listener on a closed port")
	}
}

// startFake starts a fake target: a UDP socket read by a goroutine that
// counts lines (those starting with "bad" as errors, the others as
// processed), and an admin server serving the counts. It returns the target
// and the admin URL.
func startFake(t *testing.T) (Target, string) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(4 << 20)
	type counts struct{ processed, errors uint64 }
	ch := make(chan counts, 1)
	ch <- counts{}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			var c counts
			for line := range strings.SplitSeq(string(buf[:n]), "\n") {
				if strings.HasPrefix(line, "bad") {
					c.errors++
				} else {
					c.processed++
				}
			}
			cur := <-ch
			cur.processed += c.processed
			cur.errors += c.errors
			ch <- cur
		}
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		c := <-ch
		ch <- c
		fmt.Fprintf(w, "# TYPE veneur_worker_metrics_processed_total counter\nveneur_worker_metrics_processed_total %d\n", c.processed)
		if c.errors > 0 {
			fmt.Fprintf(w, "veneur_packet_error_total{packet_type=\"metric\",reason=\"bad_value\"} %d\n", c.errors)
		}
	}))
	t.Cleanup(func() { conn.Close(); srv.Close() })
	return Target{Network: "udp", Address: conn.LocalAddr().String()}, srv.URL
}

// TestBenchRunnerStep runs a paced step against a fake target in this
// process: everything sent is counted, the drops read are this process's,
// and the rate is what was asked.
func TestBenchRunnerStep(t *testing.T) {
	needProc(t)
	tg, admin := startFake(t)
	w := Workload{Series: 1000, Mix: Mix{Counter: 1, Set: 1}, Tags: 2, LinesPerDatagram: 20, MaxDatagram: 1432, SampleRate: 1, MinRingLines: 1000}
	ring, err := w.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, noBatch := range []bool{false, true} {
		r := &Runner{
			Sender:   &Sender{Target: tg, Ring: ring, Senders: 2, NoBatch: noBatch},
			Meter:    &Meter{Pid: os.Getpid(), Admin: admin},
			Duration: 500 * time.Millisecond,
			Settle:   3 * time.Second,
			MaxDrop:  0.1,
		}
		st, err := r.Step(context.Background(), 40000)
		if err != nil {
			t.Fatal(err)
		}
		j := st.JSON()
		t.Logf("sendmmsg %v: %+v", !noBatch, st)
		if st.Batched == noBatch {
			t.Errorf("Batched = %v with NoBatch %v", st.Batched, noBatch)
		}
		if !st.Counted || !st.Metered || st.Sent == 0 || st.Processed != st.Sent || st.Lost != 0 || !st.KeptUp() {
			t.Errorf("step %+v: want everything processed", st)
		}
		if rate := st.SentRate(); rate < 40000*0.8 || rate > 40000*1.05 {
			t.Errorf("sent %v lines/s, asked for 40000", rate)
		}
		if st.SendErrors != 0 || j.Processed == nil || *j.Processed != st.Sent || j.CPUSeconds == nil {
			t.Errorf("JSON %+v", j)
		}
	}
}

// TestBenchSenderThroughput checks that one sender, unpaced, writes far
// more than a per-packet pacer could. The figure is logged; the bound is
// loose because other tests may share the machine.
func TestBenchSenderThroughput(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() // never read: the kernel drops what does not fit
	w := Workload{Series: 10000, Mix: Mix{40, 20, 30, 10}, Tags: 3, LinesPerDatagram: 25, MaxDatagram: 1432, SampleRate: 1}
	ring, err := w.Render()
	if err != nil {
		t.Fatal(err)
	}
	s := &Sender{Target: Target{Network: "udp", Address: conn.LocalAddr().String()}, Ring: ring, Senders: 1}
	res, err := s.Run(context.Background(), 0, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(res.Lines) / res.Elapsed.Seconds()
	t.Logf("one sender: %.0f lines/s, %.0f datagrams/s, sendmmsg %v", rate, float64(res.Datagrams)/res.Elapsed.Seconds(), res.Batched)
	if rate < 250000 {
		t.Errorf("one sender wrote only %.0f lines/s", rate)
	}
	if !res.Batched {
		t.Error("sendmmsg not used on Linux")
	}
}

// TestBenchSenderUnixgram sends over a unixgram socket: no drops there, the
// sender waits for the reader instead.
func TestBenchSenderUnixgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	var read atomic.Uint64
	go func() {
		buf := make([]byte, 65536)
		for {
			k, err := uc.Read(buf)
			if err != nil {
				return
			}
			read.Add(uint64(strings.Count(string(buf[:k]), "\n") + 1))
		}
	}()
	w := Workload{Series: 100, Mix: Mix{Counter: 1}, LinesPerDatagram: 10, MaxDatagram: 1432, SampleRate: 1, MinRingLines: 100}
	ring, _ := w.Render()
	tg, _ := ParseTarget("unixgram://" + path)
	res, err := (&Sender{Target: tg, Ring: ring, Senders: 1}).Run(context.Background(), 20000, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Everything written is read or waits in the socket's queue.
	waitFor(10*time.Second, func() bool { return read.Load() >= res.Lines })
	n := read.Load()
	if n != res.Lines || res.Lines == 0 || res.Batched || res.Errors != 0 {
		t.Fatalf("sent %+v, read %d lines", res, n)
	}
}

// TestBenchFindMaxSearch runs the search against a synthetic target that
// keeps up to 123,456 lines/s.
func TestBenchFindMaxSearch(t *testing.T) {
	const limit = 123456
	var rates []float64
	step := func(_ context.Context, rate float64) (Step, error) {
		rates = append(rates, rate)
		st := Step{Offered: rate, Elapsed: time.Second, Sent: uint64(rate), Datagrams: uint64(rate) / 25, Counted: true, Processed: uint64(rate), MaxDrop: 0.1}
		if rate > limit {
			st.Processed = limit
			st.Lost = int64(rate) - limit
		}
		return st, nil
	}
	res, err := findMax(context.Background(), 10000, 30, step, func(Step) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rates %v: %+v", rates, res)
	if res.Rate > limit || res.Rate < limit*0.95 || res.Best == nil {
		t.Fatalf("found %v, want within 5%% below %d", res.Rate, limit)
	}
	if rates[0] != 10000 || rates[1] != 15000 {
		t.Fatalf("rates %v: want steps of x1.5 from 10000", rates)
	}
	// Starting too high halves down first.
	rates = nil
	res, _ = findMax(context.Background(), 1e6, 30, step, func(Step) {})
	if res.Rate > limit || res.Rate < limit*0.95 || rates[1] != 5e5 {
		t.Fatalf("from 1e6: rates %v, found %v", rates, res.Rate)
	}
	// The step limit holds.
	rates = nil
	res, _ = findMax(context.Background(), 10, 3, step, func(Step) {})
	if len(rates) != 3 || res.Steps != 3 {
		t.Fatalf("3 steps at most: ran %v", rates)
	}
}
