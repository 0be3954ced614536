package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty/gocty"

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
}

// Server is a running pipeline.
type Server struct {
	log      hclog.Logger
	launcher *pluginhost.Launcher
	pool     *listen.Pool
	agg      *aggregate.Aggregator
	tel      *telemetry.Registry

	mu         sync.Mutex // guards the fields below
	cfg        *config.Config
	sources    []*source
	sinks      []*sink
	pendingAgg *aggregate.Config // applied after the next flush
	started    bool              // Start has launched every plugin
	drops      map[string]uint64 // kernel drops last seen, per listener

	reloadMu sync.Mutex // one Apply at a time
	flushes  sync.WaitGroup

	processed     telemetry.Counter
	flushDuration telemetry.Gauge
	received      sync.Map // protocol -> telemetry.Counter
}

type source struct {
	*pluginhost.Source
	block *config.PluginBlock
	keys  []listen.Key
}

type sink struct {
	*pluginhost.Sink
	block    *config.PluginBlock
	inflight sync.WaitGroup
	flushed  telemetry.Counter
	errors   telemetry.Counter
	duration telemetry.Counter
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
		processed:     tel.Counter(telemetry.MetricsProcessed),
		flushDuration: tel.Gauge(telemetry.FlushDuration),
	}
	s.launcher = &pluginhost.Launcher{Self: opts.Self, Logger: opts.Logger, OnRestart: func(addr string) {
		tel.Counter(telemetry.PluginRestarts, "plugin:"+addr).Inc()
	}}
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
	s.log.Info("pipeline started", "config_hash", cfg.Hash, "sources", len(s.sources), "sinks", len(s.sinks),
		"interval", cfg.Daemon.Interval)
	return nil
}

func (s *Server) startSink(b *config.PluginBlock) (*sink, error) {
	ps, err := pluginhost.StartSink(s.launcher, specOf(b), s.configureRequest(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Address(), err)
	}
	tag := "sink:" + b.Address()
	return &sink{
		Sink: ps, block: b,
		flushed:  s.tel.Counter(telemetry.SinkMetricsFlushed, tag),
		errors:   s.tel.Counter(telemetry.SinkFlushErrors, tag),
		duration: s.tel.Counter(telemetry.SinkFlushDuration, tag),
	}, nil
}

// specOf says how to run a block's plugin.
func specOf(b *config.PluginBlock) pluginhost.Spec {
	return pluginhost.Spec{Type: b.Type, Address: b.Address(), Path: b.Info.Path, SHA256: b.Info.SHA256}
}

func (s *Server) configureRequest(b *config.PluginBlock) *pb.ConfigureRequest {
	return &pb.ConfigureRequest{ConfigJson: b.JSON, Address: b.Address(), Hostname: s.Config().Daemon.Hostname}
}

// ListenAttribute is the attribute of a source block that lists the sockets
// veneurd opens and hands to the source.
const ListenAttribute = "listen"

// ReadersAttribute is the attribute of a source block that says how many
// SO_REUSEPORT sockets veneurd opens for each UDP listen address.
const ReadersAttribute = "readers"

// listenKeys returns the sockets a source block asks for.
func listenKeys(b *config.PluginBlock) ([]listen.Key, error) {
	var addrs []string
	if v, ok := b.Values[ListenAttribute]; ok && !v.IsNull() {
		if err := gocty.FromCtyValue(v, &addrs); err != nil {
			return nil, fmt.Errorf("attribute %s: %w", ListenAttribute, err)
		}
	}
	readers := 1
	if v, ok := b.Values[ReadersAttribute]; ok && !v.IsNull() {
		if err := gocty.FromCtyValue(v, &readers); err != nil {
			return nil, fmt.Errorf("attribute %s: %w", ReadersAttribute, err)
		}
	}
	var keys []listen.Key
	for _, a := range addrs {
		n := 1
		if strings.HasPrefix(a, "udp") {
			n = max(readers, 1)
		}
		for i := range n {
			keys = append(keys, listen.Key{Address: a, Index: i})
		}
	}
	return keys, nil
}

