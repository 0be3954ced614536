// Package daemontest runs the real veneurd binary for end-to-end tests: it
// builds it once per test process, starts it on a pipeline, finds its plugin
// processes and reads what its localfile sinks wrote.
package daemontest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/proc"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds veneurd (once per test process) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "veneurd-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "veneurd")
		args := []string{"build", "-o", binPath}
		if os.Getenv("VENEURD_TEST_RACE") != "" { // the daemon built with the race detector
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/veneurd")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreePort returns a loopback address with a free port for network ("udp"
// or "tcp"). It never returns the same address twice in a test binary: the
// kernel may hand a just-closed port out again, and two daemons of one test
// given the same port would talk to each other.
func FreePort(t testing.TB, network string) string {
	t.Helper()
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 100 {
		var addr string
		switch network {
		case "udp":
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			addr = c.LocalAddr().String()
		default:
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, l)
			addr = l.Addr().String()
		}
		// Holding the ports already tried makes the kernel offer others.
		if _, taken := portsGiven.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
	t.Fatalf("no %s port that was not handed out before", network)
	return ""
}

// portsGiven holds every address FreePort returned, whatever its network:
// a UDP and a TCP listener on one port may clash in the programs tested.
var portsGiven sync.Map

// Daemon is a running veneurd.
type Daemon struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Config string // path of the pipeline file
	mu     sync.Mutex
	logs   bytes.Buffer
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

// Start writes pipeline to a temporary file and runs `veneurd run` on it.
// It returns once the daemon logged that the pipeline started. The daemon is
// stopped at the end of the test.
func Start(t testing.TB, pipeline string, extraArgs ...string) *Daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.hcl")
	if err := os.WriteFile(path, []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	return StartPath(t, path, extraArgs...)
}

// StartPath runs `veneurd run -config path`.
func StartPath(t testing.TB, path string, extraArgs ...string) *Daemon {
	t.Helper()
	args := append([]string{"run", "-config", path, "-log-level", "debug"}, extraArgs...)
	d := &Daemon{t: t, Config: path, done: make(chan struct{})}
	d.Cmd = exec.Command(Binary(t), args...)
	d.Cmd.Stderr = writerFunc(func(b []byte) { d.mu.Lock(); d.logs.Write(b); d.mu.Unlock() })
	d.Cmd.Stdout = writerFunc(func(b []byte) { d.mu.Lock(); d.stdout.Write(b); d.mu.Unlock() })
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.Cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.Stop()
		// A race-built daemon and its plugins report races on stderr,
		// which the daemon's log collects.
		if strings.Contains(d.Logs(), "WARNING: DATA RACE") {
			t.Error("the race detector reported a data race in veneurd or a plugin")
		}
		if t.Failed() {
			t.Logf("veneurd log:\n%s", d.Logs())
		}
	})
	d.WaitLog("pipeline started", 30*time.Second)
	return d
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

// Logs returns what the daemon logged so far.
func (d *Daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// Stdout returns what the daemon (and its plugins) printed so far.
func (d *Daemon) Stdout() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stdout.String()
}

// WaitLog waits until the log contains s, failing the test after timeout or
// if the daemon exits first.
func (d *Daemon) WaitLog(s string, timeout time.Duration) {
	d.t.Helper()
	if !d.waitFor(func() bool { return strings.Contains(d.Logs(), s) }, timeout) {
		d.t.Fatalf("veneurd did not log %q within %s", s, timeout)
	}
}

// waitFor polls cond until it holds or timeout passes; false also when the
// daemon has exited.
func (d *Daemon) waitFor(cond func() bool, timeout time.Duration) bool {
	return Until(timeout, func() bool {
		select {
		case <-d.done:
			return true // exited: nothing will change any more
		default:
			return cond()
		}
	}) && cond()
}

// Until polls cond every 20 ms until it holds or timeout passes, and
// reports whether it held: the one way tests here wait on something they
// cannot be told about.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// flushLine marks the line the daemon logs at debug level for each flush
// ("veneurd: flush: points=..."); a plugin's logger has a longer name.
const flushLine = " veneurd: flush: "

