package openmetrics

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

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

// forgetAfter is how many good scrapes a series may be missing from before
// its remembered value is dropped: long enough that a series a target
// leaves out now and then is not counted whole when it comes back, short
// enough that series which are gone do not pile up.
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

// kv is a tag as a key and a value.
type kv struct{ k, v string }

// entry is what is remembered of a cumulative series.
type entry struct {
	v    float64
	seen uint32 // the generation of the last scrape that had it
}

// Roles of a family's parts in a series key.
const (
	roleValue byte = iota
	roleCount
	roleBucket
)

// mapper turns one target's metric families into samples, remembering its
// cumulative series between scrapes. It belongs to the target's goroutine.
type mapper struct {
	r        *rules
	instance string // the instance tag's value, or ""

	series map[string]*entry
	gen    uint32
	primed bool // a good scrape was mapped

	names     map[string]string // family name -> emitted name, "" when ignored
	labelKeep map[string]bool   // label name -> becomes a tag
	pcts      map[uint64]string // quantile bits -> ".50percentile"

	// Scratch, reused for every series.
	key, name, tags, before, after []byte
	labels                         []kv
	sampleCount                    int // samples emitted by the scrape
}

func newMapper(r *rules, instance string) *mapper {
	return &mapper{r: r, instance: instance, series: map[string]*entry{},
		names: map[string]string{}, labelKeep: map[string]bool{}, pcts: map[uint64]string{}}
}

// begin starts mapping a scrape.
func (m *mapper) begin() {
	m.gen++
	m.sampleCount = 0
}