// startSource acquires a source's sockets and launches it. The sockets may
// already be open (held by the source it replaces): the new process then
// reads them alongside the old one until the old one stops.
func (s *Server) startSource(b *config.PluginBlock) (*source, error) {
	keys, err := listenKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Address(), err)
	}
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
	spec := specOf(b)
	spec.Files = files
	src, err := pluginhost.StartSource(s.launcher, spec, addrs, s.configureRequest(b), s.stateParams(), s.ingest)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", b.Address(), err)
	}
	return &source{Source: src, block: b, keys: keys}, nil
}

// stopSource stops a source (it drains what it read) and releases its
// sockets, closing those no other source holds.
func (s *Server) stopSource(src *source, timeout time.Duration) {
	src.Stop(timeout)
	for _, k := range src.keys {
		s.pool.Release(k)
	}
}

// stopSink stops a sink once the flushes it is in have ended.
func (s *Server) stopSink(k *sink, ctx context.Context) {
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

// ingest takes one batch from a source.
func (s *Server) ingest(b *pb.Batch) {
	if len(b.State) > 0 {
		if _, err := s.agg.MergeState(b.State); err != nil {
			s.log.Error("dropping the rest of corrupt state from a source", "error", err)
			s.tel.Counter(telemetry.PacketErrors, "packet_type:metric", "reason:corrupt_state").Inc()
		}
	}
	s.processed.Add(b.Processed)
	for _, e := range b.Events {
		s.agg.AddEvent(sdk.EventFromProto(e))
	}
	for _, c := range b.ServiceChecks {
		s.agg.AddServiceCheck(sdk.ServiceCheckFromProto(c))
	}
	for _, e := range b.Errors {
		s.tel.Counter(telemetry.PacketErrors, "packet_type:"+e.PacketType, "reason:"+e.Reason).Add(e.Count)
	}
	if b.Received > 0 {
		c, ok := s.received.Load(b.Protocol)
		if !ok {
			c, _ = s.received.LoadOrStore(b.Protocol, s.tel.Counter(telemetry.ReceivedPerProtocol, "protocol:"+b.Protocol))
		}
		c.(telemetry.Counter).Add(b.Received)
	}
}

// Run flushes on wall-clock multiples of the interval until ctx ends, then
// stops the pipeline: sources stop reading and drain, a final flush goes to
// every sink, and the sinks stop, all within the shutdown timeout.
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
			s.flush(next, false)
		}
	}
}

func (s *Server) shutdown() {
	s.reloadMu.Lock() // no reload while stopping
	defer s.reloadMu.Unlock()
	timeout := s.Config().Daemon.ShutdownTimeout
	deadline := time.Now().Add(timeout)
	s.log.Info("shutting down", "timeout", timeout)
	s.mu.Lock()
	sources := s.sources
	s.sources = nil
	s.mu.Unlock()
	for _, src := range sources {
		s.stopSource(src, time.Until(deadline))
	}
	s.flush(time.Now(), true)
	s.flushes.Wait()
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()
	s.mu.Lock()
	sinks := s.sinks
	s.sinks = nil
	s.mu.Unlock()
	for _, k := range sinks {
		s.stopSink(k, ctx)
	}
	s.log.Info("stopped")
}

// stopAll stops whatever Start managed to launch.
func (s *Server) stopAll(timeout time.Duration) {
	s.mu.Lock()
	sources, sinks := s.sources, s.sinks
	s.sources, s.sinks = nil, nil
	s.mu.Unlock()
	for _, src := range sources {
		s.stopSource(src, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, k := range sinks {
		s.stopSink(k, ctx)
	}
}

// Health reports why the pipeline is not healthy, or nil: every listener
// must be bound and every plugin process running.
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
