package otlp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/veneurd/veneurd/sdk"
)

// PacketType is the packet_type of the errors this source counts.
const PacketType = "otlp"

// noRecordedValue is DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK: a point that
// marks a stream's end and carries no value.
const noRecordedValue = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)

// Stream kinds, the first byte of a stream's key: a metric whose type
// changes is a new stream.
const (
	streamSum byte = iota + 1
	streamHistogram
	streamExpHistogram
	streamSummary
)

// converter turns decoded requests into samples. One per goroutine: it
// keeps its buffers from request to request.
type converter struct {
	include map[string]string // resource attribute → tag key
	streams *streams
	// started is when the source started, Unix nanoseconds: a cumulative
	// stream whose start time is later began while the source was
	// listening, so its first point is all increase.
	started uint64

	w   sdk.Writer
	now int64

	tags    tagSet
	hash    maphash.Hash
	sorted  []*commonpb.KeyValue
	vbuf    []byte
	scopeID [8]byte
	name    []byte
	key     []byte
	buckets []bucket
	deltas  []uint64
	deltas2 []uint64

	rejected int64
	firstErr string
}

func newConverter(include []string, st *streams, started uint64) *converter {
	c := &converter{include: map[string]string{}, streams: st, started: started}
	for _, a := range include {
		c.include[a] = a
	}
	if _, ok := c.include[HostAttribute]; ok {
		c.include[HostAttribute] = "host"
	}
	c.hash.SetSeed(st.seed)
	return c
}

// export writes the samples of req to w, and returns how many data points
// it rejected and why the first was.
func (c *converter) export(req *colmetricspb.ExportMetricsServiceRequest, w sdk.Writer, now int64) (rejected int64, msg string) {
	c.w, c.now, c.rejected, c.firstErr = w, now, 0, ""
	for _, rm := range req.ResourceMetrics {
		c.tags.resetResource()
		attrs := rm.GetResource().GetAttributes()
		for _, kv := range attrs {
			if tk, ok := c.include[kv.GetKey()]; ok {
				c.tags.addResource(tk, kv.Value)
			}
		}
		c.tags.sortResource()
		res := c.identity(0, "", "", attrs)
		for _, sm := range rm.ScopeMetrics {
			sc := sm.GetScope()
			binary.LittleEndian.PutUint64(c.scopeID[:], c.identity(res, sc.GetName(), sc.GetVersion(), sc.GetAttributes()))
			for _, m := range sm.Metrics {
				c.metric(m)
			}
		}
	}
	c.w = nil
	return c.rejected, c.firstErr
}

// identity hashes a resource (parent 0, no name) or a scope of a resource:
// all of its attributes, in key order.
func (c *converter) identity(parent uint64, name, version string, attrs []*commonpb.KeyValue) uint64 {
	c.hash.Reset()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], parent)
	c.hash.Write(b[:])
	c.hash.WriteString(name)
	c.hash.WriteByte(0)
	c.hash.WriteString(version)
	c.hash.WriteByte(0)
	s := append(c.sorted[:0], attrs...)
	if len(s) <= 16 {
		for i := 1; i < len(s); i++ {
			for j := i; j > 0 && s[j-1].GetKey() > s[j].GetKey(); j-- {
				s[j-1], s[j] = s[j], s[j-1]
			}
		}
	} else {
		slices.SortFunc(s, func(a, b *commonpb.KeyValue) int { return strings.Compare(a.GetKey(), b.GetKey()) })
	}
	for _, kv := range s {
		c.hash.WriteString(kv.GetKey())
		c.hash.WriteByte(0)
		c.vbuf = appendValue(c.vbuf[:0], kv.GetValue(), 0)
		c.hash.Write(c.vbuf)
		c.hash.WriteByte(0)
	}
	clear(s)
	c.sorted = s[:0]
	return c.hash.Sum64()
}

// reject counts n data points of metric name rejected for reason.
func (c *converter) reject(name, reason string, n int) {
	for range n {
		c.w.Error(PacketType, reason)
	}
	c.rejected += int64(n)
	if c.firstErr == "" {
		c.firstErr = fmt.Sprintf("metric %q: %d data points rejected: %s", name, n, reason)
	}
}

func points(m *metricspb.Metric) int {
	switch d := m.Data.(type) {
	case *metricspb.Metric_Gauge:
		return len(d.Gauge.GetDataPoints())
	case *metricspb.Metric_Sum:
		return len(d.Sum.GetDataPoints())
	case *metricspb.Metric_Histogram:
		return len(d.Histogram.GetDataPoints())
	case *metricspb.Metric_ExponentialHistogram:
		return len(d.ExponentialHistogram.GetDataPoints())
	case *metricspb.Metric_Summary:
		return len(d.Summary.GetDataPoints())
	}
	return 0
}

