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
	// imports holds the state other instances forwarded for the interval
	// in progress, apart from table's own until the flush (see Import).
	imports *state.Table
	// forward, when set, makes this instance a local: it takes the records
	// of the outputs only the fleet's merged state can give (see shares).
	forward func(frame []byte)

	mu      sync.Mutex
	events  []*pb.Event // as the source sent them: a sink gets them as they are
	checks  map[string]*sdk.ServiceCheck
	dropped [drops]uint64 // points not emitted, by reason, since TakeDropped
	last    FlushStats
	// names are the flush workers' name counters, kept between flushes
	// (each is half a megabyte).
	names []*nameCounter
}

// nameCounter returns flush worker i's name counter, emptied. Flushes are
// one at a time.
func (a *Aggregator) nameCounter(i int) *nameCounter {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.names) <= i {
		a.names = append(a.names, &nameCounter{})
	}
	a.names[i].reset()
	return a.names[i]
}

// FlushStats says what a flush held.
type FlushStats struct {
	// Series counts the series flushed, own and received, each once;
	// Forwarded those handed to the tier above.
	Series    uint64
	Forwarded uint64
	// TopNames are the names with the most series, most first, at most
	// TopNames of them; their counts are estimates (see nameCounter).
	TopNames []NameCount
}

// NameCount is a series name and how many series it had.
type NameCount struct {
	Name   string
	Series uint64
}

// TopNames is how many names FlushStats keeps.
const TopNames = 10

// LastFlush says what the last flush held.
func (a *Aggregator) LastFlush() FlushStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
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
	// average or count (1e308:1e308|h has sum +Inf). Medians and
	// percentiles lie between the digest's extremes, and never overflow.
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
	a.imports = state.New(cfg.params(), max(runtime.GOMAXPROCS(0)*4, 8))
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
	a.imports.SetParams(cfg.params())
	p := a.table.Params()
	cfg.Compression, cfg.HLLPrecision = p.Compression, p.HLLPrecision
	cfg.percentileSuffixes = make([]string, len(cfg.Percentiles))
	for i, q := range cfg.Percentiles {
		cfg.percentileSuffixes[i] = PercentileSuffix(q)
	}
	a.cfg.Store(&cfg)
}

// SetMaxSeries bounds the series an interval may hold, own and received
// each apart (a limits block's max_series); 0 is no bound.
func (a *Aggregator) SetMaxSeries(n int) {
	a.table.SetMaxSeries(n)
	a.imports.SetMaxSeries(n)
}

// TakeOverLimit returns how many series records SetMaxSeries's bound
// refused since the last call.
func (a *Aggregator) TakeOverLimit() uint64 {
	return a.table.TakeOverLimit() + a.imports.TakeOverLimit()
}

// SetForward makes the aggregator a local's: at each flush it emits only
// the outputs of its own host's samples, and hands fn, as frames of state
// records, the series whose other outputs only the fleet's merged state can
// give (percentiles, set cardinalities, veneurglobalonly counters; see
// shares). fn owns each frame; it is called from the flush's goroutines,
// concurrently. nil makes it a global's, or a standalone's, again.
func (a *Aggregator) SetForward(fn func(frame []byte)) {
	a.mu.Lock()
	a.forward = fn
	a.mu.Unlock()
}

