package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/listen"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Options are what a Server needs besides its config.
type Options struct {
	// Self is the veneurd binary, re-executed to serve builtin plugins.
	Self   string
	Logger hclog.Logger
	// Plugins starts plugin processes; by default, with pluginhost.
	Plugins Plugins
}

// Server is a running pipeline.
type Server struct {
	log     hclog.Logger
	plugins Plugins
	pool    *listen.Pool
	agg     *aggregate.Aggregator
	tel     *telemetry.Registry
	// pluginSeries bounds the self-metric series plugins' own counts make.
	pluginSeries pluginSeries

	mu         sync.Mutex // guards the fields below
	cfg        *config.Config
	sources    []*liveSource
	sinks      []*liveSink
	pendingAgg *aggregate.Config // applied after the next flush
	started    bool              // Start has launched every plugin
	stopping   bool              // shutdown has begun
	tier       tier              // forwarding and receiving
	drops      map[string]uint64 // kernel drops last seen, per listener

	// taps are the taps in effect; tapping counts them, so that a flush
	// with none looks no further.
	tapSet sync.Mutex // one tap starts or ends at a time
	tapMu  sync.Mutex // guards taps and tapPaused
	taps   []*Tap
	// tapPaused holds the sources whose taps' readers are all behind.
	tapPaused map[string]bool
	tapping   atomic.Int64

	reloadMu sync.Mutex // one Apply at a time
	flushes  sync.WaitGroup
	// flushCtx is the parent of every sink flush's context: shutdown cancels
	// it at its deadline, whatever a sink's flush_timeout.
	flushCtx      context.Context
	cancelFlushes context.CancelFunc

	startedAt time.Time
	rates     *rates // sampled while the pipeline runs
	// lastFlush is the end of the last flushed interval, Unix
	// nanoseconds, and flushPoints the points it emitted.
	lastFlush   atomic.Int64
	flushPoints atomic.Uint64

	processed     telemetry.Counter
	seriesLimited telemetry.Counter
	flushDuration telemetry.Gauge
	flushTotal    telemetry.Gauge
	received      sync.Map // protocol -> telemetry.Counter
}

// liveSource is a source of the running pipeline: its process, its block
// and the sockets it holds.
type liveSource struct {
	SourceProcess
	block  *config.PluginBlock
	keys   []listen.Key
	counts *sourceCounts
	// lateCut is the last cut the source did not hand over in time, nil
	// once one is.
	lateCut atomic.Pointer[pluginhost.Fault]
}

// sourceCounts are what a source's batches counted, for its status.
type sourceCounts struct {
	tag                                                     string // source:ADDRESS, with which the source's own counts are kept
	received, processed, errors, droppedByRule, seriesLimit atomic.Uint64

	mu sync.Mutex
	// limited are the names that hit a series limit since the last flush,
	// lastLimited those of the interval before it.
	limited, lastLimited []string
}

// endInterval returns the names that hit a limit in the interval that
// ended, and keeps them for the status until the next one ends.
func (c *sourceCounts) endInterval() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastLimited, c.limited = c.limited, nil
	return c.lastLimited
}

// lastLimitedNames returns the names that hit a limit in the last
// interval.
func (c *sourceCounts) lastLimitedNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastLimited
}

// liveSink is a sink of the running pipeline: its process, its block, the
// flushes it is in and its self-metrics.
type liveSink struct {
	SinkProcess
	block    *config.PluginBlock
	inflight sync.WaitGroup
	flushed  telemetry.Counter
	errors   telemetry.Counter
	duration telemetry.Counter
	// lastErr is why the sink's last flush failed, nil once a flush
	// succeeds.
	lastErr atomic.Pointer[flushError]
	// lastPoints and lastNanos are the last flush's points and delivery
	// time.
	lastPoints, lastNanos atomic.Uint64

	heldMu sync.Mutex
	held   []*pluginhost.FlushBatch // flushes its process was down for, oldest first
}

// maxHeld is how many flushes a sink whose process is down holds for its
// return; past that the oldest is dropped.
const maxHeld = 4

// hold keeps flushes the sink's process was down for, to deliver before
// the next one; it returns how many of the oldest it had to drop.
func (k *liveSink) hold(batches ...*pluginhost.FlushBatch) (dropped int) {
	k.heldMu.Lock()
	defer k.heldMu.Unlock()
	k.held = append(k.held, batches...)
	if n := len(k.held) - maxHeld; n > 0 {
		k.held, dropped = append(k.held[:0], k.held[n:]...), n
	}
	return dropped
}

// takeHeld returns the flushes held, and holds none.
func (k *liveSink) takeHeld() []*pluginhost.FlushBatch {
	k.heldMu.Lock()
	defer k.heldMu.Unlock()
	held := k.held
	k.held = nil
	return held
}