func (c *converter) metric(m *metricspb.Metric) {
	if m.Name == "" {
		c.reject("", ReasonNoName, points(m))
		return
	}
	c.name = append(c.name[:0], m.Name...)
	const (
		delta      = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		cumulative = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	)
	switch d := m.Data.(type) {
	case *metricspb.Metric_Gauge:
		for _, p := range d.Gauge.DataPoints {
			if v, ok := c.number(p); ok {
				c.w.Metric(sdk.Gauge, sdk.ScopeDefault, c.name, c.tags.point(p.Attributes), v, 1)
			}
		}
	case *metricspb.Metric_Sum:
		s := d.Sum
		switch {
		case s.AggregationTemporality == delta:
			// Monotonic or not, a delta is what the interval added.
			for _, p := range s.DataPoints {
				if v, ok := c.number(p); ok {
					c.w.Metric(sdk.Counter, sdk.ScopeDefault, c.name, c.tags.point(p.Attributes), v, 1)
				}
			}
		case s.AggregationTemporality == cumulative && s.IsMonotonic:
			for _, p := range s.DataPoints {
				if v, ok := c.number(p); ok {
					c.cumulativeSum(p, v)
				}
			}
		case s.AggregationTemporality == cumulative:
			// A cumulative sum that goes up and down (an UpDownCounter:
			// queue length, connections open) is a level: its value, not
			// its change, is what is wanted.
			for _, p := range s.DataPoints {
				if v, ok := c.number(p); ok {
					c.w.Metric(sdk.Gauge, sdk.ScopeDefault, c.name, c.tags.point(p.Attributes), v, 1)
				}
			}
		default:
			c.reject(m.Name, ReasonBadTemporality, len(s.DataPoints))
		}
	case *metricspb.Metric_Histogram:
		h := d.Histogram
		if h.AggregationTemporality != delta && h.AggregationTemporality != cumulative {
			c.reject(m.Name, ReasonBadTemporality, len(h.DataPoints))
			return
		}
		for _, p := range h.DataPoints {
			if p.Flags&noRecordedValue == 0 {
				c.histogram(p, h.AggregationTemporality == cumulative)
			}
		}
	case *metricspb.Metric_ExponentialHistogram:
		h := d.ExponentialHistogram
		if h.AggregationTemporality != delta && h.AggregationTemporality != cumulative {
			c.reject(m.Name, ReasonBadTemporality, len(h.DataPoints))
			return
		}
		for _, p := range h.DataPoints {
			if p.Flags&noRecordedValue == 0 {
				c.expHistogram(p, h.AggregationTemporality == cumulative)
			}
		}
	case *metricspb.Metric_Summary:
		for _, p := range d.Summary.DataPoints {
			if p.Flags&noRecordedValue == 0 {
				c.summary(p)
			}
		}
	default:
		// Nothing to reject point by point, but the sender should know.
		c.w.Error(PacketType, ReasonNoData)
		if c.firstErr == "" {
			c.firstErr = fmt.Sprintf("metric %q has no data (gauge, sum, histogram, exponential histogram or summary)", m.Name)
		}
	}
}

// number returns a number point's value, rejecting the point if it has
// none, or one that is not finite; ok is false for a point to skip.
func (c *converter) number(p *metricspb.NumberDataPoint) (float64, bool) {
	if p.Flags&noRecordedValue != 0 {
		return 0, false
	}
	var v float64
	switch x := p.Value.(type) {
	case *metricspb.NumberDataPoint_AsDouble:
		v = x.AsDouble
	case *metricspb.NumberDataPoint_AsInt:
		v = float64(x.AsInt)
	default:
		c.reject(string(c.name), ReasonNoValue, 1)
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.reject(string(c.name), ReasonInvalidValue, 1)
		return 0, false
	}
	return v, true
}

// mode is how a cumulative point relates to its stream's last.
type mode uint8

const (
	modeOutOfOrder mode = iota // older than the last: dropped
	modeRemember               // the first of a stream that began before the source: remembered only
	modeFull                   // all of its value is new: a stream begun since, or a reset
	modeDiff                   // the increase is the difference with the last
)

// advance decides how the point (start, t) counts against st, and records
// its times.
func (c *converter) advance(st *stream, fresh bool, start, t uint64) mode {
	if fresh {
		st.start, st.time = start, t
		if start != 0 && start >= c.started {
			return modeFull
		}
		return modeRemember
	}
	if t != 0 && st.time != 0 && t < st.time {
		return modeOutOfOrder
	}
	reset := start != 0 && st.start != 0 && start != st.start
	st.start, st.time = start, t
	if reset {
		return modeFull
	}
	return modeDiff
}

