package core

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"time"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/discovery"
	"github.com/veneurd/veneurd/core/forward"
)

// tier is the instance's place in a tier: the forwarder of a local or a
// proxy (and the Consul watch that finds its members), and the receiver of
// a global or a proxy, each started from its block.
type tier struct {
	fwdCfg   *config.Forward
	fwd      *forward.Forwarder
	unwatch  context.CancelFunc // stops following Consul, if the members come from it
	recvCfg  *config.Receive
	recv     *forward.Server
	received func(records []byte) (int, error)
}

// startTier starts what cfg's forward and receive blocks ask for, keeping
// from old what has not changed; it returns the new tier and what of old to
// stop once the new one is in place.
func (s *Server) startTier(cfg *config.Config, old tier) (next, stale tier, err error) {
	next = old
	if !sameReceive(cfg.Receive, old.recvCfg) {
		stale.recv, stale.recvCfg = old.recv, old.recvCfg
		next.recv, next.recvCfg = nil, cfg.Receive
		if old.recv != nil && cfg.Receive != nil {
			// The same port may be asked for again: let it go first.
			old.recv.Stop(context.Background())
			stale.recv = nil
		}
		if cfg.Receive != nil {
			var opts []grpc.ServerOption
			if t := cfg.Receive.TLS; t != nil {
				tc, err := forward.ServerTLS(t.CertFile, t.KeyFile, t.ClientCAFile)
				if err != nil {
					return old, tier{}, fmt.Errorf("receive: %w", err)
				}
				opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
			}
			l, err := net.Listen("tcp", cfg.Receive.GRPCAddress)
			if err != nil {
				return old, tier{}, fmt.Errorf("receive: %w", err)
			}
			next.recv = forward.NewReceiver(s.receive, s.tel).Serve(l, opts...)
			s.log.Info("receiving forwarded state", "address", l.Addr().String())
		}
	}
	if !sameForward(cfg.Forward, old.fwdCfg) {
		stale.fwd, stale.fwdCfg, stale.unwatch = old.fwd, old.fwdCfg, old.unwatch
		next.fwd, next.fwdCfg, next.unwatch = nil, cfg.Forward, nil
		if cfg.Forward != nil {
			members, unwatch, err := s.members(cfg.Forward)
			if err != nil {
				if next.recv != old.recv && next.recv != nil {
					next.recv.Stop(context.Background())
				}
				return old, tier{}, fmt.Errorf("forward: %w", err)
			}
			fc := forward.Config{Members: members, Hostname: cfg.Daemon.Hostname, Protocol: cfg.Forward.Protocol,
				MaxBufferedIntervals: cfg.Forward.MaxBufferedIntervals}
			if cfg.Forward.TLS != nil {
				tc, err := cfg.Forward.TLS.Config()
				if err != nil {
					return old, tier{}, fmt.Errorf("forward: %w", err)
				}
				fc.DialOptions = append(fc.DialOptions, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
			}
			f, err := forward.New(fc, s.tel, s.log.Named("forward"))
			if err != nil {
				if next.recv != old.recv && next.recv != nil {
					next.recv.Stop(context.Background())
				}
				unwatch()
				return old, tier{}, err
			}
			next.fwd, next.unwatch = f, unwatch
			s.log.Info("forwarding to the tier above", "members", f.Members(), "protocol", cfg.Forward.Protocol)
		}
	}
	if next.fwd != nil {
		s.agg.SetForward(next.fwd.Add)
	} else {
		s.agg.SetForward(nil)
	}
	next.received = s.agg.Import
	if cfg.Receive != nil && !cfg.Receive.Aggregate && next.fwd != nil {
		// A proxy: each received series goes on at once to the member
		// every other sender chooses for it, as the state of the
		// interval in progress.
		fwd, interval := next.fwd, cfg.Daemon.Interval
		next.received = func(records []byte) (int, error) {
			return fwd.Route(time.Now().Truncate(interval).Add(interval).Unix(), records)
		}
	}
	return next, stale, nil
}

// receive merges or routes onward, as the receive block says, a frame of
// records the receiver took.
func (s *Server) receive(records []byte) (int, error) {
	s.mu.Lock()
	received := s.tier.received
	s.mu.Unlock()
	if received == nil { // between a stop and the receiver's
		return s.agg.Import(records)
	}
	return received(records)
}

// members returns the membership a forward block names, and what stops
// following it.
func (s *Server) members(f *config.Forward) (discovery.Members, context.CancelFunc, error) {
	switch {
	case f.Consul != nil:
		c, err := discovery.NewConsul(discovery.ConsulConfig{Address: f.Consul.Address, Service: f.Consul.Service,
			Tag: f.Consul.Tag}, s.log.Named("consul"))
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		go c.Run(ctx)
		// The first answer makes the first ring; until then (or if Consul
		// is down at start) the state waits in the forwarder's buffer.
		select {
		case <-c.Ready():
		case <-time.After(consulFirstWait):
			s.log.Warn("consul has not answered yet: forwarding starts once it does", "service", f.Consul.Service)
		}
		return c, cancel, nil
	case len(f.Members) > 0:
		return discovery.NewStatic(f.Members), func() {}, nil
	}
	return discovery.NewStatic([]string{f.Address}), func() {}, nil
}

// consulFirstWait is how long a start or a reload waits for Consul's first
// answer.
const consulFirstWait = 5 * time.Second

func sameReceive(a, b *config.Receive) bool {
	return (a == nil) == (b == nil) && (a == nil || (a.GRPCAddress == b.GRPCAddress && reflect.DeepEqual(a.TLS, b.TLS)))
}

func sameForward(a, b *config.Forward) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.DeclRange, y.DeclRange = hcl.Range{}, hcl.Range{}
	return reflect.DeepEqual(x, y)
}

// stop stops what t holds: the receiver at once, the forwarder once it has
// sent what it holds, within timeout.
func (t tier) stop(timeout time.Duration) {
	if t.recv != nil {
		t.recv.Stop(context.Background())
	}
	if t.fwd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		t.fwd.Stop(ctx)
		t.unwatch()
	}
}

// endInterval hands the forwarder, if any, the interval that ended at ts.
func (s *Server) endInterval(ts int64) {
	s.mu.Lock()
	fwd := s.tier.fwd
	s.mu.Unlock()
	if fwd != nil {
		fwd.EndInterval(ts)
	}
}
