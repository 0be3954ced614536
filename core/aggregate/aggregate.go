// Package aggregate keeps one flush interval's state: counters summed,
// gauges last-write, histograms and timers in merging t-digests, sets in
// HyperLogLog sketches, service checks last-write (flushed as status points). State is sharded by series
// key so that several ingesting goroutines rarely meet on a lock. Flush takes
// the interval's state away whole and turns it into points; a series that saw
// no samples in an interval emits nothing.
package aggregate

import (
	"hash/maphash"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/axiomhq/hyperloglog"

	"github.com/veneurd/veneurd/core/tdigest"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/frame"
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
}

// Aggregator holds the state of the interval in progress. All methods may be
// called concurrently.
type Aggregator struct {
	cfg    atomic.Pointer[Config]
	seed   maphash.Seed
	shards []shard

	mu     sync.Mutex
	events []sdk.Event
	checks map[string]*sdk.ServiceCheck
}

type shard struct {
	mu     sync.Mutex
	series map[string]*series
	_      [40]byte // keep neighbouring shards' locks off one cache line
}

type series struct {
	typ    sdk.MetricType
	scope  sdk.Scope
	name   string
	tags   string
	value  float64
	digest *tdigest.Merging
	set    *hyperloglog.Sketch
}

// New returns an empty Aggregator.
func New(cfg Config) *Aggregator {
	n := max(runtime.GOMAXPROCS(0)*4, 8)
	a := &Aggregator{seed: maphash.MakeSeed(), shards: make([]shard, n), checks: map[string]*sdk.ServiceCheck{}}
	for i := range a.shards {
		a.shards[i].series = map[string]*series{}
	}
	a.SetConfig(cfg)
	return a
}

// SetConfig changes the configuration. Digests and sketches created from now
// on use the new compression and precision; the next Flush uses the new
// percentiles and aggregates.
func (a *Aggregator) SetConfig(cfg Config) {
	if cfg.Compression <= 0 {
		cfg.Compression = 100
	}
	if cfg.HLLPrecision == 0 {
		cfg.HLLPrecision = 14
	}
	a.cfg.Store(&cfg)
}

// IngestFrame adds every sample of a packed frame and returns how many it
// added. It does not allocate for samples of series already seen in this
// interval.
func (a *Aggregator) IngestFrame(b []byte) (int, error) {
	r := frame.NewReader(b)
	n := 0
	for r.Next() {
		a.add(&r.Sample)
		n++
	}
	return n, r.Err()
}

func (a *Aggregator) add(s *frame.Sample) {
	sh := &a.shards[maphash.Bytes(a.seed, s.Key)%uint64(len(a.shards))]
	sh.mu.Lock()
	se := sh.series[string(s.Key)]
	if se == nil {
		key := string(s.Key)
		se = a.newSeries(s, key)
		if se == nil {
			sh.mu.Unlock()
			return
		}
		sh.series[key] = se
	}
	switch se.typ {
	case sdk.Counter:
		se.value += s.Value / s.Rate
	case sdk.Gauge:
		se.value = s.Value
	case sdk.Histogram, sdk.Timer:
		se.digest.Add(s.Value, 1/s.Rate)
	case sdk.Set:
		se.set.InsertHash(frame.SetHash(s.Value))
	}
	sh.mu.Unlock()
}

// newSeries makes a series for s. Its name and tags are slices of key, the
// map key, which holds them (see frame.Sample.Key): one allocation, not three.
func (a *Aggregator) newSeries(s *frame.Sample, key string) *series {
	nameAt := len(key) - len(s.Name) - len(s.Tags)
	se := &series{typ: sdk.MetricType(s.Type), scope: sdk.Scope(s.Scope),
		name: key[nameAt : nameAt+len(s.Name)], tags: key[nameAt+len(s.Name):]}
	cfg := a.cfg.Load()
	switch se.typ {
	case sdk.Counter, sdk.Gauge:
	case sdk.Histogram, sdk.Timer:
		se.digest = tdigest.New(cfg.Compression)
	case sdk.Set:
		sk, err := hyperloglog.NewSketch(cfg.HLLPrecision, true)
		if err != nil {
			sk = hyperloglog.New()
		}
		se.set = sk
	default:
		return nil
	}
	return se
}

