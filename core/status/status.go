// Package status is what veneurd's admin address says of the running
// pipeline, at /api/status as JSON, at / as a page and to `veneurd top`:
// every block, what flows along each edge of the pipeline's graph right
// now, the state of each plugin process, and the series names that hold the
// most series. Field names are part of the API: fields may be added, none
// is renamed or removed.
package status

import "time"

// Node names of the pipeline's graph besides the sources and sinks, which
// are named by their block addresses (source.dogstatsd.main).
const (
	// NodePipeline is aggregation, drop rules and routing: where every
	// source's samples and every received series go, and every sink's
	// points come from.
	NodePipeline = "pipeline"
	// NodeForward is the tier above, when a forward block is present.
	NodeForward = "forward"
	// NodeReceive is the instances below, when a receive block is present.
	NodeReceive = "receive"
)

// Status is the whole answer.
type Status struct {
	Version  string    `json:"version"`
	Hostname string    `json:"hostname"`
	Time     time.Time `json:"time"`
	// Started is when the daemon started.
	Started time.Time `json:"started"`
	// Ready and Healthy are /readyz's and /healthcheck's verdicts;
	// Problems says why either is false.
	Ready    bool     `json:"ready"`
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems,omitempty"`
	Config   Config   `json:"config"`
	Flush    Flush    `json:"flush"`
	Sources  []Source `json:"sources"`
	// DropRules and Routes are the pipeline node's rules, in config order.
	DropRules []DropRule `json:"drop_rules"`
	Routes    []Route    `json:"routes"`
	Sinks     []Sink     `json:"sinks"`
	Forward   *Forward   `json:"forward,omitempty"`
	Receive   *Receive   `json:"receive,omitempty"`
	// Limits are the pipeline's cardinality limits (the limits block; zero
	// is none), which each source without its own applies, and which bound
	// the series the daemon merges in an interval.
	Limits Limits `json:"limits"`
	// TopNames are the series names with the most series in the last
	// flushed interval, most first. The counts are estimates made in fixed
	// memory: never under the true count, over it by at most about 80 per
	// million series in the interval.
	TopNames []NameCount `json:"top_names"`
	// Edges are the graph's edges with their rates: source -> pipeline,
	// receive -> pipeline, pipeline -> sink and pipeline -> forward.
	Edges []Edge `json:"edges"`
	// Taps are the blocks being tapped (veneurd tap), one entry per tap.
	Taps []string `json:"taps"`
}

// Config is the config in effect.
type Config struct {
	Hash     string    `json:"hash"`
	LoadedAt time.Time `json:"loaded_at"`
	// Path is the file or directory it was read from, "" for the embedded
	// default pipeline.
	Path            string  `json:"path"`
	IntervalSeconds float64 `json:"interval_seconds"`
}

// Flush is the last flush.
type Flush struct {
	// At is the end of the interval it flushed; zero before the first.
	At time.Time `json:"at"`
	// DurationSeconds is the time to collect the sources' state, aggregate,
	// route and pack (veneur.flush.duration_ns); TotalDurationSeconds is
	// that and every sink's delivery (veneur.flush.total_duration_ns).
	DurationSeconds      float64 `json:"duration_seconds"`
	TotalDurationSeconds float64 `json:"total_duration_seconds"`
	// Series is how many series the interval held; Points how many
	// points it emitted, before routing.
	Series uint64 `json:"series"`
	Points uint64 `json:"points"`
}

