// Package aggregate keeps one flush interval's state: counters summed,
// gauges last-write, histograms and timers in merging t-digests, sets in
// HyperLogLog sketches (kept in a state.Table), service checks last-write
// (flushed as status points). Samples arrive already aggregated, as the
// state records source processes ship (MergeState). Flush takes the
// interval's state away whole and turns it into points; a series that saw
// no samples in an interval emits nothing.
package aggregate

import (
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Aggregate is one of the statistics a histogram or timer emits besides its
// percentiles, named as in Veneur.
type Aggregate uint8

// Aggregates, in the order they are emitted.
const (
	Max Aggregate = 1 << iota
	Min
	Sum
	Avg
	Count
	Median
	HMean
)

var aggregateNames = []struct {
	a    Aggregate
	name string
}{{Max, "max"}, {Min, "min"}, {Sum, "sum"}, {Avg, "avg"}, {Count, "count"}, {Median, "median"}, {HMean, "hmean"}}

// ParseAggregates turns names ("min", "max", ...) into a set; unknown names
// are ignored (the config loader rejects them).
func ParseAggregates(names []string) Aggregate {
	var a Aggregate
	for _, n := range names {
		for _, an := range aggregateNames {
			if an.name == n {
				a |= an.a
			}
		}
	}
	return a
}

// Config is what a flush needs to know. It may change between intervals.
type Config struct {
	Percentiles  []float64
	Aggregates   Aggregate
	Compression  float64
	HLLPrecision uint8
	Hostname     string
	// ExtendTags are added to every metric at flush, replacing a tag of the
	// same key ("env:prod" replaces "env:dev"). Series that become the same
	// series are merged.
	ExtendTags []string

	percentileSuffixes []string
}

// Aggregator holds the state of the interval in progress: the series in a
// state.Table, and the events and service checks. All methods may be called
// concurrently.
type Aggregator struct {
	cfg   atomic.Pointer[Config]
	table *state.Table

	mu      sync.Mutex
	events  []*pb.Event // as the source sent them: a sink gets them as they are
	checks  map[string]*sdk.ServiceCheck
	dropped [drops]uint64 // points not emitted, by reason, since TakeDropped
}

// Reasons a flush does not emit a point: its value is not a finite number.
// No sink format can be relied on to carry one (JSON has neither NaN nor
// infinity), and one such value must not cost a sink the whole flush: that
// point alone is dropped, and counted. Samples are finite (state.Table
// refuses the others), so only aggregation makes such values.
const (
	// DropOverflow: an aggregate went past float64's range, though every
	// value in it is finite: a counter's sum (two counters of 1e308, from
	// one source or merged from two), or a histogram's or timer's sum,
	// average, count, median or percentile (1e308:1e308|h has sum +Inf).
	DropOverflow = "overflow"
	// DropUndefined: a harmonic mean whose reciprocal sum is zero, as of
	// -1:1|h.
	DropUndefined = "undefined"
	// DropInvalid: a value finite whenever its inputs are (a gauge, a set's
	// estimate, a digest's minimum or maximum) is not: state that did not
	// come from a Table's samples.
	DropInvalid = "invalid"
)

type dropReason uint8

const (
	dropOverflow dropReason = iota
	dropUndefined
	dropInvalid
	drops
)

var dropNames = [drops]string{DropOverflow, DropUndefined, DropInvalid}

// TakeDropped returns how many points the flushes since its last call did
// not emit, by reason (DropOverflow, ...), and counts anew; nil if none.
func (a *Aggregator) TakeDropped() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out map[string]uint64
	for r, n := range a.dropped {
		if n > 0 {
			if out == nil {
				out = map[string]uint64{}
			}
			out[dropNames[r]] = n
		}
	}
	a.dropped = [drops]uint64{}
	return out
}

// New returns an empty Aggregator.
func New(cfg Config) *Aggregator {
	a := &Aggregator{checks: map[string]*sdk.ServiceCheck{}}
	a.table = state.New(cfg.params(), max(runtime.GOMAXPROCS(0)*4, 8))
	a.SetConfig(cfg)
	return a
}

func (c Config) params() state.Params {
	return state.Params{Compression: c.Compression, HLLPrecision: c.HLLPrecision}
}

// SetConfig changes the configuration. Digests and sketches created from now
// on use the new compression and precision; the next Flush uses the new
// percentiles and aggregates.
func (a *Aggregator) SetConfig(cfg Config) {
	a.table.SetParams(cfg.params())
	p := a.table.Params()
	cfg.Compression, cfg.HLLPrecision = p.Compression, p.HLLPrecision
	cfg.percentileSuffixes = make([]string, len(cfg.Percentiles))
	for i, q := range cfg.Percentiles {
		cfg.percentileSuffixes[i] = PercentileSuffix(q)
	}
	a.cfg.Store(&cfg)
}

