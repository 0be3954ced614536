// Package aggregate keeps one flush interval's state: counters summed,
// gauges last-write, histograms and timers in merging t-digests, sets in
// HyperLogLog sketches, service checks last-write (flushed as status points). State is sharded by series
// key so that several ingesting goroutines rarely meet on a lock. Flush takes
// the interval's state away whole and turns it into points; a series that saw
// no samples in an interval emits nothing.
package aggregate

import (
	"encoding/binary"
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

	percentileSuffixes []string
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

// shard holds its series in a slab, indexed by the key's 64-bit hash: one
// allocation for all of them rather than one each, which is what makes a
// million series cheap, and the key is hashed once per sample (the same hash
// picks the shard). Keys whose hash is already taken by another key, which
// is vanishingly rare, go to a second index by key.
type shard struct {
	mu      sync.Mutex
	index   map[uint64]int32 // key hash -> position in series
	collide map[string]int32 // key -> position, for keys whose hash was taken
	series  []series
	_       [40]byte // keep neighbouring shards' locks off one cache line
}

// find returns the position of the series keyed key, hashed h.
func (sh *shard) find(h uint64, key []byte) (int32, bool) {
	i, ok := sh.index[h]
	if !ok {
		return 0, false
	}
	if sh.series[i].key == string(key) {
		return i, true
	}
	i, ok = sh.collide[string(key)]
	return i, ok
}

// insert records se, keyed key and hashed h, and returns its position.
func (sh *shard) insert(h uint64, se series) int32 {
	i := int32(len(sh.series))
	sh.series = append(sh.series, se)
	if _, taken := sh.index[h]; !taken {
		sh.index[h] = i
		return i
	}
	if sh.collide == nil {
		sh.collide = map[string]int32{}
	}
	sh.collide[se.key] = i
	return i
}

// series is one series' state. Its key (see frame.Sample.Key: scope, type,
// name and tag lengths, name, tags) is all it knows of its identity.
type series struct {
	key    string
	value  float64
	digest *tdigest.Merging
	set    *hyperloglog.Sketch
}

func (se *series) typ() sdk.MetricType { return sdk.MetricType(se.key[1]) }
func (se *series) scope() sdk.Scope    { return sdk.Scope(se.key[0]) }

// name and tags are slices of the key.
func (se *series) name() string {
	nl := int(binary.LittleEndian.Uint16([]byte(se.key[2:4])))
	return se.key[6 : 6+nl]
}

func (se *series) tags() string {
	nl := int(binary.LittleEndian.Uint16([]byte(se.key[2:4])))
	return se.key[6+nl:]
}

// seriesKey builds a key like frame.Sample.Key.
func seriesKey(scope sdk.Scope, typ sdk.MetricType, name, tags string) string {
	b := make([]byte, 6, 6+len(name)+len(tags))
	b[0], b[1] = byte(scope), byte(typ)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(name)))
	binary.LittleEndian.PutUint16(b[4:], uint16(len(tags)))
	b = append(append(b, name...), tags...)
	return string(b)
}