// Plugin is the state of a block's plugin process.
type Plugin struct {
	Address string `json:"address"` // source.dogstatsd.main
	Type    string `json:"type"`
	Name    string `json:"name"`
	// State is "running"; "down" while its process is not running (being
	// restarted); "failing" while running when its last flush failed (a
	// sink) or it did not hand over its state in time (a source).
	State string `json:"state"`
	// Pid is 0 while the process is being restarted.
	Pid      int    `json:"pid"`
	Running  bool   `json:"running"`
	Restarts uint64 `json:"restarts"`
	// LastError is the last thing that went wrong with the block (a
	// process exit, a failed flush, a late cut) and LastErrorAt when; empty
	// when nothing has. A sink's clears when a flush succeeds.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Source is a source block.
type Source struct {
	Plugin
	Listen []string `json:"listen"`
	// Totals since the block's process started, and rates over the last
	// few seconds: lines (samples, events, checks, rejected lines) read,
	// samples aggregated, lines rejected.
	Received           uint64  `json:"received"`
	Processed          uint64  `json:"processed"`
	Errors             uint64  `json:"errors"`
	ReceivedPerSecond  float64 `json:"received_per_second"`
	ProcessedPerSecond float64 `json:"processed_per_second"`
	// Dropped counts samples the source discarded, by reason:
	// "dropped_by_rule" and "series_limit".
	Dropped map[string]uint64 `json:"dropped"`
	// Limits are the limits the source applies: its own limits block, or
	// the pipeline's.
	Limits Limits `json:"limits"`
	// Limited are the names that hit a limit in the last interval.
	Limited []string `json:"limited,omitempty"`
}

// DropRule is a drop block.
type DropRule struct {
	Name      string  `json:"name"`
	Dropped   uint64  `json:"dropped"`
	PerSecond float64 `json:"per_second"`
}

// Route is a metric_sink_routing block: the sinks of the points it
// matches and of those it does not.
type Route struct {
	Name       string   `json:"name"`
	Matched    []string `json:"matched"`
	NotMatched []string `json:"not_matched"`
}

// Sink is a sink block.
type Sink struct {
	Plugin
	// Flushed counts the points the sink took, FlushErrors its failed
	// flushes. PointsPerSecond is the last flush's points over the
	// interval.
	Flushed         uint64  `json:"flushed"`
	FlushErrors     uint64  `json:"flush_errors"`
	PointsPerSecond float64 `json:"points_per_second"`
	// LastFlushPoints and LastFlushSeconds are the last flush's points and
	// how long its delivery took.
	LastFlushPoints  uint64  `json:"last_flush_points"`
	LastFlushSeconds float64 `json:"last_flush_seconds"`
	// Dropped counts the points its tag policy dropped, by reason.
	Dropped map[string]uint64 `json:"dropped"`
}

// Forward is the forward block: where mergeable state goes.
type Forward struct {
	Protocol string   `json:"protocol"`
	Members  []string `json:"members"`
	// Pending is how many batches wait to be sent.
	Pending int `json:"pending"`
	// Errors counts failed sends, by cause.
	Errors map[string]uint64 `json:"errors"`
}

// Receive is the receive block.
type Receive struct {
	Address   string `json:"address"`
	Aggregate bool   `json:"aggregate"`
	// Series counts the series records received; SeriesPerSecond is their
	// rate.
	Series          uint64  `json:"series"`
	SeriesPerSecond float64 `json:"series_per_second"`
}

// Limits are cardinality limits; zero is none.
type Limits struct {
	MaxSeries        int `json:"max_series"`
	MaxSeriesPerName int `json:"max_series_per_name"`
}

// NameCount is a series name and how many series it had.
type NameCount struct {
	Name   string `json:"name"`
	Series uint64 `json:"series"`
}

// Edge is an edge of the pipeline's graph and what flows along it, per
// second: samples from a source, series records received, points to a sink,
// series forwarded.
type Edge struct {
	From      string  `json:"from"`
	To        string  `json:"to"`
	PerSecond float64 `json:"per_second"`
	// Unit says what flows: "samples", "series" or "points".
	Unit string `json:"unit"`
}

// TapPoint is a line of a tap (/api/tap?format=json, `veneurd tap -json`):
// a sample as a source read it, or a point as a sink received it.
type TapPoint struct {
	// Block is the block tapped: source.dogstatsd.main, sink.datadog.dd.
	Block string   `json:"block"`
	Name  string   `json:"name"`
	Tags  []string `json:"tags"`
	// Type is a sample's metric type (counter, gauge, histogram, timer,
	// set) or a point's (counter, gauge, status).
	Type  string  `json:"type"`
	Value float64 `json:"value"`
	// Rate is a sample's sample rate.
	Rate float64 `json:"rate,omitempty"`
	// Timestamp, Hostname and Message are a point's.
	Timestamp int64  `json:"timestamp,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Message   string `json:"message,omitempty"`
}

// TapLost is the line a tap writes when it lost lines (its reader was
// slower than the traffic): how many since its previous such line.
type TapLost struct {
	Lost uint64 `json:"lost"`
}
