package pluginhost

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Source is a supervised source plugin process. It calls its handler with
// each batch the process sends, from one goroutine.
//
// The process aggregates what it reads and holds the interval's state until
// Cut asks for it. A process that dies takes the state it held with it: at
// most one interval of what it read.
type Source struct {
	*supervisor
	listeners []*pb.Listener
	handle    func(*pb.Batch)
	params    atomic.Pointer[pb.StateParams] // sent with each Run
	stopping  chan struct{}
	ended     chan struct{}

	lastCut atomic.Uint64
	cutMu   sync.Mutex
	cuts    map[uint64]chan struct{} // by cut id: closed once its state is handled
}

// ErrNotRunning is returned by Cut when no process is running.
var ErrNotRunning = errors.New("source process not running")

// StartSource launches and configures a source plugin and starts it reading
// from files (spec.Files), which it receives as fds 3, 4, ...; addrs names
// them in the same order. params are the settings of the digests and
// sketches it aggregates into.
func StartSource(l *Launcher, spec Spec, addrs []string, req *pb.ConfigureRequest, params *pb.StateParams, handle func(*pb.Batch)) (*Source, error) {
	spec.Kind = sdk.KindSource
	sv, err := startSupervisor(l, spec, req, nil)
	if err != nil {
		return nil, err
	}
	s := &Source{supervisor: sv, handle: handle, stopping: make(chan struct{}), ended: make(chan struct{}),
		cuts: map[uint64]chan struct{}{}}
	s.params.Store(params)
	for i, a := range addrs {
		s.listeners = append(s.listeners, &pb.Listener{Fd: uint32(3 + i), Address: a})
	}
	go s.run()
	return s, nil
}

func (s *Source) run() {
	defer close(s.ended)
	var last *Process
	for {
		proc := s.await(context.Background(), last)
		if proc == nil {
			return
		}
		last = proc
		err := s.stream(proc)
		select {
		case <-s.stopping:
			return
		default:
		}
		s.log.Warn("source stream ended; restarting the process", "error", err)
		proc.Kill() // a source that stops streaming is as good as dead
		s.poke()
	}
}

func (s *Source) stream(p *Process) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := p.Source.Run(ctx, &pb.RunRequest{Listeners: s.listeners, Params: s.params.Load()})
	if err != nil {
		return err
	}
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.handle(b)
		if b.Cut != 0 {
			s.cutMu.Lock()
			if ch, ok := s.cuts[b.Cut]; ok {
				close(ch)
				delete(s.cuts, b.Cut)
			}
			s.cutMu.Unlock()
		}
	}
}

// Cut ends the process's interval: it asks for the state the process holds
// and returns once that state has been handled, or ctx ended. next are the
// settings for the interval that starts.
func (s *Source) Cut(ctx context.Context, next *pb.StateParams) error {
	s.params.Store(next)
	id := s.lastCut.Add(1)
	p, _ := s.current()
	if p == nil || p.Exited() {
		return ErrNotRunning
	}
	done := make(chan struct{})
	s.cutMu.Lock()
	s.cuts[id] = done
	s.cutMu.Unlock()
	defer func() {
		s.cutMu.Lock()
		delete(s.cuts, id)
		s.cutMu.Unlock()
	}()
	if _, err := p.Source.Cut(ctx, &pb.CutRequest{Id: id, Params: next}); err != nil {
		if status.Code(err) == codes.Unimplemented {
			return nil // a protocol 1 source streams samples and holds no state
		}
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop asks the source to stop reading, waits up to timeout for what it read
// to arrive, and ends its process. The sockets stay open: they belong to the
// caller.
func (s *Source) Stop(timeout time.Duration) {
	close(s.stopping)
	if p, _ := s.current(); p != nil && !p.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if _, err := p.Source.Stop(ctx, &pb.Empty{}); err == nil {
			select {
			case <-s.ended:
			case <-ctx.Done():
				s.log.Warn("source did not drain in time")
			}
		}
		cancel()
	}
	s.stop()
}
