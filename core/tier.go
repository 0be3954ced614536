package core

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/forward"
)

// tier is the instance's place in a tier: the forwarder of a local, and the
// receiver of a global, each started from its block.
type tier struct {
	fwdCfg  *config.Forward
	fwd     *forward.Forwarder
	recvCfg *config.Receive
	recv    *forward.Server
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
			next.recv = forward.NewReceiver(s.agg.Import, s.tel).Serve(l, opts...)
			s.log.Info("receiving forwarded state", "address", l.Addr().String())
		}
	}
	if !sameForward(cfg.Forward, old.fwdCfg) {
		stale.fwd, stale.fwdCfg = old.fwd, old.fwdCfg
		next.fwd, next.fwdCfg = nil, cfg.Forward
		if cfg.Forward != nil {
			fc := forward.Config{Address: cfg.Forward.Address, Hostname: cfg.Daemon.Hostname,
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
				return old, tier{}, err
			}
			next.fwd = f
			s.log.Info("forwarding to the global tier", "address", cfg.Forward.Address)
		}
	}
	if next.fwd != nil {
		s.agg.SetForward(next.fwd.Add)
	} else {
		s.agg.SetForward(nil)
	}
	return next, stale, nil
}

func sameReceive(a, b *config.Receive) bool {
	return (a == nil) == (b == nil) && (a == nil || (a.GRPCAddress == b.GRPCAddress && reflect.DeepEqual(a.TLS, b.TLS)))
}

func sameForward(a, b *config.Forward) bool {
	return (a == nil) == (b == nil) && (a == nil || (a.Address == b.Address &&
		a.MaxBufferedIntervals == b.MaxBufferedIntervals && reflect.DeepEqual(a.TLS, b.TLS)))
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
