package pluginhost

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Source is a supervised source plugin process. It calls its handler with
// each batch the process sends, from one goroutine.
type Source struct {
	*supervisor
	listeners []*pb.Listener
	handle    func(*pb.Batch)
	stopping  chan struct{}
	ended     chan struct{}
}

// StartSource launches and configures a source plugin and starts it reading
// from files (spec.Files), which it receives as fds 3, 4, ...; addrs names
// them in the same order.
func StartSource(l *Launcher, spec Spec, addrs []string, req *pb.ConfigureRequest, handle func(*pb.Batch)) (*Source, error) {
	spec.Kind = sdk.KindSource
	sv, err := startSupervisor(l, spec, req, nil)
	if err != nil {
		return nil, err
	}
	s := &Source{supervisor: sv, handle: handle, stopping: make(chan struct{}), ended: make(chan struct{})}
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
	st, err := p.Source.Run(ctx, &pb.RunRequest{Listeners: s.listeners})
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