// Flushes returns how many flushes the daemon has logged so far.
func (d *Daemon) Flushes() int { return strings.Count(d.Logs(), flushLine) }

// WaitFlushes waits until the daemon has logged n flushes more than it had
// when called, failing the test after timeout. The daemon logs a flush once
// its sources have handed over the interval that ended, and before its sinks
// have it: what is sent after WaitFlushes returns belongs to a later
// interval, and the sinks may not have the flush yet (see WaitFlushed).
func (d *Daemon) WaitFlushes(n int, timeout time.Duration) {
	d.t.Helper()
	from := d.Flushes()
	if !d.waitFor(func() bool { return d.Flushes() >= from+n }, timeout) {
		d.t.Fatalf("veneurd logged %d of %d more flushes within %s", d.Flushes()-from, n, timeout)
	}
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) {
	if err := d.Cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// Wait waits for the daemon to exit and returns its exit error.
func (d *Daemon) Wait(timeout time.Duration) error {
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		d.t.Fatalf("veneurd did not exit within %s", timeout)
		return nil
	}
}

// Stop sends SIGTERM and waits for the daemon to exit, killing it after 20s.
func (d *Daemon) Stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.Cmd.Process.Kill()
		<-d.done
	}
}

// Proc is a process.
type Proc struct {
	Pid     int
	Cmdline []string
}

// Children lists the live processes whose parent is pid.
func Children(pid int) []Proc {
	procs, _ := proc.Processes()
	var out []Proc
	for _, p := range procs {
		if p.PPid != pid || p.Dead {
			continue
		}
		cmdline, _ := proc.Cmdline(p.Pid)
		out = append(out, Proc{Pid: p.Pid, Cmdline: cmdline})
	}
	return out
}

// Line is one line of a localfile sink's output.
type Line = localfile.Line

// ReadLines reads a localfile sink's output; a missing file reads as empty,
// and a last line the sink is still writing is left out.
func ReadLines(t testing.TB, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Line
	dec := localfile.NewDecoder(f)
	for {
		var l Line
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, l)
	}
}

// WaitLines polls path until cond holds for its lines, or fails the test.
func (d *Daemon) WaitLines(path string, timeout time.Duration, cond func([]Line) bool) []Line {
	d.t.Helper()
	var lines []Line
	ok := d.waitFor(func() bool { lines = ReadLines(d.t, path); return cond(lines) }, timeout)
	if !ok {
		var b strings.Builder
		for _, l := range lines {
			if !strings.HasPrefix(l.Name, "veneur.") || strings.Contains(l.Name, "drops") || strings.Contains(l.Name, "processed") || strings.Contains(l.Name, "error") {
				fmt.Fprintf(&b, "\n  %d %s%v %s %g", l.Timestamp, l.Name, l.Tags, l.Type, l.Value)
			}
		}
		d.t.Fatalf("%s: condition not met within %s (%d lines); the non-self lines:%s", path, timeout, len(lines), b.String())
	}
	return lines
}

// WaitFlushed waits until the localfile sink writing path holds n flushes
// cut after the call, and returns the file's lines then; it fails the test
// after timeout. Use it to see that nothing more arrives once a total is
// reached: a flush cut after the call carries whatever the daemon had
// received before it, and n = 2 also covers state a source handed over too
// late for its cut, which joins the next interval.
//
// A flush is told by its self points (tagged veneurd:self; self_metrics is
// on by default), stamped with the end of their interval. The daemon cuts the
// interval ending at T at T or later, so self points stamped at or after the
// call's time come from a flush cut after it.
func (d *Daemon) WaitFlushed(path string, n int, timeout time.Duration) []Line {
	d.t.Helper()
	since := time.Now()
	first := since.Add(time.Second - 1).Unix() // since, rounded up to a second
	var lines []Line
	var stamps []int64
	ok := d.waitFor(func() bool {
		lines = ReadLines(d.t, path)
		stamps = SelfStamps(lines, first)
		return len(stamps) >= n
	}, timeout)
	if !ok {
		d.t.Fatalf("%s: %d of %d flushes cut after %s arrived within %s (self points stamped %v)",
			path, len(stamps), n, since.Format("15:04:05.000"), timeout, SelfStamps(lines, 0))
	}
	return lines
}

