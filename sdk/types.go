package sdk

import "math"

// MetricType is the kind of a sample as a client sent it.
type MetricType uint8

// Metric types. The numeric values cross the plugin boundary inside state
// records (internal/state), so they must never be renumbered.
const (
	Counter   MetricType = 1
	Gauge     MetricType = 2
	Histogram MetricType = 3
	Timer     MetricType = 4
	Set       MetricType = 5
	Status    MetricType = 6
)

// String returns the lowercase name of t as used in configs and output.
func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Histogram:
		return "histogram"
	case Timer:
		return "timer"
	case Set:
		return "set"
	case Status:
		return "status"
	}
	return "unknown"
}

// SetValue is the value Writer.Metric takes for a set member whose 64-bit
// hash is hash: the hash's bits, not a number.
func SetValue(hash uint64) float64 { return math.Float64frombits(hash) }

// Scope says which tier aggregates and flushes a metric. It is not part of
// a series' identity: samples of one series (type, name and tags) sent with
// different scopes make one series, aggregated at the widest scope any of
// them asked for in the interval (global, then default, then local).
type Scope uint8

// Scopes. ScopeDefault lets the metric type decide (Veneur's MixedScope):
// counters and gauges flush locally, histograms, timers and sets are
// forwarded when the instance has an upstream.
const (
	ScopeDefault Scope = 0
	ScopeLocal   Scope = 1 // veneurlocalonly: never forwarded
	ScopeGlobal  Scope = 2 // veneurglobalonly: always forwarded
)

// PointType is the type of a flushed point as sinks see it.
type PointType uint8

// Point types, matching Veneur's InterMetric types.
const (
	PointCounter PointType = 1
	PointGauge   PointType = 2
	PointStatus  PointType = 3
)

// String returns "counter", "gauge" or "status".
func (t PointType) String() string {
	switch t {
	case PointCounter:
		return "counter"
	case PointGauge:
		return "gauge"
	case PointStatus:
		return "status"
	}
	return "unknown"
}

// Point is one flushed value. Sinks receive points that may be shared with
// other sinks: a sink must not mutate a Point or its Tags.
type Point struct {
	Name      string
	Tags      []string // sorted
	Type      PointType
	Value     float64
	Timestamp int64 // Unix seconds of the flush
	Hostname  string
	Message   string // status points only
}

// Event is a DogStatsD event (_e).
type Event struct {
	Title          string
	Text           string
	Timestamp      int64 // Unix seconds; 0 means the time it was received
	Hostname       string
	AggregationKey string
	Priority       string // "normal" or "low"
	SourceType     string
	AlertType      string // "error", "warning", "info" or "success"
	Tags           []string
}

// ServiceCheck is a DogStatsD service check (_sc).
type ServiceCheck struct {
	Name      string
	Status    int // 0 ok, 1 warning, 2 critical, 3 unknown
	Timestamp int64
	Hostname  string
	Message   string
	Tags      []string
}