// streamKey makes the key of the stream of the current metric with tags
// (the point's, sorted) in c.key.
func (c *converter) streamKey(kind byte, tags []byte) []byte {
	k := append(c.key[:0], kind)
	k = append(k, c.scopeID[:]...)
	k = append(k, c.name...)
	k = append(k, 0xff)
	k = append(k, tags...)
	c.key = k
	return k
}

// stream finds the point's stream, locked; nil (and the point rejected)
// when the table is full.
func (c *converter) stream(kind byte, tags []byte) (*stream, *streamShard, bool) {
	st, sh, fresh := c.streams.get(c.streamKey(kind, tags), c.now)
	if st == nil {
		sh.mu.Unlock()
		c.reject(string(c.name), ReasonTooManyStreams, 1)
	}
	return st, sh, fresh
}

// cumulativeSum writes the increase of a monotonic cumulative sum.
func (c *converter) cumulativeSum(p *metricspb.NumberDataPoint, v float64) {
	tags := c.tags.point(p.Attributes)
	st, sh, fresh := c.stream(streamSum, tags)
	if st == nil {
		return
	}
	var inc float64
	switch c.advance(st, fresh, p.StartTimeUnixNano, p.TimeUnixNano) {
	case modeOutOfOrder:
		sh.mu.Unlock()
		c.reject(string(c.name), ReasonOutOfOrder, 1)
		return
	case modeFull:
		inc = v
	case modeDiff:
		inc = v - st.value
		if v < st.value { // a reset the start time did not show
			inc = v
		}
	}
	st.value = v
	sh.mu.Unlock()
	if inc < 0 { // a monotonic sum never adds less than nothing
		inc = 0
	}
	c.w.Metric(sdk.Counter, sdk.ScopeDefault, c.name, tags, inc, 1)
}

// summary writes a summary point: its quantiles as gauges, the increases
// of its count and sum as counters.
func (c *converter) summary(p *metricspb.SummaryDataPoint) {
	for _, q := range p.QuantileValues {
		if !(q.Quantile >= 0 && q.Quantile <= 1) || math.IsNaN(q.Value) || math.IsInf(q.Value, 0) {
			c.reject(string(c.name), ReasonBadSummary, 1)
			return
		}
	}
	if math.IsNaN(p.Sum) || math.IsInf(p.Sum, 0) {
		c.reject(string(c.name), ReasonBadSummary, 1)
		return
	}
	tags := c.tags.point(p.Attributes)
	st, sh, fresh := c.stream(streamSummary, tags)
	if st == nil {
		return
	}
	var count, sum float64
	switch c.advance(st, fresh, p.StartTimeUnixNano, p.TimeUnixNano) {
	case modeOutOfOrder:
		sh.mu.Unlock()
		c.reject(string(c.name), ReasonOutOfOrder, 1)
		return
	case modeFull:
		count, sum = float64(p.Count), p.Sum
	case modeDiff:
		if p.Count < st.count {
			count, sum = float64(p.Count), p.Sum
		} else {
			count, sum = float64(p.Count-st.count), p.Sum-st.sum
		}
	}
	st.count, st.sum = p.Count, p.Sum
	sh.mu.Unlock()
	n := len(c.name)
	for _, q := range p.QuantileValues {
		c.name = appendQuantileSuffix(c.name[:n], q.Quantile)
		c.w.Metric(sdk.Gauge, sdk.ScopeDefault, c.name, tags, q.Value, 1)
	}
	c.name = append(c.name[:n], ".count"...)
	c.w.Metric(sdk.Counter, sdk.ScopeDefault, c.name, tags, count, 1)
	c.name = append(c.name[:n], ".sum"...)
	c.w.Metric(sdk.Counter, sdk.ScopeDefault, c.name, tags, sum, 1)
	c.name = c.name[:n]
}

// appendQuantileSuffix appends Veneur's name for quantile q: .min for 0,
// .max for 1, else as veneurd names a histogram's percentiles
// (core/aggregate.PercentileSuffix): 0.99 is .99percentile, 0.999
// .99_9percentile.
func appendQuantileSuffix(b []byte, q float64) []byte {
	switch q {
	case 0:
		return append(b, ".min"...)
	case 1:
		return append(b, ".max"...)
	}
	pct := math.Round(q*100*1e6) / 1e6 // 0.999*100 is 99.89999999999999
	b = append(b, '.')
	n := len(b)
	b = strconv.AppendFloat(b, pct, 'f', -1, 64)
	if i := bytes.IndexByte(b[n:], '.'); i >= 0 {
		b[n+i] = '_'
	}
	return append(b, "percentile"...)
}
