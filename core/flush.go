package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
)

// flush cuts every source, merges the state they hand over, and sends the
// interval that ended at t to every sink. Sinks are flushed concurrently,
// each within its flush_timeout (the interval by default), and flush does
// not wait for them: a slow sink delays neither the others nor the next
// interval. The channel it returns is closed once every sink's flush has
// ended.
func (s *Server) flush(t time.Time) <-chan struct{} {
	start := time.Now()
	s.cutSources()
	// The routes and sinks of the config in effect now: a reload's new
	// routes apply from the flush after it.
	s.mu.Lock()
	cfg, sinks, pending := s.cfg, s.sinks, s.pendingAgg
	s.pendingAgg = nil
	for _, k := range sinks {
		k.inflight.Add(1)
	}
	s.mu.Unlock()
	// Each sink's delivery starts now and streams its chunks as the
	// emission fills them.
	batches := newBatches(len(sinks))
	var wg sync.WaitGroup
	for i, k := range sinks {
		s.flushes.Add(1)
		wg.Go(func() {
			defer s.flushes.Done()
			defer k.inflight.Done()
			s.flushSink(k, batches[i])
		})
	}
	delivered := make(chan struct{})
	go func() {
		wg.Wait()
		s.flushTotal.Set(float64(time.Since(start).Nanoseconds()))
		close(delivered)
	}()
	// Series are emitted, routed and packed on every core: a flush of a
	// million series is that much shorter.
	rfs := make([]*routedFlush, flushWorkers)
	emitters := make([]aggregate.Emitter, flushWorkers)
	for i := range rfs {
		rfs[i] = newRoutedFlush(t.Unix(), cfg.Daemon.Interval, cfg.Routing.Router, batches)
		emitters[i] = rfs[i]
	}
	rf := rfs[0] // events and veneurd's own metrics
	events := s.agg.FlushToEach(emitters)
	s.endInterval(t.Unix())
	for reason, n := range s.agg.TakeDropped() {
		s.tel.Counter(telemetry.PointsDropped, "reason:"+reason).Add(n)
	}
	s.logLimits(cfg)
	if pending != nil { // a reload's aggregation settings start with the next interval
		s.agg.SetConfig(*pending)
	}
	var byType [4]uint64
	for _, f := range rfs {
		for i, n := range f.ByType {
			byType[i] += n
		}
	}
	s.countFlushed(byType)
	s.flushPoints.Store(byType[0] + byType[1] + byType[2] + byType[3])
	s.updateDrops()
	for _, e := range events {
		rf.Event(e)
	}
	if cfg.Daemon.SelfMetrics {
		self := s.tel.Points(t.Unix(), cfg.Daemon.Hostname)
		for i := range self {
			rf.Append(&self[i])
		}
	}
	finish(rfs...)
	s.countPolicyDrops(sinks, rfs)
	s.flushDuration.Set(float64(time.Since(start).Nanoseconds()))
	s.lastFlush.Store(t.UnixNano())
	s.log.Debug("flush", "points", byType[0]+byType[1]+byType[2]+byType[3], "events", len(events),
		"aggregate_duration", time.Since(start))
	return delivered
}

// flushSink delivers batch to k within its flush_timeout, after the flushes
// it holds from while its process was down. A flush that fails because the
// process is down, and was not back within the timeout, is held for the
// next one: a process that takes longer than a flush_timeout to come back
// (a second crash doubles its restart backoff) loses nothing, as long as it
// is back within maxHeld intervals.
func (s *Server) flushSink(k *liveSink, batch *pluginhost.FlushBatch) {
	timeout := k.block.FlushTimeout
	ctx, cancel := context.WithTimeout(s.flushCtx, timeout)
	defer cancel()
	begin := time.Now()
	if s.tapping.Load() > 0 {
		if taps := s.tapsOn(k.Address()); len(taps) > 0 {
			go s.tapFlush(taps, k.Address(), batch, timeout)
		}
	}
	pending := append(k.takeHeld(), batch)
	for i, b := range pending {
		counts, err := k.Flush(ctx, b)
		s.addPluginCounts(counts, "sink:"+k.Address())
		if err == nil {
			k.flushed.Add(uint64(b.Points()))
			k.lastPoints.Store(uint64(b.Points()))
			continue
		}
		k.duration.Add(uint64(time.Since(begin).Nanoseconds()))
		k.errors.Inc()
		if s.flushCtx.Err() == nil {
			k.lastErr.Store(newFlushError(err))
		}
		switch {
		case errors.Is(err, pluginhost.ErrSinkDown):
			if dropped := k.hold(pending[i:]...); dropped > 0 {
				s.log.Error("sink process down for too long: dropping its oldest held flushes", "sink", k.Address(), "flushes", dropped)
			}
			s.log.Warn("sink process down: holding its flushes for its return", "sink", k.Address(), "held", len(pending)-i, "error", err)
		case s.flushCtx.Err() != nil:
			s.log.Error("sink flush cut short by shutdown", "sink", k.Address(), "points", b.Points(), "error", err)
		case ctx.Err() != nil:
			s.log.Error("sink flush timed out", "sink", k.Address(), "timeout", timeout, "points", b.Points(), "error", err)
		default:
			s.log.Error("sink flush failed", "sink", k.Address(), "points", b.Points(), "error", err)
		}
		return
	}
	k.duration.Add(uint64(time.Since(begin).Nanoseconds()))
	k.lastNanos.Store(uint64(time.Since(begin).Nanoseconds()))
	k.lastErr.Store(nil)
}

