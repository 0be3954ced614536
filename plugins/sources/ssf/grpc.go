package ssf

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/plugins/sources/ssf/ssfpb"
	"github.com/veneurd/veneurd/sdk"
)

// stopGrace is how long a stopping gRPC server waits for the calls in
// progress before it cuts them.
const stopGrace = 2 * time.Second

// idleWake is how often the gRPC side flushes Writers that hold samples no
// call has flushed.
const idleWake = 100 * time.Millisecond

// serveGRPC serves Veneur's SSF gRPC service, ssf.SSFGRPC/SendSpan, which
// veneur-emit -ssf -grpc calls, and gRPC's health service, on a TCP
// listener.
func (s *Source) serveGRPC(ctx context.Context, l sdk.Listener, out sdk.Output) error {
	ln, err := net.FileListener(l.File)
	if err != nil {
		return err
	}
	g := &grpcSpans{handlers: make([]*lockedHandler, runtime.GOMAXPROCS(0))}
	for i := range g.handlers {
		g.handlers[i] = &lockedHandler{handler: newHandler(&s.cfg, out.Writer(protoGRPC), s.log)}
	}
	opts := []grpc.ServerOption{grpc.ForceServerCodecV2(spanCodec{}), grpc.MaxRecvMsgSize(s.cfg.MaxSpanSize)}
	if s.cfg.tlsConfig != nil {
		var mu sync.Mutex
		w := out.Writer(protoGRPC) // for the refusals, which come from any goroutine
		opts = append(opts, grpc.Creds(countedTLS{TransportCredentials: credentials.NewTLS(s.cfg.tlsConfig),
			failed: func(err error) {
				s.log.Debug("tls handshake refused", "listener", l.Address, "error", err)
				mu.Lock()
				defer mu.Unlock()
				w.Error("connection", "tls_handshake")
				w.Flush()
			}}))
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: ssfpb.SSFGRPC_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "SendSpan", Handler: g.sendSpan}},
		Metadata:    ssfpb.SSFGRPC_ServiceDesc.Metadata,
	}, g)
	hs := health.NewServer()
	hs.SetServingStatus("veneur", healthpb.HealthCheckResponse_SERVING) // the service name Veneur reports
	healthpb.RegisterHealthServer(srv, hs)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tick := time.NewTicker(idleWake)
	defer tick.Stop()
serving:
	for {
		select {
		case err := <-served:
			g.flushAll()
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-tick.C:
			g.flushIdle()
		case <-ctx.Done():
			break serving
		}
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
		srv.Stop()
		<-stopped
	}
	<-served
	g.flushAll()
	return nil
}

// countedTLS is TLS whose refused handshakes are counted.
type countedTLS struct {
	credentials.TransportCredentials
	failed func(error)
}

func (c countedTLS) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.failed(err)
	}
	return nc, info, err
}

func (c countedTLS) Clone() credentials.TransportCredentials {
	return countedTLS{TransportCredentials: c.TransportCredentials.Clone(), failed: c.failed}
}

// grpcSpans serves SendSpan. Calls run concurrently and a Writer is for one
// goroutine at a time, so the service keeps a Writer per core, each behind
// a lock; a call takes the first free one.
type grpcSpans struct {
	handlers []*lockedHandler
	next     atomic.Uint32
}

type lockedHandler struct {
	sync.Mutex
	*handler
	pending bool // the Writer holds what it has not flushed
	flushed time.Time
}

var empty = &ssfpb.Empty{}

// sendSpan is the SendSpan method's handler: the request's bytes go to the
// decoder every transport shares.
func (g *grpcSpans) sendSpan(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	r := rawPool.Get().(*rawSpan)
	defer rawPool.Put(r)
	if err := dec(r); err != nil {
		return nil, err
	}
	h := g.take()
	reason := h.packet(r.b)
	now := time.Now()
	if !h.pending {
		h.pending, h.flushed = true, now
	} else if now.Sub(h.flushed) >= flushAfter {
		h.w.Flush()
		h.pending = false
	}
	h.Unlock()
	if reason != "" {
		return nil, status.Errorf(codes.InvalidArgument, "ssf: span rejected: %s", reason)
	}
	return empty, nil
}

// take locks and returns a free handler, or waits for one.
func (g *grpcSpans) take() *lockedHandler {
	n := uint32(len(g.handlers))
	first := g.next.Add(1)
	for i := range n {
		if h := g.handlers[(first+i)%n]; h.TryLock() {
			return h
		}
	}
	h := g.handlers[first%n]
	h.Lock()
	return h
}

// flushIdle flushes the Writers holding samples for longer than flushAfter.
func (g *grpcSpans) flushIdle() {
	now := time.Now()
	for _, h := range g.handlers {
		h.Lock()
		if h.pending && now.Sub(h.flushed) >= flushAfter {
			h.w.Flush()
			h.pending = false
		}
		h.Unlock()
	}
}

func (g *grpcSpans) flushAll() {
	for _, h := range g.handlers {
		h.Lock()
		h.w.Flush()
		h.pending = false
		h.Unlock()
	}
}

// rawSpan is a SendSpan request as its bytes.
type rawSpan struct{ b []byte }

var rawPool = sync.Pool{New: func() any { return new(rawSpan) }}

// spanCodec is gRPC's proto codec, except that it hands a SendSpan request
// over as its bytes: the span is decoded by the decoder UDP and UNIX spans
// go through, which accepts exactly what Veneur accepts, and allocates
// nothing.
type spanCodec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (spanCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (spanCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawSpan); ok {
		n := data.Len()
		r.b = slices.Grow(r.b[:0], n)[:n]
		data.CopyTo(r.b)
		if cap(r.b) > 1<<20 && n < 1<<16 {
			// Do not keep a large buffer in the pool for small spans.
			r.b = append([]byte(nil), r.b...)
		}
		return nil
	}
	if protoCodec == nil {
		return errors.New("ssf: no proto codec")
	}
	return protoCodec.Unmarshal(data, v)
}

func (spanCodec) Name() string { return proto.Name }
