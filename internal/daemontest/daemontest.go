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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
// or "tcp").
func FreePort(t testing.TB, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
}

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
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-d.done:
			return cond()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return cond()
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
	entries, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces; the
		// fields after it are state and ppid.
		rest := stat[bytes.LastIndexByte(stat, ')')+2:]
		f := strings.Fields(string(rest))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != pid {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, Proc{Pid: p, Cmdline: strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")})
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
