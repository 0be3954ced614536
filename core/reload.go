package core

import (
	"context"
	"time"

	"github.com/veneurd/veneurd/core/config"
)

// Apply changes the running pipeline to next, a config that loaded without
// errors. Everything new is started before anything changes: on an error the
// new processes are stopped and the running pipeline is left untouched.
//
// Blocks are matched by address and config hash: an unchanged source or sink
// keeps its process. A changed sink gets a new process that takes over at the
// next flush; the old one finishes the flush it is in, then stops. A changed
// source gets a new process on the same sockets (the pool hands the open
// sockets over, so packets queue in the kernel rather than being refused);
// both read until the old one has drained and stopped. Sockets no source
// holds any more are closed; new ones are opened. Aggregation settings apply
// from the next interval: the one in progress flushes whole.
func (s *Server) Apply(next *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	oldSinks, oldSources := s.sinks, s.sources
	s.mu.Unlock()

	keptSink := map[*liveSink]bool{}
	var sinks, startedSinks []*liveSink
	var sources, startedSources []*liveSource
	keptSource := map[*liveSource]bool{}
	rollback := func(err error) error {
		for _, src := range startedSources {
			s.stopSource(src, time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, k := range startedSinks {
			s.stopSink(k, ctx)
		}
		return err
	}
	for _, b := range next.Sinks {
		if old := findSink(oldSinks, b); old != nil {
			keptSink[old] = true
			sinks = append(sinks, old)
			continue
		}
		k, err := s.startSink(b)
		if err != nil {
			return rollback(err)
		}
		startedSinks = append(startedSinks, k)
		sinks = append(sinks, k)
	}
	for _, b := range next.Sources {
		if old := findSource(oldSources, b); old != nil {
			keptSource[old] = true
			sources = append(sources, old)
			continue
		}
		src, err := s.startSource(b)
		if err != nil {
			return rollback(err)
		}
		startedSources = append(startedSources, src)
		sources = append(sources, src)
	}

	s.mu.Lock()
	oldTier := s.tier
	s.mu.Unlock()
	newTier, staleTier, err := s.startTier(next, oldTier)
	if err != nil {
		return rollback(err)
	}

	agg := aggregationConfig(next)
	s.mu.Lock()
	prev := s.cfg
	s.cfg, s.sinks, s.sources, s.pendingAgg, s.tier = next, sinks, sources, &agg, newTier
	s.mu.Unlock()
	s.agg.SetMaxSeries(next.Limits.MaxSeries)
	go staleTier.stop(next.Daemon.ShutdownTimeout) // a replaced forwarder sends what it holds

	timeout := next.Daemon.ShutdownTimeout
	for _, src := range oldSources {
		if !keptSource[src] {
			s.stopSource(src, timeout)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+prev.Daemon.Interval)
	defer cancel()
	for _, k := range oldSinks {
		if !keptSink[k] {
			s.stopSink(k, ctx)
		}
	}
	s.log.Info("pipeline reloaded", "config_hash", next.Hash, "previous_hash", prev.Hash,
		"sources_started", len(startedSources), "sinks_started", len(startedSinks),
		"sources_stopped", len(oldSources)-len(keptSource), "sinks_stopped", len(oldSinks)-len(keptSink))
	return nil
}

func findSink(list []*liveSink, b *config.PluginBlock) *liveSink {
	for _, k := range list {
		if k.block.Address() == b.Address() && k.block.Hash == b.Hash {
			return k
		}
	}
	return nil
}

func findSource(list []*liveSource, b *config.PluginBlock) *liveSource {
	for _, src := range list {
		if src.block.Address() == b.Address() && src.block.Hash == b.Hash {
			return src
		}
	}
	return nil
}