// SelfStamps returns, in order, the distinct timestamps of the self points
// (tagged veneurd:self) among lines, from first on: one per flush.
func SelfStamps(lines []Line, first int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, l := range lines {
		if l.Timestamp >= first && !seen[l.Timestamp] && slices.Contains(l.Tags, "veneurd:self") {
			seen[l.Timestamp] = true
			out = append(out, l.Timestamp)
		}
	}
	slices.Sort(out)
	return out
}

// adminAddress finds in the log the address the daemon's admin interface
// (http_address) listens on; the latest, should a reload have moved it.
var adminAddress = regexp.MustCompile(`admin interface listening: address=(\S+)`)

var httpClient = &http.Client{Timeout: 10 * time.Second}

// Metric reads one sample from the daemon's admin /metrics: series is
// written as in the Prometheus text, e.g.
// `veneur_sink_metrics_flushed_total{sink="sink.localfile.out"}`. It
// reports false when the series is absent. The pipeline must set
// http_address.
func (d *Daemon) Metric(series string) (float64, bool) {
	d.t.Helper()
	v, ok, err := d.metric(series)
	if err != nil {
		d.t.Fatal(err)
	}
	return v, ok
}

func (d *Daemon) metric(series string) (float64, bool, error) {
	m := adminAddress.FindAllStringSubmatch(d.Logs(), -1)
	if m == nil {
		return 0, false, fmt.Errorf("veneurd logged no admin address: the pipeline needs an http_address")
	}
	resp, err := httpClient.Get("http://" + m[len(m)-1][1] + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /metrics: %s\n%s", resp.Status, b)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, false, fmt.Errorf("/metrics: %q: %v", l, err)
			}
			return f, true, nil
		}
	}
	return 0, false, nil
}

// Get returns the body of GET path on the daemon's admin address, failing
// the test unless it answers 200. The pipeline must set http_address.
func (d *Daemon) Get(path string) string {
	d.t.Helper()
	m := adminAddress.FindAllStringSubmatch(d.Logs(), -1)
	if m == nil {
		d.t.Fatal("veneurd logged no admin address: the pipeline needs an http_address")
	}
	resp, err := httpClient.Get("http://" + m[len(m)-1][1] + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %s %v\n%s", path, resp.Status, err, b)
	}
	return string(b)
}

// WaitMetric polls series on the admin /metrics until cond holds for its
// value (0 while absent), and returns the value; it fails the test after
// timeout.
func (d *Daemon) WaitMetric(series string, timeout time.Duration, cond func(float64) bool) float64 {
	d.t.Helper()
	var v float64
	var err error
	ok := d.waitFor(func() bool {
		v, _, err = d.metric(series)
		return err == nil && cond(v)
	}, timeout)
	if !ok {
		d.t.Fatalf("%s = %v (error: %v): condition not met within %s", series, v, err, timeout)
	}
	return v
}

// Sum adds the values of the lines named name whose tags are exactly tags.
func Sum(lines []Line, name string, tags ...string) float64 {
	var s float64
	for _, l := range lines {
		if l.Name == name && strings.Join(l.Tags, ",") == strings.Join(tags, ",") {
			s += l.Value
		}
	}
	return s
}

// plugins caches plugin builds for the test process: pkg -> binary.
var plugins struct {
	sync.Mutex
	dir   string
	built map[string]string
}

// BuildPlugin builds a plugin main package (a path relative to the module
// root, e.g. "./examples/plugins/sink_example") once per test process, and
// copies the binary into dir (tests may alter their copy); it returns the
// copy's path.
func BuildPlugin(t testing.TB, pkg, dir string) string {
	t.Helper()
	plugins.Lock()
	defer plugins.Unlock()
	bin, ok := plugins.built[pkg]
	if !ok {
		if plugins.dir == "" {
			d, err := os.MkdirTemp("", "veneurd-test-plugins-")
			if err != nil {
				t.Fatal(err)
			}
			plugins.dir, plugins.built = d, map[string]string{}
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		bin = filepath.Join(plugins.dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg))
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		plugins.built[pkg] = bin
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	if err := os.WriteFile(out, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}