// Import merges a frame of state records that another instance forwarded.
// They are kept apart from the series of this instance's own sources until
// the flush, which merges the two: the outputs of a host's own samples
// (counters, a histogram's min or count) are this instance's alone, the
// fleet's outputs (percentiles, set cardinalities, global counters) those
// of the union, each series emitted once.
func (a *Aggregator) Import(b []byte) (int, error) {
	return a.imports.MergeRecords(b)
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

// Emitter receives the points of a flush. The points of one series share one
// tags string (sorted, comma-joined) and come in a row, but on a global:
// there the outputs of its own host's samples come with its own series, and
// the fleet's with the imported ones, later (see shares). A point's name is
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
	a.mu.Lock()
	forward := a.forward
	a.mu.Unlock()
	// Imports are merged only when some arrived: a standalone instance
	// emits its own series directly.
	imports := a.imports
	if imports.Size() == 0 {
		imports = nil
	}
	ems := make([]*emission, len(emitters))
	for i, e := range emitters {
		ems[i] = &emission{e: e, cfg: cfg, imports: imports, forward: forward, names: a.nameCounter(i)}
	}
	if len(cfg.ExtendTags) > 0 {
		// Extended tags may make one series of several: the imported ones
		// are extended first, so that own series merge into them by
		// their extended identity.
		var extendedImports map[string]*state.Series
		if imports != nil {
			extendedImports = map[string]*state.Series{}
			for i := range imports.Shards() {
				taken := imports.Take(i)
				for j := range taken {
					extendInto(extendedImports, &taken[j], cfg.ExtendTags)
				}
			}
			ems[0].imports, ems[0].extendedImports = nil, extendedImports
		}
		extended := map[string]*state.Series{}
		for i := range a.table.Shards() {
			taken := a.table.Take(i)
			for j := range taken {
				extendInto(extended, &taken[j], cfg.ExtendTags)
			}
		}
		for _, se := range extended {
			ems[0].own(se)
		}
		for _, se := range extendedImports {
			ems[0].imported(se)
		}
	} else {
		eachSeries(ems, a.table, (*emission).own)
		if imports != nil {
			// After every own series: those that merged into imported ones
			// are emitted with them.
			eachSeries(ems, imports, (*emission).imported)
		}
	}
	for _, em := range ems {
		em.sendForward()
	}
	stats := flushStats(ems)
	a.mu.Lock()
	a.last = stats
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
	imports *state.Table // the interval's imported series, nil if none
	// extendedImports replaces imports when extend_tags applies: the
	// imported series by their extended identity.
	extendedImports map[string]*state.Series
	forward         func(frame []byte) // set on a local
	frame           []byte             // records to forward, not yet handed over
	// names counts series by name, and forwarded the series forwarded.
	names     *nameCounter
	forwarded uint64
}

// count counts a series under its name, for the flush's top names.
func (em *emission) count(se *state.Series) { em.names.add(se.Name()) }

// flushStats sums what the emissions of a flush counted.
func flushStats(ems []*emission) FlushStats {
	var st FlushStats
	counters := make([]*nameCounter, len(ems))
	for i, em := range ems {
		st.Forwarded += em.forwarded
		counters[i] = em.names
	}
	st.TopNames, st.Series = mergeNames(counters)
	return st
}

// eachSeries has ems, one goroutine each, take t's shards in turn and pass
// each series to fn.
func eachSeries(ems []*emission, t *state.Table, fn func(*emission, *state.Series)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, em := range ems {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < t.Shards(); i = int(next.Add(1) - 1) {
				taken := t.Take(i)
				for j := range taken {
					fn(em, &taken[j])
				}
			}
		})
	}
	wg.Wait()
}

// outputs are parts of what a series emits.
type outputs uint8

const (
	outValue      outputs = 1 << iota // a counter's, gauge's or set's one point
	outAggregates                     // a histogram's or timer's min, max, sum, avg, count, hmean
	outQuantiles                      // a histogram's or timer's median and percentiles
)

// shares splits the outputs of a series of type typ and scope into those
// of its host's own samples, which every instance emits for the samples its
// sources read, and those only the fleet's merged state gives, which a local
// forwards and a global emits once for the union of what it read and
// received (docs/global-tier.md has the table). A standalone instance emits
// both.
func shares(typ, scope uint8) (host, fleet outputs) {
	switch sdk.MetricType(typ) {
	case sdk.Counter, sdk.Gauge:
		if scope == state.ScopeGlobal {
			return 0, outValue
		}
		return outValue, 0
	case sdk.Set:
		if scope == state.ScopeLocal {
			return outValue, 0
		}
		return 0, outValue
	case sdk.Histogram, sdk.Timer:
		switch scope {
		case state.ScopeLocal:
			return outAggregates | outQuantiles, 0
		case state.ScopeGlobal:
			return 0, outAggregates | outQuantiles
		}
		return outAggregates, outQuantiles
	}
	return 0, 0
}

