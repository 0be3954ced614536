// Package otlp is the source plugin for OpenTelemetry metrics: an OTLP
// receiver taking OTLP/gRPC and OTLP/HTTP (protobuf and JSON) on the same
// sockets, which veneurd opened and handed over. Sums become counters (the
// increase since the last point, for cumulative ones), gauges gauges,
// histograms weighted samples in the interval's digest, summaries gauges
// and counters. README.md has the mapping.
package otlp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/veneurd/veneurd/sdk"
)

// Version is the source's version, shown by `veneurd plugins`.
const Version = "1.0.0"

// StreamsExpired counts the cumulative streams forgotten for stream_expiry.
const StreamsExpired = "veneur.otlp.streams_expired_total"

// stopGrace is how long requests in progress may take to finish when the
// source stops.
const stopGrace = 2 * time.Second

// Source receives OTLP metrics.
type Source struct {
	cfg Config
	log hclog.Logger
}

// New returns an otlp source.
func New() *Source { return &Source{log: hclog.NewNullLogger()} }

// Version implements sdk.Versioned.
func (s *Source) Version() string { return Version }

// Config returns the defaults.
// ReadsSockets implements sdk.SocketReader: the source reads nothing but
// its listen sockets, so a block of it without one is refused.
func (s *Source) ReadsSockets() bool { return true }

func (s *Source) Config() any { return defaultConfig() }

// Configure checks and stores cfg.
func (s *Source) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := cfg.(*Config)
	if err := c.validate(); err != nil {
		return err
	}
	s.cfg = *c
	if env.Logger != nil {
		s.log = env.Logger
	}
	return nil
}

// Run serves every listener until ctx ends.
func (s *Source) Run(ctx context.Context, listeners []sdk.Listener, out sdk.Output) error {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, l := range listeners {
		a, err := sdk.ParseAddress(l.Address)
		if err != nil {
			closeAll()
			return err
		}
		if a.IsDatagram() {
			closeAll()
			return fmt.Errorf("%s: OTLP runs over streams: listen on tcp:// (or unix://) addresses, not %s://", l.Address, a.Network)
		}
		ln, err := net.FileListener(l.File)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s: %w", l.Address, err)
		}
		if s.cfg.tlsConfig != nil && strings.HasPrefix(a.Network, "tcp") {
			ln = tls.NewListener(ln, s.cfg.tlsConfig)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		// Returning would end the process, which veneurd would restart
		// for nothing.
		s.log.Warn("no listen addresses: this source reads nothing")
		<-ctx.Done()
		return nil
	}
	srv := newServer(&s.cfg, out, uint64(time.Now().UnixNano()), s.log)
	return srv.run(ctx, lns)
}

// server is one Run's state.
type server struct {
	cfg     *Config
	log     hclog.Logger
	out     sdk.Output
	streams *streams
	started uint64
	limits  limits
	pool    *pool
	procs   *procs
	// misc takes the counts made outside a request's worker.
	misc map[string]*lockedWriter

	// Handlers in progress; once closing is set, none starts.
	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
}

