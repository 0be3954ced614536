package pluginhost

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// SourceProcess is a supervised source plugin process.
//
// The process aggregates what it reads and holds the interval's state until
// a cut takes it: Cut at each flush, a cut of its own when the process asks
// for one (its state has outgrown its budget), and a last one when it
// stops. Everything else it sends (counts, events, service checks) comes on
// its Run stream. A process that dies takes the state it held with it: at
// most one interval of what it read.
type SourceProcess struct {
	*supervisor
	listeners []*pb.Listener
	handle    SourceHandlers
	params    atomic.Pointer[pb.StateParams] // sent with each Run and cut
	drops     []*pb.DropRule                 // sent with each Run
	limits    *pb.Limits                     // sent with each Run
	tap       atomic.Pointer[pb.TapRequest]  // sent to each process, nil for none
	stopping  chan struct{}
	ended     chan struct{}
	// cutting holds a token while a cut streams: one cut at a time, so that
	// a cut's state is merged before the next cut's. earlyAsked is set when
	// the process asks for a cut, until one starts. endSkipped is set when
	// a Cut could not start for the cut still streaming: the next cut ends
	// the interval in its place, so that the process's series limits count
	// anew.
	cutting    chan struct{}
	earlyAsked atomic.Bool
	endSkipped atomic.Bool
}

// SourceHandlers take what a source process sends.
type SourceHandlers struct {
	// Batch takes counts, events and service checks, from one goroutine.
	Batch func(*pb.Batch)
	// State merges a part of the state a cut hands over, as packed records
	// (internal/state), from the goroutine of the cut.
	State func(records []byte)
}

// ErrNotRunning is returned by Cut when no process is running.
var ErrNotRunning = errors.New("source process not running")

// StartSource launches and configures a source plugin and starts it reading
// from files (spec.Files), which it receives as fds 3, 4, ...; addrs names
// them in the same order. params are the settings of the digests and
// sketches it aggregates into; drops the rules whose samples it discards;
// limits bound the series it makes in an interval.
func StartSource(l *Launcher, spec Spec, addrs []string, req *pb.ConfigureRequest, params *pb.StateParams, drops []*pb.DropRule, limits *pb.Limits, h SourceHandlers) (*SourceProcess, error) {
	spec.Kind = sdk.KindSource
	sv, err := startSupervisor(l, spec, req, nil)
	if err != nil {
		return nil, err
	}
	s := &SourceProcess{supervisor: sv, handle: h, stopping: make(chan struct{}), ended: make(chan struct{}),
		cutting: make(chan struct{}, 1), drops: drops, limits: limits}
	s.params.Store(params)
	for i, a := range addrs {
		s.listeners = append(s.listeners, &pb.Listener{Fd: uint32(3 + i), Address: a})
	}
	go s.run()
	return s, nil
}

func (s *SourceProcess) run() {
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

func (s *SourceProcess) stream(p *Process) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := p.Source.Run(ctx, &pb.RunRequest{Listeners: s.listeners, Params: s.params.Load(), DropRules: s.drops, Limits: s.limits})
	if err != nil {
		return err
	}
	if req := s.tap.Load(); req != nil {
		// A restarted process is tapped as its predecessor was.
		if _, err := p.Source.Tap(ctx, req); err != nil {
			s.log.Warn("cannot tap the restarted source", "error", err)
		}
	}
	warned := len(s.drops) == 0
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !warned { // the first batch says whether the source applies them
			warned = true
			if !b.DropRulesApplied {
				s.log.Warn("the source does not apply drop rules: it was built with an sdk older than them, and the samples they would drop are aggregated")
			}
		}
		s.handle.Batch(b)
		if b.CutNow {
			go s.cutEarly()
		}
	}
}

// cutEarly cuts the process within the interval, as it asked. When a cut
// is under way, that cut runs this one as it ends: the process may have
// asked after the state it is taking was taken.
func (s *SourceProcess) cutEarly() {
	s.earlyAsked.Store(true)
	select {
	case s.cutting <- struct{}{}:
	default:
		return
	}
	if err := s.cut(s.ctx, &pb.CutRequest{Params: s.params.Load()}); err != nil && s.ctx.Err() == nil {
		s.log.Warn("cut asked for by the source failed", "error", err)
	}
}

// Cut ends the process's interval: its state streams to the State handler,
// and Cut returns once all of it has been merged, or when ctx ends. A cut
// that outlasts ctx goes on: its state is merged when it arrives, into
// whatever interval is then in progress. next are the settings for the
// interval that starts.
func (s *SourceProcess) Cut(ctx context.Context, next *pb.StateParams) error {
	s.params.Store(next)
	select {
	case s.cutting <- struct{}{}:
	case <-ctx.Done():
		// The previous cut is still streaming; what this one would have
		// taken stays in the process for the next, which ends the interval.
		s.endSkipped.Store(true)
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() { done <- s.cut(s.ctx, &pb.CutRequest{Params: next, IntervalEnd: true}) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cut streams the process's state to the State handler; the caller holds
// the cutting token, which cut gives back.
func (s *SourceProcess) cut(ctx context.Context, req *pb.CutRequest) error {
	s.earlyAsked.Store(false)
	if s.endSkipped.Swap(false) {
		req.IntervalEnd = true
	}
	defer func() {
		<-s.cutting
		// Checked after the token is given back: an ask that found the
		// token taken is seen here, or takes the token itself.
		if s.earlyAsked.Load() {
			go s.cutEarly()
		}
	}()
	p, _ := s.current()
	if p == nil || p.Exited() {
		return ErrNotRunning
	}
	st, err := p.Source.Cut(ctx, req)
	if err != nil {
		return err
	}
	for {
		part, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.handle.State(part.Records)
	}
}

// ErrNoTap is returned by Tap for a source built before taps existed.
var ErrNoTap = errors.New("the source cannot be tapped: it was built with an sdk older than taps")

// Tap sets the samples the process copies to its Run stream (nil or no
// names: none), now and in every process that replaces it.
func (s *SourceProcess) Tap(ctx context.Context, req *pb.TapRequest) error {
	if req != nil && len(req.Names) == 0 {
		req = nil
	}
	s.tap.Store(req)
	p, _ := s.current()
	if p == nil || p.Exited() {
		return nil // the restarted process gets it
	}
	if req == nil {
		req = &pb.TapRequest{}
	}
	if _, err := p.Source.Tap(ctx, req); err != nil {
		if status.Code(err) == codes.Unimplemented {
			return ErrNoTap
		}
		return err
	}
	return nil
}

// Stop asks the source to stop reading, waits up to timeout for what it read
// to arrive and for its state, and ends its process. The sockets stay open:
// they belong to the caller.
func (s *SourceProcess) Stop(timeout time.Duration) {
	close(s.stopping)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if p, _ := s.current(); p != nil && !p.Exited() {
		if _, err := p.Source.Stop(ctx, &pb.Empty{}); err == nil {
			select {
			case <-s.ended:
				if err := s.Cut(ctx, s.params.Load()); err != nil {
					s.log.Warn("source did not hand over its state in time", "error", err)
				}
			case <-ctx.Done():
				s.log.Warn("source did not drain in time")
			}
		}
	}
	s.stop()
}