// flushWorkers is how many goroutines emit a flush's series.
var flushWorkers = min(runtime.GOMAXPROCS(0), 4)

// maxCutWait bounds how long a flush waits for the sources' state.
const maxCutWait = 2 * time.Second

// cutSources has every running source hand over the state of the interval
// that ends, and waits for it: up to a quarter of the interval, at most
// maxCutWait. State that arrives later is not lost; it joins the next
// interval.
func (s *Server) cutSources() {
	s.mu.Lock()
	sources, interval := s.sources, s.cfg.Daemon.Interval
	s.mu.Unlock()
	if len(sources) == 0 {
		return
	}
	params, begin := s.stateParams(), time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), min(interval/4, maxCutWait))
	defer cancel()
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Go(func() {
			err := src.Cut(ctx, params)
			switch {
			case err == nil, errors.Is(err, pluginhost.ErrNotRunning):
				src.lateCut.Store(nil)
			case ctx.Err() != nil:
				s.log.Warn("source did not hand over its state in time; it joins the next interval", "source", src.Address(), "waited", time.Since(begin))
				src.lateCut.Store(&pluginhost.Fault{Msg: fmt.Sprintf("did not hand over its state within %s", time.Since(begin).Round(time.Millisecond)), At: time.Now()})
			default:
				s.log.Warn("source did not hand over its state", "source", src.Address(), "error", err)
				src.lateCut.Store(&pluginhost.Fault{Msg: "did not hand over its state: " + err.Error(), At: time.Now()})
			}
		})
	}
	wg.Wait()
}

// logLimits logs, once per interval, the sources whose series hit their
// limits and the names that did, and the series the daemon's own bound
// refused.
func (s *Server) logLimits(cfg *config.Config) {
	s.mu.Lock()
	sources := s.sources
	s.mu.Unlock()
	for _, src := range sources {
		if names := src.counts.endInterval(); len(names) > 0 {
			s.log.Warn("series limit reached: samples of new series dropped", "source", src.Address(),
				"names", names, "max_series", src.block.Limits.MaxSeries, "max_series_per_name", src.block.Limits.MaxSeriesPerName)
		}
	}
	if n := s.agg.TakeOverLimit(); n > 0 {
		s.seriesLimited.Add(n)
		s.log.Warn("series limit reached: series records dropped from the interval", "records", n, "max_series", cfg.Limits.MaxSeries)
	}
}

// mergeState merges a part of a source's state, handed over at a cut, into
// the interval in progress.
func (s *Server) mergeState(records []byte) {
	if _, err := s.agg.MergeState(records); err != nil {
		s.log.Error("dropping the rest of corrupt state from a source", "error", err)
		s.tel.Counter(telemetry.PacketErrors, "packet_type:metric", "reason:corrupt_state").Inc()
	}
}

// countPolicyDrops counts the points each sink's tag policy dropped in
// flushes fs, in veneur.sink.metrics_dropped_total.
func (s *Server) countPolicyDrops(sinks []*liveSink, fs []*routedFlush) {
	for i, k := range sinks {
		var byReason [match.Reasons]uint64
		for _, f := range fs {
			for r, n := range f.dropped[i] {
				byReason[r] += n
			}
		}
		for r, n := range byReason {
			if n > 0 {
				s.tel.Counter(telemetry.SinkMetricsDropped, "sink:"+k.Address(), "reason:"+match.Reason(r).String()).Add(n)
			}
		}
	}
}

// countFlushed counts flushed points by type.
func (s *Server) countFlushed(byType [4]uint64) {
	for _, t := range []sdk.PointType{sdk.PointCounter, sdk.PointGauge, sdk.PointStatus} {
		if byType[t] > 0 {
			s.tel.Counter(telemetry.MetricsFlushed, "metric_type:"+t.String()).Add(byType[t])
		}
	}
}

// updateDrops adds the kernel's drops on our sockets since the last look to
// veneur.listen.drops_total.
func (s *Server) updateDrops() {
	for addr, n := range s.pool.Drops() {
		s.mu.Lock()
		prev := s.drops[addr]
		s.drops[addr] = n // a socket opened anew starts again from zero
		s.mu.Unlock()
		if n > prev {
			s.tel.Counter(telemetry.ListenDrops, "listener:"+addr).Add(n - prev)
		}
	}
}

// WriteMetrics writes the self-metrics in the Prometheus text format, with
// the kernel's drop counts read now.
func (s *Server) WriteMetrics(w io.Writer) error {
	s.updateDrops()
	return s.tel.WritePrometheus(w)
}
