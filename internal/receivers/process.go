// Package receivers starts real metric receivers for the tests of the vendor
// sinks: VictoriaMetrics, Prometheus, InfluxDB 1.x and Graphite's
// carbon-cache, each on free ports on 127.0.0.1 with its data in the test's
// temporary directory, and reads back what they stored. A sink's test then
// checks what a real receiver made of the sink's requests (names, tags,
// timestamps, values), not what a fake one was told.
//
// The receivers are not part of the module: scripts/test-deps.sh builds
// VictoriaMetrics into the test cache and installs the others from Debian.
// A missing one skips the test that asks for it, naming the script.
//
// Each receiver's doc comment says how the protocols it accepts land in it:
// how names are kept or rewritten, where tags go, which timestamps it takes.
// Those notes come from experiments against the binaries that test-deps.sh
// installs, and the package's tests check the main ones.
package receivers

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// Timeouts for a receiver's child process. Start covers a cold start of the
// slowest (carbon-cache imports Twisted for about a second; Prometheus
// replays its WAL after a restart); Stop covers a graceful shutdown that
// flushes (carbon-cache takes 2-3 s: its writer thread sleeps between
// rounds).
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
)

// outputLimit bounds the output kept of a receiver: the end of it is what
// explains a failure.
const outputLimit = 256 << 10

// cacheDir is where scripts/test-deps.sh installs what the tests use besides
// Go: $VENEURD_TEST_CACHE, or $HOME/.cache/veneurd-test.
func cacheDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("VENEURD_TEST_CACHE"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("no home directory for the test cache (scripts/test-deps.sh fills it): %v", err)
	}
	return filepath.Join(home, ".cache", "veneurd-test")
}

// cachedBinary returns the path of bin/name in the test cache, or skips the
// test.
func cachedBinary(t testing.TB, name, what string) string {
	t.Helper()
	path := filepath.Join(cacheDir(t), "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is not built at %s (scripts/test-deps.sh builds it)", what, path)
	}
	return path
}

// systemBinary returns the path of name on $PATH, or skips the test.
func systemBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (scripts/test-deps.sh installs Debian's %s as root)", name, pkg)
	}
	return path
}

// freeTCPUDP returns a loopback address whose port is free for both TCP and
// UDP, for servers that listen on both at one address (VictoriaMetrics'
// Graphite listener).
func freeTCPUDP(t testing.TB) string {
	t.Helper()
	for range 20 {
		addr := daemontest.FreePort(t, "tcp")
		c, err := net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return ""
}

// port returns the port of a "host:port" address.
func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// process is a receiver's child process. Its command line is kept so that
// Start runs it again after Stop on the same ports and data directory: tests
// stop a receiver for a while to see what a sink does meanwhile. Its output
// (stdout and stderr of every run) is kept and logged when the test fails.
//
// Start and Stop call t.Fatal, so they belong on the test's goroutine.
type process struct {
	t     testing.TB
	name  string
	cmd   []string
	env   []string // added to the test's environment
	dir   string
	ready func() error // nil once the receiver answers

	mu      sync.Mutex
	out     bytes.Buffer
	run     *exec.Cmd
	done    chan struct{} // closed when run has exited
	err     error         // run's exit status, once done
	stopped bool          // run was stopped by Stop
}

// startProcess runs cmd in dir, with env added to the environment, waits
// until ready returns nil, and stops the process when the test ends.
func startProcess(t testing.TB, name, dir string, env []string, ready func() error, cmd ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, cmd: cmd, env: env, dir: dir, ready: ready}
	t.Cleanup(func() {
		if p.done != nil && !p.running() && !p.stopped {
			t.Errorf("%s exited during the test: %v", name, p.err)
		}
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(p.Output(), 32<<10))
		}
	})
	p.Start()
	return p
}

// Output returns what the receiver printed, the last outputLimit bytes of
// it.
func (p *process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	if n := p.out.Len(); n > outputLimit {
		rest := append([]byte(nil), p.out.Bytes()[n-outputLimit/2:]...)
		p.out.Reset()
		p.out.WriteString("[...]\n")
		p.out.Write(rest)
	}
	return len(b), nil
}

// running reports whether the process is started and has not exited.
func (p *process) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Start runs the receiver and waits until it answers, failing the test if
// it exits first or does not answer within startTimeout.
func (p *process) Start() {
	p.t.Helper()
	if p.running() {
		p.t.Fatalf("%s is already running", p.name)
	}
	cmd := exec.Command(p.cmd[0], p.cmd[1:]...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = p
	cmd.Stderr = p
	// Killed with the test process if that dies (a test timeout's panic):
	// an orphan would hold its ports and files.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// The output pipes close when the receiver exits, unless something it
	// started holds them: Wait does not wait for that longer than this.
	cmd.WaitDelay = 2 * time.Second
	p.stopped = false
	fmt.Fprintf(p, "--- %s starting: %q\n", p.name, p.cmd)
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.run, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	var last error
	if !daemontest.Until(startTimeout, func() bool {
		if !p.running() {
			return true
		}
		last = p.ready()
		return last == nil
	}) {
		p.t.Fatalf("%s did not answer within %s: %v (its output follows at the end of the test)", p.name, startTimeout, last)
	}
	if !p.running() {
		p.mu.Lock()
		err := p.err
		p.mu.Unlock()
		p.stopped = true // said here, not again at cleanup
		p.t.Fatalf("%s exited while starting: %v (its output follows at the end of the test)", p.name, err)
	}
}

// Stop sends the receiver SIGTERM and waits for it to exit, which flushes
// what it holds in memory; after stopTimeout it is killed. Stopping a
// stopped receiver does nothing.
func (p *process) Stop() {
	if !p.running() {
		return
	}
	p.stopped = true
	_ = p.run.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		fmt.Fprintf(p, "--- %s did not stop within %s: killed\n", p.name, stopTimeout)
		_ = p.run.Process.Kill()
		<-p.done
	}
	p.mu.Lock()
	fmt.Fprintf(&p.out, "--- %s exited: %v\n", p.name, p.err)
	p.mu.Unlock()
}

// waitFor polls get until cond holds of what it returns, or fails the test
// after timeout with the last value seen (or the last error of get): the
// wait for something a receiver cannot announce.
func waitFor[T any](t testing.TB, timeout time.Duration, what string, get func() (T, error), cond func(T) bool) T {
	t.Helper()
	var v T
	var err error
	if daemontest.Until(timeout, func() bool {
		v, err = get()
		return err == nil && cond(v)
	}) {
		return v
	}
	if err != nil {
		t.Fatalf("%s: not there within %s: %v", what, timeout, err)
	}
	t.Fatalf("%s: not there within %s; last seen:\n%s", what, timeout, show(v))
	return v
}

// show formats a value for a failure message, one element a line for a
// slice of what the helpers return.
func show(v any) string {
	switch s := v.(type) {
	case []Series:
		return lines(s)
	case []Sample:
		return lines(s)
	case []Row:
		return lines(s)
	case []Point:
		return lines(s)
	}
	return fmt.Sprintf("%+v", v)
}

func lines[T any](s []T) string {
	var b bytes.Buffer
	for _, x := range s {
		fmt.Fprintf(&b, "%+v\n", x)
	}
	if len(s) == 0 {
		b.WriteString("(nothing)\n")
	}
	return b.String()
}

// tail returns the last n bytes of s, from a line's start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}