// flushError is why a sink's flush failed, as Health reports it, and when.
type flushError struct {
	msg string
	at  time.Time
}

// maxFlushErrorLen bounds the error Health reports for a sink.
const maxFlushErrorLen = 200

// newFlushError keeps err's text, cut to maxFlushErrorLen bytes.
func newFlushError(err error) *flushError {
	msg := err.Error()
	if len(msg) > maxFlushErrorLen {
		msg = strings.ToValidUTF8(msg[:maxFlushErrorLen], "") + "..."
	}
	return &flushError{msg: msg, at: time.Now()}
}

// New prepares a Server for cfg; nothing runs before Start.
func New(cfg *config.Config, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Self == "" {
		opts.Self, _ = os.Executable()
	}
	tel := telemetry.New()
	s := &Server{
		cfg:           cfg,
		log:           opts.Logger,
		pool:          listen.NewPool(),
		agg:           aggregate.New(aggregationConfig(cfg)),
		tel:           tel,
		drops:         map[string]uint64{},
		startedAt:     time.Now(),
		tapPaused:     map[string]bool{},
		rates:         newRates(),
		processed:     tel.Counter(telemetry.MetricsProcessed),
		seriesLimited: tel.Counter(telemetry.MetricsDropped, "reason:"+telemetry.ReasonSeriesLimit),
		flushDuration: tel.Gauge(telemetry.FlushDuration),
		flushTotal:    tel.Gauge(telemetry.FlushTotalDuration),
	}
	s.flushCtx, s.cancelFlushes = context.WithCancel(context.Background())
	s.agg.SetMaxSeries(cfg.Limits.MaxSeries)
	s.plugins = opts.Plugins
	if s.plugins == nil {
		s.plugins = processes{&pluginhost.Launcher{Self: opts.Self, Logger: opts.Logger, OnRestart: func(addr string) {
			tel.Counter(telemetry.PluginRestarts, "plugin:"+addr).Inc()
		}}}
	}
	var mem runtime.MemStats
	var memMu sync.Mutex
	readMem := func(f func(*runtime.MemStats) float64) func() float64 {
		return func() float64 {
			memMu.Lock()
			defer memMu.Unlock()
			runtime.ReadMemStats(&mem)
			return f(&mem)
		}
	}
	tel.GaugeFunc(telemetry.GCNumber, readMem(func(m *runtime.MemStats) float64 { return float64(m.NumGC) }))
	tel.GaugeFunc(telemetry.HeapAllocBytes, readMem(func(m *runtime.MemStats) float64 { return float64(m.HeapAlloc) }))
	return s
}

// Telemetry returns the server's self-metrics.
func (s *Server) Telemetry() *telemetry.Registry { return s.tel }

// Config returns the config in effect.
func (s *Server) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func aggregationConfig(cfg *config.Config) aggregate.Config {
	return aggregate.Config{
		Percentiles:  cfg.Aggregation.Percentiles,
		Aggregates:   aggregate.ParseAggregates(cfg.Aggregation.Aggregates),
		Compression:  cfg.Aggregation.TDigestCompression,
		HLLPrecision: uint8(cfg.Aggregation.HLLPrecision),
		Hostname:     cfg.Daemon.Hostname,
		ExtendTags:   cfg.Aggregation.ExtendTags,
	}
}

// Start opens sockets and launches plugins: sinks first, so that nothing a
// source reads has nowhere to go. On error, whatever started is stopped. A
// reload that arrives meanwhile waits for it.
func (s *Server) Start() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg := s.Config()
	t, _, err := s.startTier(cfg, tier{})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tier = t
	s.mu.Unlock()
	for _, b := range cfg.Sinks {
		k, err := s.startSink(b)
		if err != nil {
			s.stopAll(time.Second)
			return err
		}
		s.mu.Lock()
		s.sinks = append(s.sinks, k)
		s.mu.Unlock()
	}
	for _, b := range cfg.Sources {
		src, err := s.startSource(b)
		if err != nil {
			s.stopAll(time.Second)
			return err
		}
		s.mu.Lock()
		s.sources = append(s.sources, src)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	go s.rates.run(s.rateTotals)
	s.log.Info("pipeline started", "config_hash", cfg.Hash, "sources", len(s.sources), "sinks", len(s.sinks),
		"interval", cfg.Daemon.Interval)
	return nil
}

func (s *Server) startSink(b *config.PluginBlock) (*liveSink, error) {
	ps, err := s.plugins.StartSink(b, s.configureRequest(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Address(), err)
	}
	tag := "sink:" + b.Address()
	return &liveSink{
		SinkProcess: ps, block: b,
		flushed:  s.tel.Counter(telemetry.SinkMetricsFlushed, tag),
		errors:   s.tel.Counter(telemetry.SinkFlushErrors, tag),
		duration: s.tel.Counter(telemetry.SinkFlushDuration, tag),
	}, nil
}

