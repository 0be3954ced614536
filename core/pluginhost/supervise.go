package pluginhost

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Restart backoff: the first restart waits minBackoff, each failed attempt in
// a row doubles the wait up to maxBackoff. A process that stayed up for
// maxBackoff resets it.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	pollEvery  = 100 * time.Millisecond
)

// supervisor keeps one plugin process running: it notices an exit, restarts
// the process with backoff and brings it back to the state prepare puts it in
// (configured, and started for sinks).
type supervisor struct {
	l       *Launcher
	spec    Spec
	req     *pb.ConfigureRequest
	prepare func(context.Context, *Process) error
	log     hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	proc    *Process      // nil while restarting
	changed chan struct{} // closed when proc changes
	wake    chan struct{}

	restarts atomic.Uint64
	fault    atomic.Pointer[Fault] // the last exit or failed restart
}

// Fault is something that went wrong with a plugin process, and when.
type Fault struct {
	Msg string
	At  time.Time
}

// LastFault returns the last exit or failed restart of the process, nil if
// none happened.
func (s *supervisor) LastFault() *Fault { return s.fault.Load() }

// startSupervisor launches the first process synchronously, so that a plugin
// that cannot start or rejects its configuration fails the caller, then
// watches it.
func startSupervisor(l *Launcher, spec Spec, req *pb.ConfigureRequest, prepare func(context.Context, *Process) error) (*supervisor, error) {
	s := &supervisor{
		l: l, spec: spec, req: req, prepare: prepare,
		log:     l.Logger.Named(spec.Address),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	proc, err := s.launch()
	if err != nil {
		return nil, err
	}
	s.proc = proc
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.watch()
	return s, nil
}

func (s *supervisor) launch() (*Process, error) {
	proc, err := s.l.Start(s.spec)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	diags, err := proc.Configure(ctx, s.req)
	if err == nil {
		if err = sdk.DiagnosticsFromProto(diags); err != nil {
			err = fmt.Errorf("invalid configuration: %w", err)
		}
	}
	if err == nil && s.prepare != nil {
		err = s.prepare(ctx, proc)
	}
	if err != nil {
		proc.Kill()
		return nil, err
	}
	return proc, nil
}

// current returns the running process, or nil while it is being restarted.
func (s *supervisor) current() (*Process, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc, s.changed
}

// await returns a running process other than old, waiting for a restart if
// needed; nil if ctx ends first or the supervisor stops.
func (s *supervisor) await(ctx context.Context, old *Process) *Process {
	for {
		proc, changed := s.current()
		if proc != nil && proc != old && !proc.Exited() {
			return proc
		}
		s.poke()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		}
	}
}

// poke makes the watcher check the process now.
func (s *supervisor) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *supervisor) set(p *Process) {
	s.mu.Lock()
	s.proc = p
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *supervisor) watch() {
	defer close(s.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	backoff := minBackoff
	started := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		proc, _ := s.current()
		if !proc.Exited() {
			continue
		}
		if time.Since(started) > maxBackoff {
			backoff = minBackoff
		}
		s.log.Error("plugin process exited; restarting", "pid", proc.Pid(), "backoff", backoff)
		s.fault.Store(&Fault{Msg: fmt.Sprintf("process exited (pid %d)", proc.Pid()), At: time.Now()})
		s.set(nil)
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			p, err := s.launch()
			if err != nil {
				s.log.Error("plugin restart failed", "error", err, "next_backoff", backoff)
				s.fault.Store(&Fault{Msg: "restart failed: " + err.Error(), At: time.Now()})
				continue
			}
			s.restarts.Add(1)
			if s.l.OnRestart != nil {
				s.l.OnRestart(s.spec.Address)
			}
			started = time.Now()
			s.log.Info("plugin restarted", "pid", p.Pid())
			s.set(p)
			break
		}
	}
}

// Running reports whether the process is up.
func (s *supervisor) Running() bool {
	p, _ := s.current()
	return p != nil && !p.Exited()
}

// Restarts counts restarts since the supervisor started.
func (s *supervisor) Restarts() uint64 { return s.restarts.Load() }

// Pid returns the current process id, 0 while restarting.
func (s *supervisor) Pid() int {
	if p, _ := s.current(); p != nil {
		return p.Pid()
	}
	return 0
}

// Address returns the block address.
func (s *supervisor) Address() string { return s.spec.Address }

// stop ends supervision and kills the process.
func (s *supervisor) stop() {
	s.cancel()
	<-s.done
	if p, _ := s.current(); p != nil {
		p.Kill()
	}
}
