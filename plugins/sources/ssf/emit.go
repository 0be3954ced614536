package ssf

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/dgryski/go-metro"
	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// Packet types of veneur.packet.error_total: a span (a datagram, a frame, a
// gRPC request) rejected whole, and one sample of a span rejected alone.
const (
	PacketSpan   = "ssf"
	PacketSample = "ssf_metric"
)

// Reasons of veneur.packet.error_total.
const (
	// Of a span: nothing is taken from it.
	ReasonEmpty     = "empty"            // zero bytes (Veneur: zerolength)
	ReasonTooLong   = "toolong"          // past max_packet_size or max_span_size
	ReasonTruncated = "truncated"        // the protobuf encoding ends in the middle of a field
	ReasonInvalid   = "invalid_protobuf" // any other malformed encoding
	ReasonFraming   = "framing"          // a UNIX stream frame of an unknown version, or cut short: the connection is closed
	// Of a sample: the span's other samples are kept.
	ReasonNoName        = "no_name"    // an empty name
	ReasonBadType       = "bad_type"   // a metric type past STATUS
	ReasonBadValue      = "bad_value"  // a value that is NaN or infinite
	ReasonBadRate       = "bad_rate"   // a sample rate outside (0, 1]
	ReasonBadStatus     = "bad_status" // a status past UNKNOWN
	ReasonBadTags       = "bad_tags"   // a tag holding a comma, which separates a series' tags
	ReasonTooLongMetric = "too_long"   // a name or tags past 64 KiB
)

// Tag keys that set a sample's scope and are not kept as tags, as in Veneur
// (the keys only: their values do not matter).
const (
	tagLocalOnly  = "veneurlocalonly"
	tagGlobalOnly = "veneurglobalonly"
)

// namesUniqueName is the set Veneur counts the distinct names of trace spans
// in, per service (ssf.names_unique under the veneur. prefix of its own
// metrics).
var namesUniqueName = []byte("veneur.ssf.names_unique")

// maxLen bounds a name and a sample's joined tags: what a Writer takes.
const maxLen = math.MaxUint16

// hashSeed is the seed github.com/axiomhq/hyperloglog hashes set members
// with, as the dogstatsd source hashes them: sets built from either source,
// or by Veneur, merge.
const hashSeed = 1337

// handler turns spans into samples written to one Writer. One per reading
// goroutine.
type handler struct {
	cfg *Config
	w   sdk.Writer
	log hclog.Logger
	d   decoder

	parts  []byte   // "k:v" of each tag, back to back
	tagIdx [][]byte // slices of parts, sorted
	joined []byte   // the sorted tags, comma-joined
}

func newHandler(cfg *Config, w sdk.Writer, log hclog.Logger) *handler {
	return &handler{cfg: cfg, w: w, log: log}
}

// packet handles one encoded span: a datagram, a frame's payload or a gRPC
// request. It returns the reason the span was rejected for, or "".
func (h *handler) packet(b []byte) string {
	if len(b) == 0 {
		h.w.Error(PacketSpan, ReasonEmpty)
		return ReasonEmpty
	}
	sp, err := h.d.decode(b)
	if err != nil {
		reason := ReasonInvalid
		if errors.Is(err, errTruncated) {
			reason = ReasonTruncated
		}
		h.w.Error(PacketSpan, reason)
		if h.log.IsDebug() {
			h.log.Debug("rejected span", "reason", reason, "error", err, "bytes", len(b))
		}
		return reason
	}
	h.span(sp)
	return ""
}

// span writes what Veneur makes of a span (sinks/ssfmetrics' Ingest): its
// samples, then, if it is a valid trace span, its indicator and objective
// timers and its share of the names_unique set.
func (h *handler) span(sp *span) {
	for i := range sp.samples {
		h.sample(&sp.samples[i])
	}
	// protocol.ValidTrace.
	if sp.id == 0 || sp.traceID == 0 || sp.start == 0 || sp.end == 0 || len(sp.name) == 0 {
		return
	}
	if sp.indicator {
		h.indicator(sp)
	}
	if len(sp.service) > 0 && h.cfg.NamesUniqueRate > 0 && rand.Float32() <= float32(h.cfg.NamesUniqueRate) {
		h.namesUnique(sp)
	}
}

