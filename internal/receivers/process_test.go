package receivers

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// fakeT records what the process helper reports, to test its failures
// without failing the test. Fatalf ends the goroutine as testing's does.
type fakeT struct {
	testing.TB
	msgs     []string
	failed   bool
	cleanups []func()
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Failed() bool      { return f.failed }
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Logf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = true
	f.Logf(format, args...)
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// run calls fn as a test would, then the cleanups, and returns what was
// reported.
func (f *fakeT) run(fn func()) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return strings.Join(f.msgs, "\n")
}

func TestProcessStartStop(t *testing.T) {
	f := &fakeT{TB: t}
	dir := t.TempDir()
	runs := 1
	// Ready once this run has written its line to "started".
	ready := func() error {
		b, _ := os.ReadFile(filepath.Join(dir, "started"))
		if strings.Count(string(b), "\n") < runs {
			return fmt.Errorf("not started")
		}
		return nil
	}
	var p *process
	out := f.run(func() {
		p = startProcess(f, "sleeper", dir, []string{"GREETING=hello"}, ready,
			"sh", "-c", `echo "$GREETING"; echo >>started; exec sleep 60`)
		p.Stop()
		if p.running() {
			t.Error("running after Stop")
		}
		runs++
		p.Start()
		if !p.running() {
			t.Error("not running after Start")
		}
	})
	if f.failed || p.running() {
		t.Errorf("failed %v, running after cleanup %v: %s", f.failed, p.running(), out)
	}
	if got := strings.Count(p.Output(), "hello\n"); got != 2 {
		t.Errorf("output: %q", p.Output())
	}
}

func TestProcessExitsWhileStarting(t *testing.T) {
	f := &fakeT{TB: t}
	out := f.run(func() {
		startProcess(f, "crasher", t.TempDir(), nil, func() error { return fmt.Errorf("not yet") },
			"sh", "-c", "echo boom; exit 3")
		t.Error("startProcess returned")
	})
	if !strings.Contains(out, "crasher exited while starting: exit status 3") || !strings.Contains(out, "boom") ||
		strings.Contains(out, "exited during the test") {
		t.Errorf("reported:\n%s", out)
	}
}

func TestProcessDiesDuringTest(t *testing.T) {
	f := &fakeT{TB: t}
	out := f.run(func() {
		p := startProcess(f, "victim", t.TempDir(), nil, func() error { return nil }, "sleep", "60")
		p.run.Process.Signal(syscall.SIGKILL)
		<-p.done
	})
	if !strings.Contains(out, "victim exited during the test: signal: killed") {
		t.Errorf("reported:\n%s", out)
	}
}
