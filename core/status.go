package core

import (
	"sync"
	"time"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/forward"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/core/telemetry"
)

// Rates are counts over the last rateWindow, from totals sampled every
// rateEvery while the pipeline runs: a reader sees the same rate however
// often it asks, and the sampling costs a few map entries a second.
const (
	rateEvery  = time.Second
	rateWindow = 5 * time.Second
)

// rates keeps the recent samples of named totals.
type rates struct {
	mu      sync.Mutex
	samples []rateSample // oldest first, covering at most rateWindow
	stop    chan struct{}
	once    sync.Once
}

type rateSample struct {
	at     time.Time
	totals map[string]uint64
}

func newRates() *rates { return &rates{stop: make(chan struct{})} }

// run samples totals every rateEvery until end is called.
func (r *rates) run(totals func() map[string]uint64) {
	r.add(time.Now(), totals())
	t := time.NewTicker(rateEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			r.add(now, totals())
		case <-r.stop:
			return
		}
	}
}

func (r *rates) end() { r.once.Do(func() { close(r.stop) }) }

func (r *rates) add(at time.Time, totals map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, rateSample{at, totals})
	for len(r.samples) > 2 && at.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
}

// perSecond returns the rate of each total over the window sampled; a
// total that went down (its block restarted or was replaced) counts from
// zero.
func (r *rates) perSecond() map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]float64{}
	if len(r.samples) < 2 {
		return out
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	secs := last.at.Sub(first.at).Seconds()
	for k, v := range last.totals {
		was := first.totals[k]
		if v < was {
			was = 0
		}
		out[k] = float64(v-was) / secs
	}
	return out
}

// Keys of the totals rates samples.
func receivedKey(addr string) string  { return "received\x00" + addr }
func processedKey(addr string) string { return "processed\x00" + addr }
func ruleKey(rule string) string      { return "rule\x00" + rule }

const importedKey = "imported"

// rateTotals are the totals rates samples: each source's, each drop
// rule's, and the series received from the tier below.
func (s *Server) rateTotals() map[string]uint64 {
	s.mu.Lock()
	sources := s.sources
	s.mu.Unlock()
	out := map[string]uint64{}
	for _, src := range sources {
		out[receivedKey(src.Address())] = src.counts.received.Load()
		out[processedKey(src.Address())] = src.counts.processed.Load()
	}
	for rule, n := range s.tel.Counters(telemetry.MetricsDropped, "rule", "reason:dropped_by_rule") {
		out[ruleKey(rule)] = n
	}
	out[importedKey] = s.tel.CounterValue(forward.MetricsImported)
	return out
}

// processInfo is what a real plugin process tells of itself (core's
// tests' fakes do not).
type processInfo interface {
	Pid() int
	Restarts() uint64
	LastFault() *pluginhost.Fault
}