// sample writes one sample as Veneur's samplers.ParseMetricSSF and its
// workers take it.
func (h *handler) sample(s *sample) {
	if len(s.name) == 0 {
		h.w.Error(PacketSample, ReasonNoName)
		return
	}
	if s.metric < metricCounter || s.metric > metricStatus {
		h.w.Error(PacketSample, ReasonBadType)
		return
	}
	if len(s.name) > maxLen {
		h.w.Error(PacketSample, ReasonTooLongMetric)
		return
	}
	scope := sdk.ScopeDefault
	switch s.scope {
	case scopeLocal:
		scope = sdk.ScopeLocal
	case scopeGlobal:
		scope = sdk.ScopeGlobal
	}
	tags, magic, reason := h.sampleTags(h.d.tags[s.tags0:s.tags1])
	if reason != "" {
		h.w.Error(PacketSample, reason)
		return
	}
	if magic != sdk.ScopeDefault {
		scope = magic
	}
	switch s.metric {
	case metricStatus:
		if s.status < 0 || s.status > 3 {
			h.w.Error(PacketSample, ReasonBadStatus)
			return
		}
		h.w.ServiceCheck(sdk.ServiceCheck{Name: string(s.name), Status: int(s.status), Message: string(s.message), Tags: h.tagList(tags)})
		return
	case metricSet:
		h.w.Metric(sdk.Set, scope, s.name, tags, sdk.SetValue(metro.Hash64(s.message, hashSeed)), 1)
		return
	}
	v := float64(s.value)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		h.w.Error(PacketSample, ReasonBadValue)
		return
	}
	if s.metric == metricGauge {
		// A gauge keeps its last value whatever its rate, in Veneur too.
		h.w.Metric(sdk.Gauge, scope, s.name, tags, v, 1)
		return
	}
	if !(s.rate > 0 && s.rate <= 1) {
		h.w.Error(PacketSample, ReasonBadRate)
		return
	}
	typ := sdk.Counter
	if s.metric == metricHistogram {
		typ = sdk.Histogram
	}
	h.w.Metric(typ, scope, s.name, tags, v, float64(s.rate))
}

// sampleTags makes a sample's tags map into the sorted, comma-joined "k:v"
// tags a Writer takes, as Veneur makes them: each key once (a map keeps a
// key's last value), "k:" for an empty value, the keys veneurlocalonly and
// veneurglobalonly turned into a scope (local wins when both are there,
// where Veneur's choice depends on map order). pairs is reordered.
func (h *handler) sampleTags(pairs []tagPair) (tags []byte, scope sdk.Scope, reason string) {
	if len(pairs) == 0 {
		return nil, sdk.ScopeDefault, ""
	}
	if len(pairs) > 1 {
		// Stable, so that the last of equal keys stays last.
		slices.SortStableFunc(pairs, func(a, b tagPair) int { return bytes.Compare(a.k, b.k) })
	}
	local, global := false, false
	h.parts = h.parts[:0]
	h.tagIdx = h.tagIdx[:0]
	size := 0
	// Keys in order make "k:v" tags in order, unless a key is a prefix of
	// the next one ("a" and "a.b": "a.b:" sorts before "a:").
	resort := false
	var last []byte // the previous key kept
	for i, p := range pairs {
		if i+1 < len(pairs) && bytes.Equal(p.k, pairs[i+1].k) {
			continue // a later value of the same key wins
		}
		switch string(p.k) {
		case tagLocalOnly:
			local = true
			continue
		case tagGlobalOnly:
			global = true
			continue
		}
		if bytes.IndexByte(p.k, ',') >= 0 || bytes.IndexByte(p.v, ',') >= 0 {
			return nil, 0, ReasonBadTags
		}
		size += len(p.k) + 1 + len(p.v) + 1
		if size > maxLen+1 {
			return nil, 0, ReasonTooLongMetric
		}
		if len(h.tagIdx) > 0 && bytes.HasPrefix(p.k, last) {
			resort = true
		}
		last = p.k
		start := len(h.parts)
		h.parts = append(h.parts, p.k...)
		h.parts = append(h.parts, ':')
		h.parts = append(h.parts, p.v...)
		// Only the length counts for now: parts may yet move as it grows.
		h.tagIdx = append(h.tagIdx, h.parts[start:len(h.parts)])
	}
	switch {
	case local:
		scope = sdk.ScopeLocal
	case global:
		scope = sdk.ScopeGlobal
	}
	if len(h.tagIdx) == 0 {
		return nil, scope, ""
	}
	// Point the slices into parts' last backing array.
	off := 0
	for i, t := range h.tagIdx {
		h.tagIdx[i] = h.parts[off : off+len(t)]
		off += len(t)
	}
	if resort {
		slices.SortFunc(h.tagIdx, bytes.Compare)
	}
	h.joined = h.joined[:0]
	for i, t := range h.tagIdx {
		if i > 0 {
			h.joined = append(h.joined, ',')
		}
		h.joined = append(h.joined, t...)
	}
	return h.joined, scope, ""
}