// AddEvent queues an event for the next flush.
func (a *Aggregator) AddEvent(e sdk.Event) {
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

// Flush takes the interval's state and returns its points, stamped ts (Unix
// seconds). The aggregator is empty afterwards.
func (a *Aggregator) Flush(ts int64) *sdk.Flush {
	cfg := a.cfg.Load()
	f := &sdk.Flush{Timestamp: ts}
	var extended map[string]*series
	if len(cfg.ExtendTags) > 0 {
		extended = map[string]*series{}
	}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		taken := sh.series
		sh.series = make(map[string]*series, len(taken))
		sh.mu.Unlock()
		for _, se := range taken {
			if extended != nil {
				extendInto(extended, se, cfg.ExtendTags)
				continue
			}
			f.Points = appendPoints(f.Points, se, cfg, ts)
		}
	}
	for _, se := range extended {
		f.Points = appendPoints(f.Points, se, cfg, ts)
	}
	a.mu.Lock()
	f.Events, a.events = a.events, nil
	checks := a.checks
	a.checks = map[string]*sdk.ServiceCheck{}
	a.mu.Unlock()
	for _, c := range checks {
		tags := c.Tags
		if len(cfg.ExtendTags) > 0 {
			tags = splitTags(extendTags(strings.Join(tags, ","), cfg.ExtendTags))
		}
		f.Points = append(f.Points, sdk.Point{
			Name: c.Name, Tags: tags, Type: sdk.PointStatus, Value: float64(c.Status),
			Timestamp: ts, Hostname: orDefault(c.Hostname, cfg.Hostname), Message: c.Message,
		})
	}
	return f
}

func appendPoints(out []sdk.Point, se *series, cfg *Config, ts int64) []sdk.Point {
	tags := splitTags(se.tags)
	p := sdk.Point{Tags: tags, Timestamp: ts, Hostname: cfg.Hostname}
	switch se.typ {
	case sdk.Counter:
		p.Name, p.Type, p.Value = se.name, sdk.PointCounter, se.value
		return append(out, p)
	case sdk.Gauge:
		p.Name, p.Type, p.Value = se.name, sdk.PointGauge, se.value
		return append(out, p)
	case sdk.Set:
		p.Name, p.Type, p.Value = se.name, sdk.PointGauge, float64(se.set.Estimate())
		return append(out, p)
	case sdk.Histogram, sdk.Timer:
		return appendHistogram(out, se, cfg, p)
	}
	return out
}

// appendHistogram emits Veneur's aggregates and percentiles of a digest.
func appendHistogram(out []sdk.Point, se *series, cfg *Config, p sdk.Point) []sdk.Point {
	d := se.digest
	emit := func(suffix string, typ sdk.PointType, v float64) {
		p.Name, p.Type, p.Value = se.name+suffix, typ, v
		out = append(out, p)
	}
	agg := cfg.Aggregates
	if agg&Max != 0 {
		emit(".max", sdk.PointGauge, d.Max())
	}
	if agg&Min != 0 {
		emit(".min", sdk.PointGauge, d.Min())
	}
	if agg&Sum != 0 {
		emit(".sum", sdk.PointGauge, d.Sum())
	}
	if agg&Avg != 0 {
		emit(".avg", sdk.PointGauge, d.Sum()/d.Count())
	}
	if agg&Count != 0 {
		emit(".count", sdk.PointCounter, d.Count())
	}
	if agg&Median != 0 {
		emit(".median", sdk.PointGauge, d.Quantile(0.5))
	}
	if agg&HMean != 0 {
		hm := d.Count() / d.ReciprocalSum()
		if math.IsNaN(hm) {
			hm = 0
		}
		emit(".hmean", sdk.PointGauge, hm)
	}
	for _, q := range cfg.Percentiles {
		emit(PercentileSuffix(q), sdk.PointGauge, d.Quantile(q))
	}
	return out
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
// into a series already there.
func extendInto(m map[string]*series, se *series, extra []string) {
	se.tags = extendTags(se.tags, extra)
	key := string([]byte{byte(se.scope), byte(se.typ)}) + se.name + "\x00" + se.tags
	prev, ok := m[key]
	if !ok {
		m[key] = se
		return
	}
	switch se.typ {
	case sdk.Counter:
		prev.value += se.value
	case sdk.Gauge:
		prev.value = se.value // both were written this interval; either is the last
	case sdk.Histogram, sdk.Timer:
		prev.digest.Merge(se.digest)
	case sdk.Set:
		prev.set.Merge(se.set)
	}
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