// Status describes the pipeline now (see package status).
func (s *Server) Status() *status.Status {
	s.mu.Lock()
	cfg, sources, sinks, t := s.cfg, s.sources, s.sinks, s.tier
	s.mu.Unlock()
	rate := s.rates.perSecond()
	interval := cfg.Daemon.Interval.Seconds()
	st := &status.Status{
		Hostname: cfg.Daemon.Hostname, Time: time.Now(), Started: s.startedAt,
		Config:    status.Config{Hash: cfg.Hash, IntervalSeconds: interval},
		Sources:   []status.Source{},
		DropRules: []status.DropRule{},
		Routes:    []status.Route{},
		Sinks:     []status.Sink{},
		TopNames:  []status.NameCount{},
		Edges:     []status.Edge{},
		Limits:    limitsOf(cfg.Limits),
		Taps:      []string{},
	}
	s.tapMu.Lock()
	for _, t := range s.taps {
		st.Taps = append(st.Taps, t.block)
	}
	s.tapMu.Unlock()
	if err := s.Ready(); err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else {
		st.Ready = true
	}
	if err := s.Health(); err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else {
		st.Healthy = true
	}
	if ts := s.lastFlush.Load(); ts > 0 {
		st.Flush.At = time.Unix(0, ts)
	}
	st.Flush.DurationSeconds = s.flushDuration.Value() / 1e9
	st.Flush.TotalDurationSeconds = s.flushTotal.Value() / 1e9
	st.Flush.Points = s.flushPoints.Load()
	last := s.agg.LastFlush()
	st.Flush.Series = last.Series
	for _, nc := range last.TopNames {
		st.TopNames = append(st.TopNames, status.NameCount{Name: nc.Name, Series: nc.Series})
	}

	for _, src := range sources {
		c := src.counts
		ss := status.Source{
			Plugin: plugin(src.SourceProcess, src.block), Listen: []string{},
			Received: c.received.Load(), Processed: c.processed.Load(), Errors: c.errors.Load(),
			ReceivedPerSecond:  rate[receivedKey(src.Address())],
			ProcessedPerSecond: rate[processedKey(src.Address())],
			Dropped:            map[string]uint64{},
		}
		for _, a := range src.block.Listen {
			ss.Listen = append(ss.Listen, a.String())
		}
		if n := c.droppedByRule.Load(); n > 0 {
			ss.Dropped["dropped_by_rule"] = n
		}
		if n := c.seriesLimit.Load(); n > 0 {
			ss.Dropped[telemetry.ReasonSeriesLimit] = n
		}
		ss.Limits = limitsOf(src.block.Limits)
		ss.Limited = c.lastLimitedNames()
		if f := src.lateCut.Load(); f != nil && ss.State == "running" {
			ss.State = "failing"
			ss.LastError, ss.LastErrorAt = f.Msg, &f.At
		}
		st.Sources = append(st.Sources, ss)
		st.Edges = append(st.Edges, status.Edge{From: src.Address(), To: status.NodePipeline,
			PerSecond: ss.ProcessedPerSecond, Unit: "samples"})
	}
	droppedByRule := s.tel.Counters(telemetry.MetricsDropped, "rule", "reason:dropped_by_rule")
	for _, r := range cfg.Routing.Drops {
		st.DropRules = append(st.DropRules, status.DropRule{Name: r.Name, Dropped: droppedByRule[r.Name],
			PerSecond: rate[ruleKey(r.Name)]})
	}
	if r := cfg.Routing.Router; r != nil {
		for _, rule := range r.Rules {
			rt := status.Route{Name: rule.Name, Matched: []string{}, NotMatched: []string{}}
			for i, name := range r.Sinks {
				if rule.Matched.Has(i) {
					rt.Matched = append(rt.Matched, name)
				}
				if rule.NotMatched.Has(i) {
					rt.NotMatched = append(rt.NotMatched, name)
				}
			}
			st.Routes = append(st.Routes, rt)
		}
	}
	for _, k := range sinks {
		ks := status.Sink{
			Plugin:  plugin(k.SinkProcess, k.block),
			Flushed: k.flushed.Value(), FlushErrors: k.errors.Value(),
			LastFlushPoints:  k.lastPoints.Load(),
			LastFlushSeconds: time.Duration(k.lastNanos.Load()).Seconds(),
			Dropped:          s.tel.Counters(telemetry.SinkMetricsDropped, "reason", "sink:"+k.Address()),
		}
		if ks.Running { // nothing flows to a process that is down
			ks.PointsPerSecond = float64(ks.LastFlushPoints) / interval
		}
		if e := k.lastErr.Load(); e != nil {
			if ks.State == "running" {
				ks.State = "failing"
			}
			ks.LastError, ks.LastErrorAt = e.msg, &e.at
		}
		st.Sinks = append(st.Sinks, ks)
		st.Edges = append(st.Edges, status.Edge{From: status.NodePipeline, To: k.Address(),
			PerSecond: ks.PointsPerSecond, Unit: "points"})
	}
	if f := cfg.Forward; f != nil {
		fs := &status.Forward{Protocol: f.Protocol, Members: []string{},
			Errors: s.tel.Counters(forward.ForwardErrors, "cause")}
		if t.fwd != nil {
			fs.Members = append(fs.Members, t.fwd.Members()...)
			fs.Pending = t.fwd.Pending()
		}
		st.Forward = fs
		st.Edges = append(st.Edges, status.Edge{From: status.NodePipeline, To: status.NodeForward,
			PerSecond: float64(last.Forwarded) / interval, Unit: "series"})
	}
	if r := cfg.Receive; r != nil {
		st.Receive = &status.Receive{Address: r.GRPCAddress, Aggregate: r.Aggregate,
			Series: s.tel.CounterValue(forward.MetricsImported), SeriesPerSecond: rate[importedKey]}
		st.Edges = append(st.Edges, status.Edge{From: status.NodeReceive, To: status.NodePipeline,
			PerSecond: st.Receive.SeriesPerSecond, Unit: "series"})
	}
	return st
}

func limitsOf(l config.Limits) status.Limits {
	return status.Limits{MaxSeries: l.MaxSeries, MaxSeriesPerName: l.MaxSeriesPerName}
}

// plugin is the status of a block's process.
func plugin(p interface {
	Address() string
	Running() bool
}, b *config.PluginBlock) status.Plugin {
	ps := status.Plugin{Address: p.Address(), Type: b.Type, Name: b.Name, Running: p.Running(), State: "running"}
	if !ps.Running {
		ps.State = "down"
	}
	if info, ok := p.(processInfo); ok {
		ps.Pid, ps.Restarts = info.Pid(), info.Restarts()
		if f := info.LastFault(); f != nil {
			ps.LastError, ps.LastErrorAt = f.Msg, &f.At
		}
	}
	return ps
}