// New returns an empty Aggregator.
func New(cfg Config) *Aggregator {
	n := max(runtime.GOMAXPROCS(0)*4, 8)
	a := &Aggregator{seed: maphash.MakeSeed(), shards: make([]shard, n), checks: map[string]*sdk.ServiceCheck{}}
	for i := range a.shards {
		a.shards[i].index = map[uint64]int32{}
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
	cfg.percentileSuffixes = make([]string, len(cfg.Percentiles))
	for i, q := range cfg.Percentiles {
		cfg.percentileSuffixes[i] = PercentileSuffix(q)
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
	h := maphash.Bytes(a.seed, s.Key)
	sh := &a.shards[h%uint64(len(a.shards))]
	sh.mu.Lock()
	i, ok := sh.find(h, s.Key)
	if !ok {
		se, ok := a.newSeries(s, string(s.Key))
		if !ok {
			sh.mu.Unlock()
			return
		}
		i = sh.insert(h, se)
	}
	se := &sh.series[i]
	switch se.typ() {
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

// newSeries makes a series for s, keyed by key (the map key: one allocation
// holds the series' whole identity); false for an unknown type.
func (a *Aggregator) newSeries(s *frame.Sample, key string) (series, bool) {
	se := series{key: key}
	cfg := a.cfg.Load()
	switch sdk.MetricType(s.Type) {
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
		return se, false
	}
	return se, true
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

// Emitter receives the points of a flush. All points of one series come in
// a row and share one tags string (sorted, comma-joined); a point's name is
// name+suffix (suffix is "" but for histogram and timer outputs), so that no
// name is built just to be copied.
type Emitter interface {
	Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string)
}

// FlushTo takes the interval's state and emits its points, then returns its
// events. The aggregator is empty afterwards. Each shard's state is released
// as soon as it has been emitted, so a flush holds little beyond what e keeps.
func (a *Aggregator) FlushTo(e Emitter) []sdk.Event {
	cfg := a.cfg.Load()
	var extended map[string]*series
	if len(cfg.ExtendTags) > 0 {
		extended = map[string]*series{}
	}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		taken := sh.series
		// The next interval starts empty and grows: sizing it like this one
		// would hold both in memory at once, at the flush, which is the peak.
		sh.index = map[uint64]int32{}
		sh.collide = nil
		sh.series = nil
		sh.mu.Unlock()
		for j := range taken {
			if extended != nil {
				extendInto(extended, &taken[j], cfg.ExtendTags)
				continue
			}
			emitSeries(e, &taken[j], cfg)
		}
	}
	for _, se := range extended {
		emitSeries(e, se, cfg)
	}
	a.mu.Lock()
	events := a.events
	a.events = nil
	checks := a.checks
	a.checks = map[string]*sdk.ServiceCheck{}
	a.mu.Unlock()
	if len(cfg.ExtendTags) > 0 {
		for i := range events {
			sort.Strings(events[i].Tags)
			events[i].Tags = splitTags(extendTags(strings.Join(events[i].Tags, ","), cfg.ExtendTags))
		}
	}
	for _, c := range checks {
		tags := strings.Join(c.Tags, ",")
		if len(cfg.ExtendTags) > 0 {
			tags = extendTags(tags, cfg.ExtendTags)
		}
		e.Point(c.Name, "", tags, sdk.PointStatus, float64(c.Status), orDefault(c.Hostname, cfg.Hostname), c.Message)
	}
	return events
}

// Flush is FlushTo collecting the points as an sdk.Flush stamped ts (Unix
// seconds).
func (a *Aggregator) Flush(ts int64) *sdk.Flush {
	c := &Collector{Timestamp: ts}
	events := a.FlushTo(c)
	return &sdk.Flush{Timestamp: ts, Points: c.Points, Events: events}
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

func emitSeries(e Emitter, se *series, cfg *Config) {
	switch se.typ() {
	case sdk.Counter:
		e.Point(se.name(), "", se.tags(), sdk.PointCounter, se.value, cfg.Hostname, "")
	case sdk.Gauge:
		e.Point(se.name(), "", se.tags(), sdk.PointGauge, se.value, cfg.Hostname, "")
	case sdk.Set:
		e.Point(se.name(), "", se.tags(), sdk.PointGauge, float64(se.set.Estimate()), cfg.Hostname, "")
	case sdk.Histogram, sdk.Timer:
		emitHistogram(e, se, cfg)
	}
}

// emitHistogram emits Veneur's aggregates and percentiles of a digest.
func emitHistogram(e Emitter, se *series, cfg *Config) {
	d := se.digest
	name, tags := se.name(), se.tags()
	emit := func(suffix string, typ sdk.PointType, v float64) {
		e.Point(name, suffix, tags, typ, v, cfg.Hostname, "")
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
	for i, q := range cfg.Percentiles {
		emit(cfg.percentileSuffixes[i], sdk.PointGauge, d.Quantile(q))
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
// into a series already there.
func extendInto(m map[string]*series, se *series, extra []string) {
	se.key = seriesKey(se.scope(), se.typ(), se.name(), extendTags(se.tags(), extra))
	prev, ok := m[se.key]
	if !ok {
		m[se.key] = se
		return
	}
	switch se.typ() {
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