// maxForwardFrame is the size from which a frame of records to forward is
// handed over.
const maxForwardFrame = 1 << 20

// own emits a series of this instance's sources: its host's outputs, and
// its fleet's unless a local forwards them or they merge into the same
// series received from other instances.
func (em *emission) own(se *state.Series) {
	host, fleet := shares(se.Type(), se.Scope())
	switch {
	case fleet == 0:
	case em.forward != nil:
		em.frame = state.AppendRecord(em.frame, se)
		em.forwarded++
		if len(em.frame) >= maxForwardFrame {
			em.sendForward()
		}
		fleet = 0
	case em.imports != nil:
		merged, err := em.imports.MergeIfHeld(se)
		if err != nil {
			em.dropped[dropInvalid]++
		}
		if merged || err != nil {
			fleet = 0
		}
		if merged { // counted with the imported series it joined
			em.emit(se, host)
			return
		}
	case em.extendedImports != nil:
		if im, ok := em.extendedImports[se.ID()]; ok {
			if err := im.Merge(se); err != nil {
				em.dropped[dropInvalid]++
			}
			em.emit(se, host)
			return
		}
	}
	em.count(se)
	em.emit(se, host|fleet)
}

// imported emits a series other instances forwarded, merged with this
// instance's own: its fleet's outputs; a local forwards it onward.
func (em *emission) imported(se *state.Series) {
	em.count(se)
	if em.forward != nil {
		em.forwarded++
		em.frame = state.AppendRecord(em.frame, se)
		if len(em.frame) >= maxForwardFrame {
			em.sendForward()
		}
		return
	}
	host, fleet := shares(se.Type(), se.Scope())
	if fleet == 0 { // a local never forwards such a series; emit what it holds
		fleet = host
	}
	em.emit(se, fleet)
}

// sendForward hands over the records waiting to be forwarded.
func (em *emission) sendForward() {
	if len(em.frame) > 0 {
		em.forward(em.frame)
		em.frame = nil
	}
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

// emit emits the outputs out of a series.
func (em *emission) emit(se *state.Series, out outputs) {
	if out == 0 {
		return
	}
	switch sdk.MetricType(se.Type()) {
	case sdk.Counter:
		em.point(se.Name(), "", se.Tags(), sdk.PointCounter, se.Value, dropOverflow)
	case sdk.Gauge:
		em.point(se.Name(), "", se.Tags(), sdk.PointGauge, se.Value, dropInvalid)
	case sdk.Set:
		em.point(se.Name(), "", se.Tags(), sdk.PointGauge, float64(se.Set.Estimate()), dropInvalid)
	case sdk.Histogram, sdk.Timer:
		em.histogram(se, out)
	}
}

// histogram emits Veneur's aggregates and percentiles of a digest. The
// harmonic mean is Count/ReciprocalSum, as in Veneur: a zero value makes it
// 0 (its reciprocal is infinite), whatever the zero's sign; values whose
// reciprocals cancel out (-1 and 1) leave it undefined, and it is dropped.
func (em *emission) histogram(se *state.Series, out outputs) {
	d := se.Digest
	name, tags := se.Name(), se.Tags()
	agg := em.cfg.Aggregates
	if out&outAggregates == 0 {
		agg &= Median // the median is a quantile: the fleet's
	}
	if out&outQuantiles == 0 {
		agg &^= Median
	}
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
	if out&outQuantiles == 0 {
		return
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