// MergeState merges a frame of state records (see package state), as a
// source process ships them, and returns how many series it merged.
func (a *Aggregator) MergeState(b []byte) (int, error) {
	return a.table.MergeRecords(b)
}

// AddEvent queues an event for the next flush. The aggregator keeps e, and
// changes its tags at flush.
func (a *Aggregator) AddEvent(e *pb.Event) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
}

// AddServiceCheck records a service check; within an interval the last
// status, message and host of a check (name and tags) win. It is flushed as
// a status point, as Veneur does.
func (a *Aggregator) AddServiceCheck(c sdk.ServiceCheck) {
	key := c.Name + "|" + strings.Join(c.Tags, ",")
	a.mu.Lock()
	a.checks[key] = &c
	a.mu.Unlock()
}

// Emitter receives the points of a flush. All points of one series come in
// a row and share one tags string (sorted, comma-joined); a point's name is
// name+suffix (suffix is "" but for histogram and timer outputs), so that no
// name is built just to be copied.
type Emitter interface {
	Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string)
}

// FlushTo takes the interval's state and emits its points, then returns its
// events, ready for the wire. The aggregator is empty afterwards. Each
// shard's state is released as soon as it has been emitted, so a flush
// holds little beyond what e keeps. A point whose value is not finite is not
// emitted (see DropOverflow).
func (a *Aggregator) FlushTo(e Emitter) []*pb.Event { return a.FlushToEach([]Emitter{e}) }

// FlushToEach is FlushTo over several emitters at once, one goroutine
// each: every series goes to one of them, whole (its points in a row), and
// the service checks go to the first. A flush of many series then uses as
// many cores as it has emitters. With extend_tags, which may merge series
// of different shards, everything goes to the first.
func (a *Aggregator) FlushToEach(emitters []Emitter) []*pb.Event {
	cfg := a.cfg.Load()
	ems := make([]*emission, len(emitters))
	for i, e := range emitters {
		ems[i] = &emission{e: e, cfg: cfg}
	}
	if len(cfg.ExtendTags) > 0 {
		extended := map[string]*state.Series{}
		for i := range a.table.Shards() {
			taken := a.table.Take(i)
			for j := range taken {
				extendInto(extended, &taken[j], cfg.ExtendTags)
			}
		}
		for _, se := range extended {
			ems[0].series(se)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for _, em := range ems {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < a.table.Shards(); i = int(next.Add(1) - 1) {
					taken := a.table.Take(i)
					for j := range taken {
						em.series(&taken[j])
					}
				}
			})
		}
		wg.Wait()
	}
	a.mu.Lock()
	for _, em := range ems {
		for r, n := range em.dropped {
			a.dropped[r] += n
		}
	}
	events := a.events
	a.events = nil
	checks := a.checks
	a.checks = map[string]*sdk.ServiceCheck{}
	a.mu.Unlock()
	if len(cfg.ExtendTags) > 0 {
		for _, ev := range events {
			sort.Strings(ev.Tags)
			ev.Tags = splitTags(extendTags(strings.Join(ev.Tags, ","), cfg.ExtendTags))
		}
	}
	for _, c := range checks {
		tags := strings.Join(c.Tags, ",")
		if len(cfg.ExtendTags) > 0 {
			tags = extendTags(tags, cfg.ExtendTags)
		}
		emitters[0].Point(c.Name, "", tags, sdk.PointStatus, float64(c.Status), orDefault(c.Hostname, cfg.Hostname), c.Message)
	}
	return events
}

// Flush is FlushTo collecting the points as an sdk.Flush stamped ts (Unix
// seconds).
func (a *Aggregator) Flush(ts int64) *sdk.Flush {
	c := &Collector{Timestamp: ts}
	f := &sdk.Flush{Timestamp: ts}
	for _, e := range a.FlushTo(c) {
		f.Events = append(f.Events, sdk.EventFromProto(e))
	}
	f.Points = c.Points
	return f
}

// Collector is an Emitter that keeps points as sdk.Points; the points of a
// series share one Tags slice.
type Collector struct {
	Timestamp int64
	Points    []sdk.Point
	lastTags  string
	tags      []string
}

// Point keeps one point.
func (c *Collector) Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string) {
	if len(c.Points) == 0 || tags != c.lastTags {
		c.lastTags, c.tags = tags, splitTags(tags)
	}
	c.Points = append(c.Points, sdk.Point{Name: name + suffix, Tags: c.tags, Type: typ, Value: value,
		Timestamp: c.Timestamp, Hostname: hostname, Message: message})
}

// emission is one flush's emitting of series: where points go, and the
// points dropped, by reason.
type emission struct {
	e       Emitter
	cfg     *Config
	dropped [drops]uint64
}

