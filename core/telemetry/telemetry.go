// Package telemetry keeps veneurd's own metrics under Veneur's names
// (veneur.*), so that dashboards built for Veneur keep working. Counting is an
// atomic add on a *Counter the caller looked up once: nothing on the packet
// path allocates or takes a lock. The registry is read two ways: as points
// flushed through the pipeline like any metric (tagged veneurd:self), and in
// the Prometheus text format on the admin address.
package telemetry

import (
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/sdk"
)

// SelfTag marks the points of veneurd's own metrics.
const SelfTag = "veneurd:self"

// Names of the self-metrics, as Veneur calls them.
const (
	PacketErrors        = "veneur.packet.error_total"                  // packet_type, reason
	ReceivedPerProtocol = "veneur.listen.received_per_protocol_total"  // protocol
	ListenDrops         = "veneur.listen.drops_total"                  // listener
	MetricsProcessed    = "veneur.worker.metrics_processed_total"      //
	MetricsFlushed      = "veneur.worker.metrics_flushed_total"        // metric_type
	MetricsDropped      = "veneur.worker.metrics_dropped_total"        // reason (dropped_by_rule, series_limit), rule
	FlushDuration       = "veneur.flush.duration_ns"                   // cut, aggregate, route and pack
	FlushTotalDuration  = "veneur.flush.total_duration_ns"             // from the interval's end to every sink's delivery
	PointsDropped       = "veneur.flush.points_dropped_total"          // reason (veneurd's own: points not finite)
	SinkMetricsFlushed  = "veneur.sink.metrics_flushed_total"          // sink
	SinkFlushErrors     = "veneur.sink.flush_error_total"              // sink
	SinkMetricsDropped  = "veneur.sink.metrics_dropped_total"          // sink, reason (a tag policy's limit)
	SinkFlushDuration   = "veneur.sink.metric_flush_total_duration_ns" // sink
	PluginRestarts      = "veneur.plugin.restarts_total"               // plugin
	PluginCountsDropped = "veneur.plugin.counts_dropped_total"         // sink or source: a plugin's own counts past its bound of series
	ConfigReloads       = "veneur.config.reload_total"                 //
	ConfigReloadErrors  = "veneur.config.reload_error_total"           //
	ConfigHash          = "veneur.config.hash"                         // the config hash's first 32 bits
	ConfigLoadTime      = "veneur.config.load_timestamp"               // Unix seconds
	GCNumber            = "veneur.gc.number"                           //
	HeapAllocBytes      = "veneur.mem.heap_alloc_bytes"                //
)

// ReasonSeriesLimit is MetricsDropped's reason for the samples of new
// series past a limits block's limits.
const ReasonSeriesLimit = "series_limit"

type kind uint8

const (
	kindCounter kind = iota
	kindGauge
)

// Registry holds self-metrics. Its methods may be called concurrently.
type Registry struct {
	mu      sync.Mutex
	metrics map[string]*metric
}

type metric struct {
	name string
	tags []string // sorted
	kind kind
	v    atomic.Uint64 // a count, or a gauge's float64 bits
	fn   func() float64
	sent uint64 // the count at the last Points; guarded by Registry.mu
}

// New returns an empty registry.
func New() *Registry { return &Registry{metrics: map[string]*metric{}} }

func (r *Registry) get(name string, k kind, tags []string) *metric {
	tags = append([]string(nil), tags...)
	sort.Strings(tags)
	key := name + "\x00" + strings.Join(tags, ",")
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.metrics[key]
	if !ok {
		m = &metric{name: name, tags: tags, kind: k}
		r.metrics[key] = m
	}
	return m
}

// Counter is a monotonic count.
type Counter struct{ m *metric }

// Counter returns the counter name with tags ("key:value"), creating it at
// zero. Look counters up once and keep them: Add is the cheap part.
func (r *Registry) Counter(name string, tags ...string) Counter {
	return Counter{r.get(name, kindCounter, tags)}
}

// Add adds n.
func (c Counter) Add(n uint64) { c.m.v.Add(n) }

// Inc adds one.
func (c Counter) Inc() { c.m.v.Add(1) }

// Value returns the count.
func (c Counter) Value() uint64 { return c.m.v.Load() }

// Gauge is a value that goes up and down.
type Gauge struct{ m *metric }

// Gauge returns the gauge name with tags.
func (r *Registry) Gauge(name string, tags ...string) Gauge {
	return Gauge{r.get(name, kindGauge, tags)}
}

// Set sets the gauge.
func (g Gauge) Set(v float64) { g.m.v.Store(math.Float64bits(v)) }

// Value returns the value last set.
func (g Gauge) Value() float64 { return math.Float64frombits(g.m.v.Load()) }