// end closes a scrape mapped whole: the next one computes increases from
// this one, and series missing for forgetAfter scrapes are forgotten.
func (m *mapper) end() {
	m.primed = true
	for k, e := range m.series {
		if m.gen-e.seen > forgetAfter {
			delete(m.series, k)
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

// family maps one metric family.
func (m *mapper) family(w sdk.Writer, f *dto.MetricFamily) {
	name := m.emittedName(f.GetName())
	if name == "" {
		return
	}
	typ := f.GetType()
	for _, mt := range f.GetMetric() {
		if mt == nil {
			continue
		}
		m.keyPrefix(f.GetName(), mt.GetLabel())
		m.tagList(mt.GetLabel())
		switch typ {
		case dto.MetricType_COUNTER:
			m.counter(w, roleValue, 0, m.named(name, ""), mt.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			m.gauge(w, m.named(name, ""), mt.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			m.gauge(w, m.named(name, ""), mt.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			s := mt.GetSummary()
			if s == nil {
				continue
			}
			for _, q := range s.GetQuantile() {
				if q != nil && !math.IsNaN(q.GetQuantile()) && !math.IsInf(q.GetQuantile(), 0) {
					m.gauge(w, m.named(name, m.percentile(q.GetQuantile())), q.GetValue())
				}
			}
			m.gauge(w, m.named(name, ".sum"), s.GetSampleSum())
			m.counter(w, roleCount, 0, m.named(name, ".count"), float64(s.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			m.histogram(w, name, mt.GetHistogram(), typ == dto.MetricType_GAUGE_HISTOGRAM)
		}
	}
}

func (m *mapper) histogram(w sdk.Writer, name string, h *dto.Histogram, gauges bool) {
	if h == nil {
		return
	}
	count := float64(h.GetSampleCount())
	if h.SampleCountFloat != nil {
		count = h.GetSampleCountFloat()
	}
	m.gauge(w, m.named(name, ".sum"), h.GetSampleSum())
	if gauges {
		m.gauge(w, m.named(name, ".count"), count)
	} else {
		m.counter(w, roleCount, 0, m.named(name, ".count"), count)
	}
	tagged := m.r.bucketTag != ""
	if tagged {
		m.splitTags()
	}
	for _, b := range h.GetBucket() {
		if b == nil {
			continue
		}
		ub := b.GetUpperBound()
		if math.IsNaN(ub) {
			continue
		}
		v := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			v = b.GetCumulativeCountFloat()
		}
		var n []byte
		if tagged {
			n = m.named(name, ".bucket")
			m.bucketTags(ub)
		} else {
			// veneur-prometheus's names: fmt's %f, "+Inf" for the last.
			n = append(append(append(m.name[:0], name...), ".le"...), "+Inf"...)
			if !math.IsInf(ub, 1) {
				n = strconv.AppendFloat(append(append(m.name[:0], name...), ".le"...), ub, 'f', 6, 64)
			}
			m.name = n
		}
		if gauges {
			m.gauge(w, n, v)
		} else {
			m.counter(w, roleBucket, ub, n, v)
		}
	}
	if tagged {
		m.joinTags() // the tags without the bucket's, for what follows
	}
}

// gauge emits v as it is. NaN, which Prometheus uses for "no value" (a
// summary's quantiles before any observation), and ±Inf have no place in an
// aggregate: they are left out.
func (m *mapper) gauge(w sdk.Writer, name []byte, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	w.Metric(sdk.Gauge, sdk.ScopeDefault, name, m.tags, v, 1)
	m.sampleCount++
}

// counter emits the increase of the cumulative series whose key is the
// current prefix with role and bound. A value that no counter can hold
// (negative, NaN, ±Inf) is left out and not remembered.
func (m *mapper) counter(w sdk.Writer, role byte, bound float64, name []byte, v float64) {
	if !(v >= 0) || math.IsInf(v, 1) {
		return
	}
	n := len(m.key)
	m.key = append(m.key, role)
	if role == roleBucket {
		m.key = appendUint64(m.key, math.Float64bits(bound))
	}
	e, ok := m.series[string(m.key)]
	if !ok {
		m.series[string(m.key)] = &entry{v: v, seen: m.gen}
		m.key = m.key[:n]
		if m.primed && v > 0 {
			w.Metric(sdk.Counter, sdk.ScopeDefault, name, m.tags, v, 1)
			m.sampleCount++
		}
		return
	}
	m.key = m.key[:n]
	if e.seen == m.gen {
		return // a series twice in one body: the first stands
	}
	inc := v - e.v
	if v < e.v {
		inc = v // a reset
	}
	e.v, e.seen = v, m.gen
	if inc > 0 {
		w.Metric(sdk.Counter, sdk.ScopeDefault, name, m.tags, inc, 1)
		m.sampleCount++
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

// named returns name+suffix in the scratch name buffer.
func (m *mapper) named(name, suffix string) []byte {
	m.name = append(append(m.name[:0], name...), suffix...)
	return m.name
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

// keyPrefix writes the series key of a family's metric, less its role: the
// family name and the labels as exposed, the identity the target gives it.
func (m *mapper) keyPrefix(family string, labels []*dto.LabelPair) {
	k := append(m.key[:0], family...)
	for _, l := range labels {
		if l == nil {
			continue
		}
		k = append(k, 0xff)
		k = append(k, l.GetName()...)
		k = append(k, 0xfe)
		k = append(k, l.GetValue()...)
	}
	m.key = append(k, 0xfd)
}

// tagList builds the metric's sorted tags into m.labels and m.tags: its
// labels as k:v, less the ignored, the empty (in Prometheus an empty label
// is no label) and those add_tags, instance_tag or the bucket tag replace;
// then add_tags and the instance tag.
func (m *mapper) tagList(labels []*dto.LabelPair) {
	m.labels = m.labels[:0]
	for _, l := range labels {
		if l == nil || l.GetValue() == "" || !m.keepLabel(l.GetName()) {
			continue
		}
		m.labels = append(m.labels, kv{sanitize(l.GetName(), true), sanitize(l.GetValue(), false)})
	}
	m.labels = append(m.labels, m.r.fixed...)
	if m.instance != "" {
		m.labels = append(m.labels, kv{m.r.instanceTag, m.instance})
	}
	slices.SortFunc(m.labels, cmpTag)
	// Two labels whose names sanitize alike would make a series with one
	// key twice: the first stands.
	m.labels = slices.CompactFunc(m.labels, func(a, b kv) bool { return a.k == b.k })
	m.joinTags()
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

func (m *mapper) joinTags() {
	m.tags = appendTags(m.tags[:0], m.labels)
}

// splitTags prepares bucketTags: the tags before and after the bucket tag's
// place. Tags sort as "k:v" strings; with distinct keys that hold no ':',
// their order is their keys', so the place does not depend on the bound.
func (m *mapper) splitTags() {
	i, _ := slices.BinarySearchFunc(m.labels, kv{k: m.r.bucketTag}, cmpTag)
	m.before = appendTags(m.before[:0], m.labels[:i])
	m.after = appendTags(m.after[:0], m.labels[i:])
}

// bucketTags writes the tags of the bucket with upper bound ub, written as
// Prometheus writes it ("0.005", "1e+06", "+Inf").
func (m *mapper) bucketTags(ub float64) {
	t := append(m.tags[:0], m.before...)
	if len(m.before) > 0 {
		t = append(t, ',')
	}
	t = append(append(t, m.r.bucketTag...), ':')
	t = strconv.AppendFloat(t, ub, 'g', -1, 64)
	if len(m.after) > 0 {
		t = append(append(t, ','), m.after...)
	}
	m.tags = t
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

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
