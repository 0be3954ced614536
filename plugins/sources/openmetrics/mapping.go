package openmetrics

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/veneurd/veneurd/sdk"
)

// The mapping of Prometheus metric families to veneurd samples, as
// veneur-prometheus maps them (see the README's table):
//
//	counter            NAME             counter: the increase since the last scrape
//	gauge, untyped     NAME             gauge
//	summary            NAME.<p>percentile gauges, NAME.sum gauge, NAME.count counter (increase)
//	histogram          NAME.bucket{le:B} counters (increase), NAME.sum gauge, NAME.count counter (increase)
//	gauge histogram    the same names, every one a gauge
//
// A cumulative value becomes the increase since the previous good scrape of
// the same series. The first good scrape of a target only remembers; a
// series first seen on a later scrape counts its whole value (it appeared
// since the previous scrape, as labelled children do when first used); a
// value below the one remembered is a reset of the target, and counts whole
// too: what the target counted since it restarted is certain, what it
// counted between the previous scrape and its restart is lost. This is
// veneur-prometheus's rule, and Prometheus's rate() after a reset.
//
// Each series a target exposes is mapped once, when first seen: its name,
// tags and kind are kept with its remembered value, under the series as
// the target writes it, so that a scrape of series already known costs a
// map lookup a sample and allocates nothing.

// forgetAfter is how many good scrapes a series may be missing from before
// what is kept of it is dropped: long enough that a series a target leaves
// out now and then is not counted whole when it comes back, short enough
// that series which are gone do not pile up.
const forgetAfter = 10

// rules are the block's naming and tagging rules, shared read-only by the
// targets.
type rules struct {
	ignore       []*regexp.Regexp
	ignoreLabels []*regexp.Regexp
	rename       []renameRule
	fixed        []kv // add_tags, sorted by key
	instanceTag  string
	bucketTag    string
}

type renameRule struct {
	re   *regexp.Regexp
	repl string
}

// kv is a tag, or a label, as a key and a value.
type kv struct{ k, v string }

// series is what a target's series maps to, and what is remembered of it.
type series struct {
	skip       bool           // ignored, or not a sample veneurd takes
	typ        sdk.MetricType // sdk.Gauge, or sdk.Counter for a cumulative value
	name, tags []byte
	v          float64 // the last value, of a cumulative series
	has        bool    // v holds a value
	seen       uint32  // the generation of the last good scrape that had it
}

// pending is a sample of the scrape being parsed: nothing is emitted, and
// nothing remembered changes, until the whole body has parsed.
type pending struct {
	s *series
	v float64
}

// mapper turns one target's samples into veneurd's, remembering its series
// between scrapes. It belongs to the target's goroutine.
type mapper struct {
	r        *rules
	instance string // the instance tag's value, or ""

	series  map[string]*series // by the series' bytes as the target writes them
	canon   map[string]*series // by its family and sorted labels: its identity
	gen     uint32
	primed  bool // a good scrape was mapped
	pending []pending

	names     map[string]string // family name -> emitted name, "" when ignored
	labelKeep map[string]bool   // label name -> becomes a tag
	pcts      map[uint64]string // quantile bits -> ".50percentile"

	key    []byte // scratch: a series' key
	ckey   []byte // scratch: a series' canonical key
	labels []kv   // scratch: a series' tags
}

func newMapper(r *rules, instance string) *mapper {
	return &mapper{r: r, instance: instance, series: map[string]*series{}, canon: map[string]*series{},
		names: map[string]string{}, labelKeep: map[string]bool{}, pcts: map[uint64]string{}}
}

// Parts of a family a sample can be.
type part uint8

const (
	partGauge    part = iota // a gauge's, an untyped's value
	partCounter              // a counter's value
	partQuantile             // a summary's quantile
	partSum                  // a summary's or histogram's sum
	partCount                // a summary's or histogram's count
	partBucket               // a histogram's bucket
	partSkip                 // what veneurd takes nothing of (OpenMetrics' _created)
)

// lookup returns the series kept under key, nil if there is none.
func (m *mapper) lookup(key []byte) *series { return m.series[string(key)] }