// GaugeFunc registers a gauge read by calling fn when the registry is read.
func (r *Registry) GaugeFunc(name string, fn func() float64, tags ...string) {
	m := r.get(name, kindGauge, tags)
	r.mu.Lock()
	m.fn = fn
	r.mu.Unlock()
}

// CounterValue returns a counter's value (0 if it does not exist), for tests
// and health checks.
func (r *Registry) CounterValue(name string, tags ...string) uint64 {
	tags = append([]string(nil), tags...)
	sort.Strings(tags)
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.metrics[name+"\x00"+strings.Join(tags, ",")]; ok {
		return m.v.Load()
	}
	return 0
}

// Counters returns the value of each counter named name whose tags include
// every one of with, keyed by the value of its tag key by ("reason" for
// "reason:series_limit"); counters without that tag are left out.
func (r *Registry) Counters(name, by string, with ...string) map[string]uint64 {
	out := map[string]uint64{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.metrics {
		if m.name != name || m.kind != kindCounter || !hasAll(m.tags, with) {
			continue
		}
		for _, t := range m.tags {
			if v, ok := strings.CutPrefix(t, by+":"); ok {
				out[v] += m.v.Load()
			}
		}
	}
	return out
}

func hasAll(tags, want []string) bool {
	for _, w := range want {
		found := false
		for _, t := range tags {
			found = found || t == w
		}
		if !found {
			return false
		}
	}
	return true
}

func (r *Registry) sorted() []*metric {
	out := make([]*metric, 0, len(r.metrics))
	for _, m := range r.metrics {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].name != out[j].name {
			return out[i].name < out[j].name
		}
		return strings.Join(out[i].tags, ",") < strings.Join(out[j].tags, ",")
	})
	return out
}

func (m *metric) value() float64 {
	if m.fn != nil {
		return m.fn()
	}
	if m.kind == kindCounter {
		return float64(m.v.Load())
	}
	return math.Float64frombits(m.v.Load())
}

// Points returns the self-metrics as points for one flush: counters as what
// they counted since the previous call (left out when nothing), gauges as
// their value. Each point carries the veneurd:self tag.
func (r *Registry) Points(ts int64, hostname string) []sdk.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sdk.Point
	for _, m := range r.sorted() {
		tags := append(append(make([]string, 0, len(m.tags)+1), m.tags...), SelfTag)
		sort.Strings(tags)
		p := sdk.Point{Name: m.name, Tags: tags, Timestamp: ts, Hostname: hostname}
		if m.kind == kindCounter {
			now := m.v.Load()
			if now == m.sent {
				continue
			}
			p.Type, p.Value = sdk.PointCounter, float64(now-m.sent)
			m.sent = now
		} else {
			p.Type, p.Value = sdk.PointGauge, m.value()
		}
		out = append(out, p)
	}
	return out
}

// WritePrometheus writes every self-metric in the Prometheus text format, as
// expfmt writes it: dots become underscores, tags "k:v" become labels,
// counters are totals.
func (r *Registry) WritePrometheus(w io.Writer) error {
	r.mu.Lock()
	ms := r.sorted()
	r.mu.Unlock()
	families := map[string]*dto.MetricFamily{}
	var names []string
	for _, m := range ms {
		name := promName(m.name)
		f, ok := families[name]
		if !ok {
			typ := dto.MetricType_GAUGE
			if m.kind == kindCounter {
				typ = dto.MetricType_COUNTER
			}
			f = &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum()}
			families[name] = f
			names = append(names, name)
		}
		pm := &dto.Metric{Label: promLabels(m.tags)}
		v := m.value()
		if f.GetType() == dto.MetricType_COUNTER {
			pm.Counter = &dto.Counter{Value: proto.Float64(v)}
		} else {
			pm.Gauge = &dto.Gauge{Value: proto.Float64(v)}
		}
		f.Metric = append(f.Metric, pm)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := expfmt.MetricFamilyToText(w, families[name]); err != nil {
			return err
		}
	}
	return nil
}

// promName makes a valid Prometheus metric or label name of s: what is not
// a letter, a digit, '_' or ':' becomes '_', and a leading digit gets a '_'
// before it.
func promName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' {
			return r
		}
		return '_'
	}, s)
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}

// promLabels turns tags "k:v" into label pairs; a tag without ':' is a label
// with an empty value. Values are what plugins sent and may be anything:
// expfmt escapes backslashes, quotes and newlines, but the format wants
// UTF-8, so invalid UTF-8 is replaced by U+FFFD. A label name seen twice
// keeps its first value.
func promLabels(tags []string) []*dto.LabelPair {
	if len(tags) == 0 {
		return nil
	}
	out := make([]*dto.LabelPair, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		k, v, _ := strings.Cut(t, ":")
		k = strings.ReplaceAll(promName(k), ":", "_")
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, &dto.LabelPair{Name: proto.String(k), Value: proto.String(strings.ToValidUTF8(v, "\uFFFD"))})
	}
	return out
}