func (s *Server) configureRequest(b *config.PluginBlock) *pb.ConfigureRequest {
	return &pb.ConfigureRequest{ConfigJson: b.JSON, Address: b.Address(), Hostname: s.Config().Daemon.Hostname}
}

// listenKeys returns the sockets a source block asks for: one per address,
// and Readers per UDP address.
func listenKeys(b *config.PluginBlock) []listen.Key {
	var keys []listen.Key
	for _, a := range b.Listen {
		n := 1
		if strings.HasPrefix(a.Network, "udp") {
			n = max(b.Readers, 1)
		}
		for i := range n {
			keys = append(keys, listen.Key{Address: a.String(), Index: i})
		}
	}
	return keys
}

// startSource acquires a source's sockets and launches it. The sockets may
// already be open (held by the source it replaces): the new process then
// reads them alongside the old one until the old one stops.
func (s *Server) startSource(b *config.PluginBlock) (*liveSource, error) {
	keys := listenKeys(b)
	var files []*os.File
	addrs := make([]string, len(keys))
	release := func() {
		for _, k := range keys[:len(files)] {
			s.pool.Release(k)
		}
	}
	for i, k := range keys {
		f, err := s.pool.Acquire(k)
		if err != nil {
			release()
			return nil, fmt.Errorf("%s: %w", b.Address(), err)
		}
		files = append(files, f)
		addrs[i] = k.Address
	}
	addr := b.Address()
	counts := &sourceCounts{tag: "source:" + addr}
	h := pluginhost.SourceHandlers{Batch: func(batch *pb.Batch) {
		s.ingest(counts, batch)
		if len(batch.Tapped) > 0 || batch.TapLost > 0 {
			s.tapSamples(addr, batch)
		}
	}, State: s.mergeState}
	src, err := s.plugins.StartSource(b, files, addrs, s.configureRequest(b), s.stateParams(), h)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", b.Address(), err)
	}
	live := &liveSource{SourceProcess: src, block: b, keys: keys, counts: counts}
	if len(s.tapsOn(addr)) > 0 { // a reload's new process for a tapped block
		if err := s.tapSource(live); err != nil {
			s.log.Warn("cannot tap the source", "source", addr, "error", err)
		}
	}
	return live, nil
}

// stopSource stops a source (it drains what it read and hands over its
// state) and releases its sockets, closing those no other source holds.
func (s *Server) stopSource(src *liveSource, timeout time.Duration) {
	src.Stop(timeout)
	for _, k := range src.keys {
		s.pool.Release(k)
	}
}

// stopSink stops a sink once the flushes it is in have ended.
func (s *Server) stopSink(k *liveSink, ctx context.Context) {
	k.inflight.Wait()
	k.Stop(ctx)
}

// stateParams are the settings of the digests and sketches sources make in
// the interval that starts next: a reload's, if one is pending.
func (s *Server) stateParams() *pb.StateParams {
	s.mu.Lock()
	defer s.mu.Unlock()
	ac := aggregationConfig(s.cfg)
	if s.pendingAgg != nil {
		ac = *s.pendingAgg
	}
	return &pb.StateParams{Compression: ac.Compression, HllPrecision: uint32(ac.HLLPrecision)}
}

// ingest takes what a source sends besides its state: counts, events and
// service checks. The counts go to the self-metrics and, when the batch is
// a source's (c is not nil), to that source's own; what the source's plugin
// counted itself (sdk.Stats) goes to the self-metrics tagged with its
// address.
func (s *Server) ingest(c *sourceCounts, b *pb.Batch) {
	s.processed.Add(b.Processed)
	for _, e := range b.Events {
		s.agg.AddEvent(e)
	}
	for _, sc := range b.ServiceChecks {
		s.agg.AddServiceCheck(sdk.ServiceCheckFromProto(sc))
	}
	var errs, dropped uint64
	for _, e := range b.Errors {
		s.tel.Counter(telemetry.PacketErrors, "packet_type:"+e.PacketType, "reason:"+e.Reason).Add(e.Count)
		errs += e.Count
	}
	for _, d := range b.Dropped {
		s.tel.Counter(telemetry.MetricsDropped, "reason:dropped_by_rule", "rule:"+d.Rule).Add(d.Count)
		dropped += d.Count
	}
	if b.SeriesLimited > 0 {
		s.seriesLimited.Add(b.SeriesLimited)
	}
	if b.Received > 0 {
		rc, ok := s.received.Load(b.Protocol)
		if !ok {
			rc, _ = s.received.LoadOrStore(b.Protocol, s.tel.Counter(telemetry.ReceivedPerProtocol, "protocol:"+b.Protocol))
		}
		rc.(telemetry.Counter).Add(b.Received)
	}
	if c == nil {
		return
	}
	s.addPluginCounts(b.Counts, c.tag)
	c.received.Add(b.Received)
	c.processed.Add(b.Processed)
	c.errors.Add(errs)
	c.droppedByRule.Add(dropped)
	c.seriesLimit.Add(b.SeriesLimited)
	if len(b.LimitedNames) > 0 {
		c.mu.Lock()
		c.limited = append(c.limited, b.LimitedNames...)
		c.mu.Unlock()
	}
}