// build maps a series first seen under key and keeps it. canon is its
// identity, its family and sorted labels: a series the target writes with
// its labels in another order is the one already known. family is the
// family's name (the sample's own name for a gauge, a counter or an
// untyped), labels its labels as exposed (for a quantile or a bucket,
// without the quantile or le label, whose value is bound), and gauges says
// that every part is a gauge (an OpenMetrics gauge histogram).
func (m *mapper) build(key, canon []byte, family string, p part, labels []kv, bound float64, gauges bool) *series {
	if s, ok := m.canon[string(canon)]; ok {
		m.series[string(key)] = s
		return s
	}
	s := &series{}
	m.series[string(key)] = s
	m.canon[string(canon)] = s
	name := m.emittedName(family)
	switch {
	case name == "" || p == partSkip,
		p == partBucket && math.IsNaN(bound),
		p == partQuantile && (math.IsNaN(bound) || math.IsInf(bound, 0)):
		s.skip = true
		return s
	}
	s.typ = sdk.Gauge
	if !gauges && (p == partCounter || p == partCount || p == partBucket) {
		s.typ = sdk.Counter
	}
	m.tagList(labels)
	var suffix string
	switch p {
	case partQuantile:
		suffix = m.percentile(bound)
	case partSum:
		suffix = ".sum"
	case partCount:
		suffix = ".count"
	case partBucket:
		if m.r.bucketTag == "" {
			// veneur-prometheus's names: fmt's %f, "+Inf" for the last.
			suffix = ".le" + strconv.FormatFloat(bound, 'f', 6, 64)
			if math.IsInf(bound, 1) {
				suffix = ".le+Inf"
			}
			break
		}
		suffix = ".bucket"
		// As Prometheus writes a bound: "0.005", "1e+06", "+Inf".
		m.labels = append(m.labels, kv{m.r.bucketTag, strconv.FormatFloat(bound, 'g', -1, 64)})
		slices.SortFunc(m.labels, cmpTag)
	}
	s.name = append([]byte(name), suffix...)
	s.tags = appendTags(nil, m.labels)
	return s
}

// add takes a sample of the scrape being parsed.
func (m *mapper) add(s *series, v float64) {
	if !s.skip {
		m.pending = append(m.pending, pending{s, v})
	}
}

// abort drops the samples of a scrape that failed.
func (m *mapper) abort() {
	clear(m.pending)
	m.pending = m.pending[:0]
}

// commit emits the samples of a scrape that parsed whole, and remembers
// its cumulative values; series missing for forgetAfter scrapes are
// forgotten.
func (m *mapper) commit(w sdk.Writer) {
	m.gen++
	for _, p := range m.pending {
		s, v := p.s, p.v
		if s.seen == m.gen {
			continue // a series twice in one body: the first stands
		}
		s.seen = m.gen
		if s.typ == sdk.Gauge {
			m.gauge(w, s, v)
		} else {
			m.counter(w, s, v)
		}
	}
	m.abort()
	m.primed = true
	for k, s := range m.series {
		if m.gen-s.seen > forgetAfter {
			delete(m.series, k)
		}
	}
	for k, s := range m.canon {
		if m.gen-s.seen > forgetAfter {
			delete(m.canon, k)
		}
	}
	// The caches only grow with new names; a target that makes up names
	// without end must not make them grow without end.
	if len(m.names) > 1<<16 {
		clear(m.names)
	}
	if len(m.labelKeep) > 1<<12 {
		clear(m.labelKeep)
	}
	if len(m.pcts) > 1<<10 {
		clear(m.pcts)
	}
}

// gauge emits v as it is. NaN, which Prometheus uses for "no value" (a
// summary's quantiles before any observation), and ±Inf have no place in an
// aggregate: they are left out.
func (m *mapper) gauge(w sdk.Writer, s *series, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	w.Metric(sdk.Gauge, sdk.ScopeDefault, s.name, s.tags, v, 1)
}

// counter emits the increase of a cumulative series. A value that no
// counter can hold (negative, NaN, +Inf) is left out and not remembered.
func (m *mapper) counter(w sdk.Writer, s *series, v float64) {
	if !(v >= 0) || math.IsInf(v, 1) {
		return
	}
	if !s.has {
		s.v, s.has = v, true
		if m.primed && v > 0 {
			w.Metric(sdk.Counter, sdk.ScopeDefault, s.name, s.tags, v, 1)
		}
		return
	}
	inc := v - s.v
	if v < s.v {
		inc = v // a reset
	}
	s.v = v
	if inc > 0 {
		w.Metric(sdk.Counter, sdk.ScopeDefault, s.name, s.tags, inc, 1)
	}
}