// point emits a point of value v, or counts it dropped under why if v is
// not finite.
func (em *emission) point(name, suffix, tags string, typ sdk.PointType, v float64, why dropReason) {
	if !(math.Abs(v) <= math.MaxFloat64) {
		em.dropped[why]++
		return
	}
	em.e.Point(name, suffix, tags, typ, v, em.cfg.Hostname, "")
}

func (em *emission) series(se *state.Series) {
	switch sdk.MetricType(se.Type()) {
	case sdk.Counter:
		em.point(se.Name(), "", se.Tags(), sdk.PointCounter, se.Value, dropOverflow)
	case sdk.Gauge:
		em.point(se.Name(), "", se.Tags(), sdk.PointGauge, se.Value, dropInvalid)
	case sdk.Set:
		em.point(se.Name(), "", se.Tags(), sdk.PointGauge, float64(se.Set.Estimate()), dropInvalid)
	case sdk.Histogram, sdk.Timer:
		em.histogram(se)
	}
}

// histogram emits Veneur's aggregates and percentiles of a digest. The
// harmonic mean is Count/ReciprocalSum, as in Veneur: a zero value makes it
// 0 (its reciprocal is infinite), whatever the zero's sign; values whose
// reciprocals cancel out (-1 and 1) leave it undefined, and it is dropped.
func (em *emission) histogram(se *state.Series) {
	d := se.Digest
	name, tags := se.Name(), se.Tags()
	agg := em.cfg.Aggregates
	if agg&Max != 0 {
		em.point(name, ".max", tags, sdk.PointGauge, d.Max(), dropInvalid)
	}
	if agg&Min != 0 {
		em.point(name, ".min", tags, sdk.PointGauge, d.Min(), dropInvalid)
	}
	if agg&Sum != 0 {
		em.point(name, ".sum", tags, sdk.PointGauge, d.Sum(), dropOverflow)
	}
	if agg&Avg != 0 {
		em.point(name, ".avg", tags, sdk.PointGauge, d.Sum()/d.Count(), dropOverflow)
	}
	if agg&Count != 0 {
		em.point(name, ".count", tags, sdk.PointCounter, d.Count(), dropOverflow)
	}
	if agg&Median != 0 {
		em.point(name, ".median", tags, sdk.PointGauge, d.Quantile(0.5), dropOverflow)
	}
	if agg&HMean != 0 {
		hm := d.Count() / d.ReciprocalSum()
		if math.IsNaN(hm) { // zeros of both signs: 1/+0 + 1/-0
			hm = 0
		}
		em.point(name, ".hmean", tags, sdk.PointGauge, hm, dropUndefined)
	}
	for i, q := range em.cfg.Percentiles {
		em.point(name, em.cfg.percentileSuffixes[i], tags, sdk.PointGauge, d.Quantile(q), dropOverflow)
	}
}

// PercentileSuffix names a percentile as Veneur does for whole percents
// (0.99 -> ".99percentile") and keeps other fractions apart by writing their
// decimals after an underscore (0.999 -> ".99_9percentile", 0.9999 ->
// ".99_99percentile"), where Veneur would truncate both to ".99percentile".
func PercentileSuffix(q float64) string {
	pct := math.Round(q*100*1e6) / 1e6 // 0.999*100 is 99.89999999999999
	s := strconv.FormatFloat(pct, 'f', -1, 64)
	return "." + strings.Replace(s, ".", "_", 1) + "percentile"
}

// extendInto adds se to m under its tags extended with extra, merging it
// (and its scope) into a series already there.
func extendInto(m map[string]*state.Series, se *state.Series, extra []string) {
	se.Key = state.Key(se.Scope(), se.Type(), se.Name(), extendTags(se.Tags(), extra))
	prev, ok := m[se.ID()]
	if !ok {
		m[se.ID()] = se
		return
	}
	prev.Merge(se) // both were written this interval; for a gauge either is the last
}

// extendTags returns tags (sorted, comma-joined) with extra added, each
// replacing the tags of the same key.
func extendTags(tags string, extra []string) string {
	var out []string
	if tags != "" {
		for _, t := range strings.Split(tags, ",") {
			if !hasKeyOf(extra, t) {
				out = append(out, t)
			}
		}
	}
	out = append(out, extra...)
	sort.Strings(out)
	return strings.Join(out, ",")
}

// hasKeyOf reports whether one of extra has tag's key (the part before ':').
func hasKeyOf(extra []string, tag string) bool {
	key, _, _ := strings.Cut(tag, ":")
	for _, e := range extra {
		if k, _, _ := strings.Cut(e, ":"); k == key {
			return true
		}
	}
	return false
}

func splitTags(tags string) []string {
	if tags == "" {
		return nil
	}
	t := strings.Split(tags, ",")
	if !sort.StringsAreSorted(t) {
		sort.Strings(t)
	}
	return t
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