// Run flushes on wall-clock multiples of the interval until ctx ends, then
// stops the pipeline: sources stop reading and hand over their state, a
// final flush goes to every sink, and the sinks stop, all within the
// shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	for {
		interval := s.Config().Daemon.Interval
		next := time.Now().Truncate(interval).Add(interval)
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			s.shutdown()
			return nil
		case <-t.C:
			s.flush(next)
		}
	}
}

// shutdown stops the pipeline within the shutdown timeout. At the deadline,
// flushes still under way (the last one, and earlier ones of a slow sink)
// are cancelled whatever their sinks' flush_timeout, and what is still
// running is ended.
func (s *Server) shutdown() {
	s.reloadMu.Lock() // no reload while stopping
	defer s.reloadMu.Unlock()
	timeout := s.Config().Daemon.ShutdownTimeout
	deadline := time.Now().Add(timeout)
	s.log.Info("shutting down", "timeout", timeout)
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.rates.end()
	expire := time.AfterFunc(timeout, s.cancelFlushes)
	defer expire.Stop()
	s.mu.Lock()
	sources := s.sources
	s.sources = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Go(func() { s.stopSource(src, time.Until(deadline)) })
	}
	wg.Wait()
	s.mu.Lock()
	t := s.tier
	s.tier = tier{}
	s.mu.Unlock()
	// What was received joins the final flush; what that flush forwards
	// is sent within the deadline.
	if t.recv != nil {
		t.recv.Stop(context.Background())
	}
	fwd := t.fwd // the aggregator still hands it the final flush's records
	<-s.flush(time.Now())
	if fwd != nil {
		fwd.EndInterval(time.Now().Unix())
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fwd.Stop(ctx)
		cancel()
	}
	s.flushes.Wait()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	s.mu.Lock()
	sinks := s.sinks
	s.sinks = nil
	s.mu.Unlock()
	for _, k := range sinks {
		wg.Go(func() { s.stopSink(k, ctx) })
	}
	wg.Wait()
	s.log.Info("stopped")
}

// stopAll stops whatever Start managed to launch.
func (s *Server) stopAll(timeout time.Duration) {
	s.mu.Lock()
	sources, sinks, t := s.sources, s.sinks, s.tier
	s.sources, s.sinks, s.tier = nil, nil, tier{}
	s.mu.Unlock()
	s.rates.end()
	t.stop(timeout)
	for _, src := range sources {
		s.stopSource(src, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, k := range sinks {
		s.stopSink(k, ctx)
	}
}

// Ready reports why the daemon should not be sent traffic, or nil: nil
// once Start has bound every socket and configured and started every
// plugin, until shutdown begins. Health, the liveness check, stays
// separate: a daemon that is shutting down is alive but not ready.
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopping:
		return errors.New("shutting down")
	case !s.started:
		return errors.New("pipeline starting")
	}
	return nil
}

// Health reports why the pipeline is not healthy, or nil: every listener
// must be bound, every plugin process running, and every sink's last flush
// must have succeeded.
func (s *Server) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return errors.New("pipeline starting")
	}
	var down []string
	for _, src := range s.sources {
		if !src.Running() {
			down = append(down, src.Address())
		}
	}
	for _, k := range s.sinks {
		if !k.Running() {
			down = append(down, k.Address())
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("plugin not running: %s", strings.Join(down, ", "))
	}
	var failing []string
	for _, k := range s.sinks {
		if e := k.lastErr.Load(); e != nil {
			failing = append(failing, k.Address()+": "+e.msg)
		}
	}
	if len(failing) > 0 {
		return fmt.Errorf("sink's last flush failed: %s", strings.Join(failing, "; "))
	}
	open := map[string]bool{}
	for _, k := range s.pool.Keys() {
		open[k.Address] = true
	}
	for _, src := range s.sources {
		for _, k := range src.keys {
			if !open[k.Address] {
				return fmt.Errorf("listener %s is not bound", k.Address)
			}
		}
	}
	return nil
}