// emittedName returns the name a family is emitted under: renamed by the
// first rule that matches, "" when ignored.
func (m *mapper) emittedName(family string) string {
	if n, ok := m.names[family]; ok {
		return n
	}
	n := family
	for _, re := range m.r.ignore {
		if re.MatchString(family) {
			n = ""
			break
		}
	}
	if n != "" {
		for _, rr := range m.r.rename {
			if idx := rr.re.FindStringSubmatchIndex(family); idx != nil {
				n = string(rr.re.ExpandString(nil, rr.repl, family, idx))
				break
			}
		}
	}
	m.names[family] = n
	return n
}

// percentile names a summary quantile as veneurd names its own percentiles:
// 0.99 -> ".99percentile" as in Veneur, 0.999 -> ".99_9percentile" where
// veneur-prometheus truncated it to ".99percentile", on top of 0.99's.
func (m *mapper) percentile(q float64) string {
	bits := math.Float64bits(q)
	if s, ok := m.pcts[bits]; ok {
		return s
	}
	pct := math.Round(q*100*1e6) / 1e6 // 0.999*100 is 99.89999999999999
	s := "." + strings.Replace(strconv.FormatFloat(pct, 'f', -1, 64), ".", "_", 1) + "percentile"
	m.pcts[bits] = s
	return s
}

// tagList builds a series' sorted tags into m.labels: its labels as k:v,
// less the ignored, the empty (in Prometheus an empty label is no label)
// and those add_tags, instance_tag or the bucket tag replace; then add_tags
// and the instance tag.
func (m *mapper) tagList(labels []kv) {
	m.labels = m.labels[:0]
	for _, l := range labels {
		if l.v == "" || !m.keepLabel(l.k) {
			continue
		}
		m.labels = append(m.labels, kv{sanitize(l.k, true), sanitize(l.v, false)})
	}
	m.labels = append(m.labels, m.r.fixed...)
	if m.instance != "" {
		m.labels = append(m.labels, kv{m.r.instanceTag, m.instance})
	}
	slices.SortFunc(m.labels, cmpTag)
	// Two labels whose names sanitize alike would make a series with one
	// key twice: the first stands.
	m.labels = slices.CompactFunc(m.labels, func(a, b kv) bool { return a.k == b.k })
}

// keepLabel reports whether a label becomes a tag: not when ignored, nor
// when its key is one add_tags, instance_tag or the bucket tag set.
func (m *mapper) keepLabel(name string) bool {
	if keep, ok := m.labelKeep[name]; ok {
		return keep
	}
	key := sanitize(name, true)
	keep := key != m.r.instanceTag && key != m.r.bucketTag
	for _, f := range m.r.fixed {
		if f.k == key {
			keep = false
		}
	}
	for _, re := range m.r.ignoreLabels {
		if re.MatchString(name) {
			keep = false
		}
	}
	m.labelKeep[name] = keep
	return keep
}

func appendTags(b []byte, tags []kv) []byte {
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, t.k...), ':'), t.v...)
	}
	return b
}

// cmpTag orders tags as their "k:v" strings sort, without building them.
func cmpTag(a, b kv) int {
	n := min(len(a.k), len(b.k))
	if c := strings.Compare(a.k[:n], b.k[:n]); c != 0 {
		return c
	}
	switch {
	case len(a.k) == len(b.k):
		return strings.Compare(a.v, b.v)
	case len(a.k) < len(b.k):
		return cmpByte(':', b.k[n])
	default:
		return cmpByte(a.k[n], ':')
	}
}

func cmpByte(a, b byte) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sanitize makes a label name or value fit in a tag: a ',' would split the
// tag list, and a ':' in a key would end the key early; each becomes '_'.
// Labels hold neither but rarely, so this seldom allocates.
func sanitize(s string, key bool) string {
	cut := ","
	if key {
		cut = ",:"
	}
	if !strings.ContainsAny(s, cut) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == ',' || key && r == ':' {
			return '_'
		}
		return r
	}, s)
}
