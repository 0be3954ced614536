package core

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/listen"
	"github.com/veneurd/veneurd/core/pluginhost"
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
	cfg      *config.Config
	log      hclog.Logger
	launcher *pluginhost.Launcher
	pool     *listen.Pool
	agg      *aggregate.Aggregator
	stats    *Stats

	sources []*source
	sinks   []*sink

	flushes sync.WaitGroup
}

type source struct {
	*pluginhost.Source
	keys []listen.Key
}

type sink struct {
	*pluginhost.Sink
	timeout time.Duration
}

// New prepares a Server for cfg; nothing runs before Start.
func New(cfg *config.Config, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Self == "" {
		opts.Self, _ = os.Executable()
	}
	return &Server{
		cfg:      cfg,
		log:      opts.Logger,
		launcher: &pluginhost.Launcher{Self: opts.Self, Logger: opts.Logger},
		pool:     listen.NewPool(),
		agg:      aggregate.New(aggregationConfig(cfg)),
		stats:    newStats(),
	}
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
// source reads has nowhere to go. On error, whatever started is stopped.
func (s *Server) Start() error {
	for _, b := range s.cfg.Sinks {
		ps, err := pluginhost.StartSink(s.launcher, specOf(b), s.configureRequest(b))
		if err != nil {
			s.stopAll(time.Second)
			return fmt.Errorf("%s: %w", b.Address(), err)
		}
		s.sinks = append(s.sinks, &sink{Sink: ps, timeout: b.FlushTimeout})
	}
	for _, b := range s.cfg.Sources {
		if err := s.startSource(b); err != nil {
			s.stopAll(time.Second)
			return fmt.Errorf("%s: %w", b.Address(), err)
		}
	}
	s.log.Info("pipeline started", "config_hash", s.cfg.Hash, "sources", len(s.sources), "sinks", len(s.sinks),
		"interval", s.cfg.Daemon.Interval)
	return nil
}

// specOf says how to run a block's plugin.
func specOf(b *config.PluginBlock) pluginhost.Spec {
	return pluginhost.Spec{Type: b.Type, Address: b.Address(), Path: b.Info.Path, SHA256: b.Info.SHA256}
}

func (s *Server) configureRequest(b *config.PluginBlock) *pb.ConfigureRequest {
	return &pb.ConfigureRequest{ConfigJson: b.JSON, Address: b.Address(), Hostname: s.cfg.Daemon.Hostname}
}

// ListenAttribute is the attribute of a source block that lists the sockets
// veneurd opens and hands to the source.
const ListenAttribute = "listen"

// ReadersAttribute is the attribute of a source block that says how many
// SO_REUSEPORT sockets veneurd opens for each datagram listen address.
const ReadersAttribute = "readers"

// listenKeys returns the sockets a source block asks for.
func listenKeys(b *config.PluginBlock) ([]listen.Key, error) {
	addrs, err := listenAddrs(b)
	if err != nil {
		return nil, err
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
		if listen.Datagram(a) && strings.HasPrefix(a, "udp") {
			n = max(readers, 1)
		}
		for i := range n {
			keys = append(keys, listen.Key{Address: a, Index: i})
		}
	}
	return keys, nil
}

// listenAddrs returns a source block's listen addresses.
func listenAddrs(b *config.PluginBlock) ([]string, error) {
	v, ok := b.Values[ListenAttribute]
	if !ok || v.IsNull() {
		return nil, nil
	}
	var addrs []string
	if err := gocty.FromCtyValue(v, &addrs); err != nil {
		return nil, fmt.Errorf("attribute %s: %w", ListenAttribute, err)
	}
	return addrs, nil
}

func (s *Server) startSource(b *config.PluginBlock) error {
	keys, err := listenKeys(b)
	if err != nil {
		return err
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
			return err
		}
		files = append(files, f)
		addrs[i] = k.Address
	}
	spec := specOf(b)
	spec.Files = files
	src, err := pluginhost.StartSource(s.launcher, spec,
		addrs, s.configureRequest(b), s.ingest)
	if err != nil {
		release()
		return err
	}
	s.sources = append(s.sources, &source{Source: src, keys: keys})
	return nil
}

// ingest takes one batch from a source.
func (s *Server) ingest(b *pb.Batch) {
	if err := s.agg.IngestFrame(b.Samples); err != nil {
		s.log.Error("dropping the rest of a corrupt sample frame", "error", err)
		s.stats.packetError("metric", "corrupt_frame", 1)
	}
	for _, e := range b.Events {
		s.agg.AddEvent(sdk.EventFromProto(e))
	}
	for _, c := range b.ServiceChecks {
		s.agg.AddServiceCheck(sdk.ServiceCheckFromProto(c))
	}
	for _, e := range b.Errors {
		s.stats.packetError(e.PacketType, e.Reason, e.Count)
	}
}

// Run flushes on wall-clock multiples of the interval until ctx ends, then
// stops the pipeline: sources stop reading and drain, a final flush goes to
// every sink, and the sinks stop, all within the shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	interval := s.cfg.Daemon.Interval
	for {
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
	timeout := s.cfg.Daemon.ShutdownTimeout
	deadline := time.Now().Add(timeout)
	s.log.Info("shutting down", "timeout", timeout)
	for _, src := range s.sources {
		src.Stop(time.Until(deadline))
		for _, k := range src.keys {
			s.pool.Release(k)
		}
	}
	s.sources = nil
	s.flush(time.Now(), true)
	s.flushes.Wait()
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()
	for _, sink := range s.sinks {
		sink.Stop(ctx)
	}
	s.sinks = nil
	s.log.Info("stopped")
}

// flush sends the interval that ended at t to every sink. Sinks are flushed
// concurrently, each within its flush_timeout (the interval by default), and
// the caller does not wait unless wait is set: a slow sink delays neither the
// others nor the next interval.
func (s *Server) flush(t time.Time, wait bool) {
	start := time.Now()
	f := s.agg.Flush(t.Unix())
	batch := pluginhost.EncodeFlush(f)
	s.log.Debug("flush", "points", len(f.Points), "events", len(f.Events),
		"aggregate_duration", time.Since(start))
	var wg sync.WaitGroup
	for _, sink := range s.sinks {
		wg.Add(1)
		s.flushes.Add(1)
		go func() {
			defer wg.Done()
			defer s.flushes.Done()
			timeout := sink.timeout
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := sink.Flush(ctx, batch); err != nil {
				if ctx.Err() != nil {
					err = fmt.Errorf("flush timed out after %s: %w", timeout, err)
				}
				s.log.Error("sink flush failed", "sink", sink.Address(), "points", batch.Points, "error", err)
			}
		}()
	}
	if wait {
		wg.Wait()
	}
}

// stopAll stops whatever Start managed to launch.
func (s *Server) stopAll(timeout time.Duration) {
	for _, src := range s.sources {
		src.Stop(timeout)
		for _, k := range src.keys {
			s.pool.Release(k)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, sink := range s.sinks {
		sink.Stop(ctx)
	}
	s.sources, s.sinks = nil, nil
}