// tagList splits comma-joined tags for a service check.
func (h *handler) tagList(tags []byte) []string {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, 0, bytes.Count(tags, []byte{','})+1)
	for t := range bytes.SplitSeq(tags, []byte{','}) {
		out = append(out, string(t))
	}
	return out
}

// indicator writes the indicator and objective timers of an indicator span,
// as Veneur's samplers.ConvertIndicatorMetrics makes them: histograms of
// the span's duration in nanoseconds, rounded to a float32 as Veneur sends
// it through ssf.Timing, tagged with the service and whether the span
// failed; the objective timer also with the span's name (or its tag
// ssf_objective), and global.
func (h *handler) indicator(sp *span) {
	end := time.Unix(sp.end/1e9, sp.end%1e9)
	start := time.Unix(sp.start/1e9, sp.start%1e9)
	v := float64(float32(end.Sub(start) / time.Nanosecond))
	errTag := "error:false"
	if sp.isError {
		errTag = "error:true"
	}
	if h.cfg.IndicatorSpanTimerName != "" {
		if bytes.IndexByte(sp.service, ',') >= 0 {
			h.w.Error(PacketSample, ReasonBadTags)
		} else {
			t := append(h.joined[:0], errTag...)
			t = append(t, ",service:"...)
			t = append(t, sp.service...)
			h.joined = t
			h.write(sdk.Histogram, sdk.ScopeDefault, h.cfg.indicatorName, t, v)
		}
	}
	if h.cfg.ObjectiveSpanTimerName != "" {
		objective := sp.name
		if len(sp.objective) > 0 {
			objective = sp.objective
		}
		if bytes.IndexByte(sp.service, ',') >= 0 || bytes.IndexByte(objective, ',') >= 0 {
			h.w.Error(PacketSample, ReasonBadTags)
			return
		}
		t := append(h.joined[:0], errTag...)
		t = append(t, ",objective:"...)
		t = append(t, objective...)
		t = append(t, ",service:"...)
		t = append(t, sp.service...)
		h.joined = t
		h.write(sdk.Histogram, sdk.ScopeGlobal, h.cfg.objectiveName, t, v)
	}
}

// namesUnique adds a trace span's name to the set of names per service
// (samplers.ConvertSpanUniquenessMetrics).
func (h *handler) namesUnique(sp *span) {
	if bytes.IndexByte(sp.service, ',') >= 0 {
		h.w.Error(PacketSample, ReasonBadTags)
		return
	}
	t := append(h.joined[:0], "indicator:"...)
	t = strconv.AppendBool(t, sp.indicator)
	t = append(t, ",root_span:"...)
	t = strconv.AppendBool(t, sp.id == sp.traceID)
	t = append(t, ",service:"...)
	t = append(t, sp.service...)
	h.joined = t
	h.write(sdk.Set, sdk.ScopeDefault, namesUniqueName, t, sdk.SetValue(metro.Hash64(sp.name, hashSeed)))
}

// write writes a sample the source made, checking the lengths a Writer
// takes.
func (h *handler) write(typ sdk.MetricType, scope sdk.Scope, name, tags []byte, v float64) {
	if len(tags) > maxLen {
		h.w.Error(PacketSample, ReasonTooLongMetric)
		return
	}
	h.w.Metric(typ, scope, name, tags, v, 1)
}