// enter admits a request's handler, unless the source is stopping; leave
// must follow.
func (s *server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

func (s *server) leave() { s.inflight.Done() }

func newServer(cfg *Config, out sdk.Output, started uint64, log hclog.Logger) *server {
	s := &server{cfg: cfg, log: log, out: out, started: started,
		streams: newStreams(cfg.MaxStreams), limits: limits{maxPoints: cfg.MaxRequestDataPoints},
		misc: map[string]*lockedWriter{}, procs: newProcs()}
	for _, p := range []string{"grpc", "http", "tcp"} {
		s.misc[p] = &lockedWriter{w: out.Writer(p)}
	}
	s.pool = newPool(cfg.MaxConcurrentRequests, func() *worker {
		return &worker{conv: newConverter(cfg.IncludeResourceAttributes, s.streams, started),
			writers: map[string]sdk.Writer{}, dec: &decoder{}}
	})
	return s
}

func (s *server) run(ctx context.Context, lns []net.Listener) error {
	addr := lns[0].Addr()
	grpcL, httpL := newMemListener(addr), newMemListener(addr)
	gs := grpc.NewServer(
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(s.cfg.MaxRequestBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.idleTimeout}),
		grpc.WaitForHandlers(true),
	)
	gs.RegisterService(grpcService(s), nil)
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: sniffTimeout,
		IdleTimeout:       s.cfg.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(lns)+2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := gs.Serve(grpcL); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errs <- fmt.Errorf("grpc: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := hs.Serve(httpL); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errs <- fmt.Errorf("http: %w", err)
		}
	}()
	muxes := make([]*mux, len(lns))
	var mwg sync.WaitGroup
	for i, ln := range lns {
		m := &mux{ln: ln, grpc: grpcL, http: httpL, max: int64(s.cfg.MaxConnections),
			sniffing: map[net.Conn]struct{}{},
			refused:  func() { s.countAlone("tcp", ReasonConnections) },
			handshakeFailed: func(err error) {
				s.log.Debug("tls handshake refused", "listener", ln.Addr(), "error", err)
				s.countAlone("tcp", ReasonTLSHandshake)
			}}
		muxes[i] = m
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			if err := m.serve(); err != nil {
				errs <- fmt.Errorf("%s: %w", ln.Addr(), err)
			}
		}()
	}
	stopSweep := make(chan struct{})
	swept := make(chan struct{})
	go func() { defer close(swept); s.sweep(stopSweep) }()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stopSweep:
				return
			case now := <-t.C:
				if n := s.procs.tick(now.Sub(last)); n > 0 {
					s.log.Debug("processors adapted to the load", "gomaxprocs", n)
				}
				last = now
			}
		}
	}()

	<-ctx.Done()
	for _, m := range muxes {
		m.stop()
	}
	mwg.Wait()
	// Requests in progress finish, within stopGrace; then connections are
	// closed.
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	grace, cancel := context.WithTimeout(context.Background(), stopGrace)
	if hs.Shutdown(grace) != nil {
		hs.Close()
	}
	select {
	case <-stopped:
	case <-grace.Done():
		gs.Stop()
		<-stopped
	}
	cancel()
	grpcL.Close()
	httpL.Close()
	wg.Wait()
	// Handlers that outlived their connection (net/http does not wait for
	// them once closed) finish before Run returns: they write.
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.inflight.Wait()
	close(stopSweep)
	<-swept
	for _, w := range s.misc {
		w.flush()
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// sweep forgets streams not seen for stream_expiry, until stop.
func (s *server) sweep(stop chan struct{}) {
	every := min(max(s.cfg.streamExpiry/4, 100*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if n := s.streams.expire(now.Add(-s.cfg.streamExpiry).UnixNano()); n > 0 {
				s.log.Debug("forgot cumulative streams not seen for stream_expiry", "streams", n, "left", s.streams.len())
				w := s.misc["tcp"]
				w.mu.Lock()
				w.w.Metric(sdk.Counter, sdk.ScopeLocal, []byte(StreamsExpired), []byte("veneurd:self"), float64(n), 1)
				w.w.Flush()
				w.mu.Unlock()
			}
		}
	}
}

// process decodes a request's body, writes its samples and returns the
// answer; an error is a request refused whole, counted.
func (s *server) process(wk *worker, protocol string, body []byte, isJSON bool) (*colmetricspb.ExportMetricsServiceResponse, error) {
	start := time.Now()
	defer func() { s.procs.add(time.Since(start)) }()
	var req *colmetricspb.ExportMetricsServiceRequest
	var err error
	if isJSON {
		req = &colmetricspb.ExportMetricsServiceRequest{}
		err = decodeJSON(body, s.limits, req)
	} else {
		req, err = wk.dec.decode(body, s.limits)
	}
	if err != nil {
		s.count(wk, protocol, reasonOf(err))
		if s.log.IsDebug() {
			s.log.Debug("request refused", "protocol", protocol, "reason", reasonOf(err), "error", err)
		}
		return nil, err
	}
	w := wk.writer(s.out, protocol)
	rejected, msg := wk.conv.export(req, w, time.Now().UnixNano())
	w.Flush()
	if wk.dec.size() > keepObjects { // a rare huge request: let its messages go
		wk.dec = &decoder{}
	}
	if rejected > 0 && s.log.IsDebug() {
		s.log.Debug("data points rejected", "protocol", protocol, "rejected", rejected, "first", msg)
	}
	return response(rejected, msg), nil
}

// count counts a request refused for reason, on the worker's writer.
func (s *server) count(wk *worker, protocol, reason string) {
	w := wk.writer(s.out, protocol)
	w.Error(PacketType, reason)
	w.Flush()
}

// countAlone counts a refusal made without a worker.
func (s *server) countAlone(protocol, reason string) {
	lw := s.misc[protocol]
	lw.mu.Lock()
	if reason == ReasonConnections || reason == ReasonTLSHandshake {
		lw.w.Error("connection", reason)
	} else {
		lw.w.Error(PacketType, reason)
	}
	lw.w.Flush()
	lw.mu.Unlock()
}

// lockedWriter is a Writer shared by goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  sdk.Writer
}

func (l *lockedWriter) flush() {
	l.mu.Lock()
	l.w.Flush()
	l.mu.Unlock()
}

// worker is what one request is decoded and written with: its Writers, a
// decoder and a converter, with their buffers, reused from request to
// request.
type worker struct {
	conv    *converter
	writers map[string]sdk.Writer
	dec     *decoder
}

func (wk *worker) writer(out sdk.Output, protocol string) sdk.Writer {
	w, ok := wk.writers[protocol]
	if !ok {
		w = out.Writer(protocol)
		wk.writers[protocol] = w
	}
	return w
}

// pool hands out workers, at most max at once: a request waits for one
// once it has read its body.
type pool struct {
	sem  chan struct{}
	free chan *worker
	make func() *worker
}

func newPool(max int, make_ func() *worker) *pool {
	return &pool{sem: make(chan struct{}, max), free: make(chan *worker, max), make: make_}
}

func (p *pool) acquire(ctx context.Context) (*worker, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case w := <-p.free:
		return w, nil
	default:
		return p.make(), nil
	}
}

func (p *pool) release(w *worker) {
	p.free <- w
	<-p.sem
}
