// Package otlp encodes flushed points as OTLP metrics export requests: the
// protobuf opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest,
// which OTLP/HTTP posts as is and OTLP/gRPC sends to MetricsService/Export
// (the generated client unmarshals the same bytes). Compression and
// delivery belong to sdk/delivery.
//
// The body is encoded by hand with protowire, without the generated types,
// so that a reused Encoder allocates nothing; the tests decode every body
// with the generated types of go.opentelemetry.io/proto/otlp. NOTES.md has
// the mapping in full with examples.
//
// The sink's configuration will look like this (not built yet):
//
//	type Config struct {
//		Endpoint string            `hcl:"endpoint"`          // OTLP/HTTP URL or gRPC host:port
//		Protocol string            `hcl:"protocol,optional"` // "http/protobuf" (default) or "grpc"
//		Headers  map[string]string `hcl:"headers,optional"`
//		// batching, timeouts, retries and TLS come from sdk/delivery
//	}
package otlp

import (
	"encoding/binary"
	"math"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/veneurd/veneurd/sdk"
)

// Field tags, each one byte: protowire.EncodeTag(number, type). Numbers are
// those of opentelemetry-proto (checked against the generated types by the
// tests).
const (
	tagResourceMetrics = 1<<3 | byte(protowire.BytesType)   // ExportMetricsServiceRequest.resource_metrics = 1
	tagResource        = 1<<3 | byte(protowire.BytesType)   // ResourceMetrics.resource = 1
	tagScopeMetrics    = 2<<3 | byte(protowire.BytesType)   // ResourceMetrics.scope_metrics = 2
	tagAttribute       = 1<<3 | byte(protowire.BytesType)   // Resource.attributes = 1
	tagScope           = 1<<3 | byte(protowire.BytesType)   // ScopeMetrics.scope = 1
	tagMetric          = 2<<3 | byte(protowire.BytesType)   // ScopeMetrics.metrics = 2
	tagScopeName       = 1<<3 | byte(protowire.BytesType)   // InstrumentationScope.name = 1
	tagScopeVersion    = 2<<3 | byte(protowire.BytesType)   // InstrumentationScope.version = 2
	tagMetricName      = 1<<3 | byte(protowire.BytesType)   // Metric.name = 1
	tagGauge           = 5<<3 | byte(protowire.BytesType)   // Metric.gauge = 5
	tagSum             = 7<<3 | byte(protowire.BytesType)   // Metric.sum = 7
	tagDataPoint       = 1<<3 | byte(protowire.BytesType)   // Gauge.data_points = Sum.data_points = 1
	tagTemporality     = 2<<3 | byte(protowire.VarintType)  // Sum.aggregation_temporality = 2
	tagMonotonic       = 3<<3 | byte(protowire.VarintType)  // Sum.is_monotonic = 3
	tagStartTime       = 2<<3 | byte(protowire.Fixed64Type) // NumberDataPoint.start_time_unix_nano = 2
	tagTime            = 3<<3 | byte(protowire.Fixed64Type) // NumberDataPoint.time_unix_nano = 3
	tagAsDouble        = 4<<3 | byte(protowire.Fixed64Type) // NumberDataPoint.as_double = 4
	tagPointAttribute  = 7<<3 | byte(protowire.BytesType)   // NumberDataPoint.attributes = 7
	tagKey             = 1<<3 | byte(protowire.BytesType)   // KeyValue.key = 1
	tagValue           = 2<<3 | byte(protowire.BytesType)   // KeyValue.value = 2
	tagStringValue     = 1<<3 | byte(protowire.BytesType)   // AnyValue.string_value = 1
)

// temporalityDelta is AGGREGATION_TEMPORALITY_DELTA.
const temporalityDelta = 1

// ScopeName is the name of the instrumentation scope of every metric.
const ScopeName = "veneurd"

// HostAttribute is the resource attribute naming the host of a point: its
// host tag, or else its Hostname.
const HostAttribute = "host.name"

// HostTag is the key of the tag that names a point's host, as in Datadog:
// tag "host:h" makes the resource's host.name h and is not an attribute.
const HostTag = "host"

// BareValue is the value of the attribute made from a tag without a colon:
// several backends turn attributes into labels, where an empty value would
// make the attribute disappear, so tag "canary" becomes canary="true".
const BareValue = "true"

// maxRemembered is how many hostnames an Encoder keeps between bodies (with
// their resources and buffers); Reset forgets them all past it.
const maxRemembered = 4096

// group holds the metrics of one host: one ResourceMetrics in the body.
type group struct {
	host     string // host.name, repaired; owned
	resource []byte // the ResourceMetrics.resource field
	// buf holds head bytes, room to write the group's envelope in front of
	// its metrics, then its ScopeMetrics.metrics fields.
	buf  []byte
	head int
	n    int // metrics since Reset
}

// attr is one attribute of the point being encoded. Its strings are the
// point's own, or views of the encoder's arena.
type attr struct{ key, value string }

// Encoder builds an ExportMetricsServiceRequest body. The zero value is
// ready to use, with no scope version; NewEncoder sets one. It is meant to
// be reused: after a warm-up, and once it has seen each hostname, it
// allocates nothing. Not safe for concurrent use.
//
// Points are grouped by host into one ResourceMetrics each, in the order
// the hosts first came since Reset, each holding one ScopeMetrics (scope
// "veneurd") with one Metric per point.
//
// The points of a series (x.count, x.max, ...) and often those of several
// series carry the same tags, and most points of a flush the same host: the
// encoder keeps the attributes it made of the last point's tags, encoded,
// with a copy of those tags to know when the next point has the same, and a
// copy of the last host. It keeps no reference to a point.
type Encoder struct {
	// Interval is the flush interval: a counter covers the Interval before
	// its timestamp (start_time_unix_nano). Set it before each flush's
	// points; it may change between points.
	Interval time.Duration

	version string
	scope   []byte // the ScopeMetrics.scope field

	groups   []group
	index    map[string]int // group of each host
	active   []int          // groups holding metrics since Reset, in order
	last     int            // group of the previous point; -1 for none
	lastHost []byte         // the host of the previous point, as it came
	n        int
	size     int // of the body

	body  []byte // assembled by Body when there are several groups
	head  []byte // scratch for one group's envelope
	built bool   // body is up to date
	// The data point attributes made of the last point's tags, encoded as
	// NumberDataPoint.attributes fields, and the index of the tag that
	// named its host (-1 for none).
	attrBytes []byte
	hostTag   int
	// The tags they were made of, one after the other in key, their
	// lengths in keyLens; valid tells whether attrBytes is up to date.
	key     []byte
	keyLens []int
	valid   bool

	attrs []attr // the attributes of a point, while they are made
	arena []byte // repaired strings of the point being encoded
	ready bool   // scope and last are set up
}

// NewEncoder returns an Encoder whose scope has version version (the
// daemon's, say).
func NewEncoder(version string) *Encoder {
	e := &Encoder{version: version}
	e.setup()
	return e
}

func (e *Encoder) setup() {
	if e.ready {
		return
	}
	e.ready = true
	version := string(appendValidUTF8(nil, e.version))
	n := 1 + sizeVarint(uint64(len(ScopeName))) + len(ScopeName)
	if version != "" {
		n += 1 + sizeVarint(uint64(len(version))) + len(version)
	}
	b := append(e.scope[:0], tagScope)
	b = protowire.AppendVarint(b, uint64(n))
	b = append(b, tagScopeName)
	b = protowire.AppendVarint(b, uint64(len(ScopeName)))
	b = append(b, ScopeName...)
	if version != "" {
		b = append(b, tagScopeVersion)
		b = protowire.AppendVarint(b, uint64(len(version)))
		b = append(b, version...)
	}
	e.scope = b
	e.last = -1
}

// Reset empties the body, keeping its memory and the hosts it has seen
// (unless there are more than maxRemembered).
func (e *Encoder) Reset() {
	e.setup()
	for _, g := range e.active {
		e.groups[g].buf = e.groups[g].buf[:e.groups[g].head]
		e.groups[g].n = 0
	}
	e.active = e.active[:0]
	e.n, e.size, e.built = 0, 0, false
	if len(e.groups) > maxRemembered {
		clear(e.index)
		e.groups = e.groups[:0]
		e.last = -1
	}
}

// Len returns the number of points appended since Reset.
func (e *Encoder) Len() int { return e.n }

// Size returns the size of the body in bytes.
func (e *Encoder) Size() int { return e.size }

// Body returns the request holding the points appended since Reset (empty
// when there are none). It aliases the encoder's memory: it is valid until
// the next Reset or Point, and the caller copies it to keep it.
func (e *Encoder) Body() []byte {
	switch len(e.active) {
	case 0:
		return e.body[:0]
	case 1:
		// Write the envelope in the headroom in front of the metrics.
		g := &e.groups[e.active[0]]
		e.head = e.envelope(e.head[:0], g)
		start := g.head - len(e.head)
		copy(g.buf[start:], e.head)
		return g.buf[start:]
	}
	if !e.built {
		b := e.body[:0]
		for _, i := range e.active {
			g := &e.groups[i]
			b = e.envelope(b, g)
			b = append(b, g.buf[g.head:]...)
		}
		e.body, e.built = b, true
	}
	return e.body
}

// groupSize is the size of g's resource_metrics field.
func (e *Encoder) groupSize(g *group) int {
	sm := len(e.scope) + len(g.buf) - g.head
	rm := len(g.resource) + 1 + sizeVarint(uint64(sm)) + sm
	return 1 + sizeVarint(uint64(rm)) + rm
}

// envelope appends g's resource_metrics field up to its metrics.
func (e *Encoder) envelope(b []byte, g *group) []byte {
	sm := len(e.scope) + len(g.buf) - g.head
	rm := len(g.resource) + 1 + sizeVarint(uint64(sm)) + sm
	b = append(b, tagResourceMetrics)
	b = protowire.AppendVarint(b, uint64(rm))
	b = append(b, g.resource...)
	b = append(b, tagScopeMetrics)
	b = protowire.AppendVarint(b, uint64(sm))
	return append(b, e.scope...)
}

// Point appends p as one Metric of the ResourceMetrics of its host:
//
//   - the host is the value of p's last "host:" tag, or else p.Hostname;
//     the resource has the attribute host.name when the host is not empty;
//   - the metric's name is p.Name, unchanged (OTLP allows any name);
//   - a counter is a Sum, DELTA, monotonic when p.Value >= 0, its data
//     point from p.Timestamp - Interval to p.Timestamp; a gauge is a Gauge
//     at p.Timestamp; a status point is a Gauge of its status (0 to 3), its
//     message left out (an attribute would make a new series of each
//     message);
//   - the value is p.Value as a double, NaN and infinities included;
//   - each tag "k:v" but the host tags is the data point's attribute k="v",
//     a tag "k" is k="true" (BareValue); tags with an empty key are left out
//     (OpenTelemetry forbids empty keys); of attributes with the same key
//     the last tag's wins, so keys are unique as OpenTelemetry requires;
//     attributes are sorted by key;
//   - in every string, each byte that is not part of valid UTF-8 is
//     replaced with U+FFFD: protobuf strings must be UTF-8.
//
// Point appends nothing and returns false when p.Name is empty: OTLP
// requires a name.
func (e *Encoder) Point(p *sdk.Point) bool {
	if p.Name == "" {
		return false
	}
	e.setup()
	e.arena = e.arena[:0]
	if !e.sameTags(p.Tags) {
		e.makeAttrs(p.Tags)
	}
	host := p.Hostname
	if e.hostTag >= 0 {
		host = p.Tags[e.hostTag][len(HostTag)+1:]
	}
	attrsSize := len(e.attrBytes)

	name := e.validUTF8(p.Name)
	counter := p.Type == sdk.PointCounter
	// Times are nanoseconds; like the generated code, leave out a zero.
	nanos := uint64(p.Timestamp) * uint64(time.Second)
	var start uint64
	if counter {
		start = nanos - uint64(e.Interval)
	}
	dp := 9 + attrsSize // as_double, attributes
	if start != 0 {
		dp += 9
	}
	if nanos != 0 {
		dp += 9
	}
	data := 1 + sizeVarint(uint64(dp)) + dp // the data_points field
	if counter {
		data += 2 // temporality
		if p.Value >= 0 {
			data += 2 // is_monotonic
		}
	}
	metric := 1 + sizeVarint(uint64(len(name))) + len(name) +
		1 + sizeVarint(uint64(data)) + data

	gi := e.group(host)
	g := &e.groups[gi]
	if g.n == 0 {
		e.active = append(e.active, gi)
	} else {
		e.size -= e.groupSize(g)
	}

	b := append(g.buf, tagMetric)
	b = appendVarint(b, uint64(metric))
	b = append(b, tagMetricName)
	b = appendVarint(b, uint64(len(name)))
	b = append(b, name...)
	if counter {
		b = append(b, tagSum)
	} else {
		b = append(b, tagGauge)
	}
	b = appendVarint(b, uint64(data))
	b = append(b, tagDataPoint)
	b = appendVarint(b, uint64(dp))
	// Fields in the order the generated code writes them: by number, oneof
	// members (as_double) last.
	if start != 0 {
		b = append(b, tagStartTime)
		b = protowire.AppendFixed64(b, start)
	}
	if nanos != 0 {
		b = append(b, tagTime)
		b = protowire.AppendFixed64(b, nanos)
	}
	b = append(b, e.attrBytes...)
	b = append(b, tagAsDouble)
	b = protowire.AppendFixed64(b, math.Float64bits(p.Value))
	if counter {
		b = append(b, tagTemporality, temporalityDelta)
		if p.Value >= 0 {
			b = append(b, tagMonotonic, 1)
		}
	}
	g.buf = b
	g.n++
	e.size += e.groupSize(g)
	e.n++
	e.built = false
	return true
}

// sameTags reports whether tags are those e.attrBytes were made of.
func (e *Encoder) sameTags(tags []string) bool {
	if !e.valid || len(e.keyLens) != len(tags) {
		return false
	}
	k := e.key
	for i, t := range tags {
		n := e.keyLens[i]
		if string(k[:n]) != t {
			return false
		}
		k = k[n:]
	}
	return true
}

// makeAttrs makes and encodes the attributes of tags into e.attrBytes, and
// remembers them.
func (e *Encoder) makeAttrs(tags []string) {
	e.key, e.keyLens = e.key[:0], e.keyLens[:0]
	for _, t := range tags {
		e.key = append(e.key, t...)
		e.keyLens = append(e.keyLens, len(t))
	}
	e.valid = true
	// Tags are nearly always ASCII: then none needs repairing.
	ascii := asciiBytes(e.key)

	e.hostTag = -1
	attrs := e.attrs[:0]
	for i, t := range tags {
		k, v, colon := strings.Cut(t, ":")
		if !colon {
			v = BareValue
		} else if k == HostTag {
			if v != "" {
				e.hostTag = i
			}
			continue
		}
		if k == "" {
			continue
		}
		if !ascii && !utf8.ValidString(t) {
			k, v = e.validUTF8(k), e.validUTF8(v)
		}
		attrs = append(attrs, attr{k, v})
	}
	// Sort by key, stably (insertion sort: tags come sorted), then keep the
	// last of each key.
	for i := 1; i < len(attrs); i++ {
		for j := i; j > 0 && less(attrs[j].key, attrs[j-1].key); j-- {
			attrs[j], attrs[j-1] = attrs[j-1], attrs[j]
		}
	}
	b := e.attrBytes[:0]
	for i, a := range attrs {
		if i+1 < len(attrs) && attrs[i+1].key == a.key {
			continue
		}
		b = append(b, tagPointAttribute)
		b = appendKeyValue(b, a)
	}
	e.attrBytes = b
	// Keep no reference to the point's strings.
	clear(attrs)
	e.attrs = attrs[:0]
}

// group returns the index of the group of host, as the point gave it,
// making the group if needed.
func (e *Encoder) group(host string) int {
	if e.last >= 0 && string(e.lastHost) == host {
		return e.last
	}
	h := e.validUTF8(host)
	i, ok := e.index[h]
	if !ok {
		i = e.newGroup(strings.Clone(h))
	}
	e.last = i
	e.lastHost = append(e.lastHost[:0], host...)
	return i
}

// newGroup makes the group of host and returns its index.
func (e *Encoder) newGroup(host string) int {
	if e.index == nil {
		e.index = make(map[string]int)
	}
	var res []byte
	if host != "" {
		kv := attrSize(attr{HostAttribute, host})
		a := 1 + sizeVarint(uint64(kv)) + kv
		res = append(res, tagResource)
		res = protowire.AppendVarint(res, uint64(a))
		res = append(res, tagAttribute)
		res = appendKeyValue(res, attr{HostAttribute, host})
	} else {
		res = []byte{tagResource, 0} // an empty Resource
	}
	i := len(e.groups)
	if i < cap(e.groups) {
		// Take over the buffer a forgotten group left.
		e.groups = e.groups[:i+1]
		old := e.groups[i].buf
		e.groups[i] = group{host: host, resource: res, buf: old[:0]}
	} else {
		e.groups = append(e.groups, group{host: host, resource: res})
	}
	// The largest envelope: the tags and lengths of resource_metrics and
	// scope_metrics, the resource and the scope.
	g := &e.groups[i]
	g.head = 1 + binary.MaxVarintLen64 + len(res) + 1 + binary.MaxVarintLen64 + len(e.scope)
	g.buf = append(g.buf[:0], make([]byte, g.head)...)
	e.index[host] = i
	return i
}

// attrSize is the size of a's KeyValue message.
func attrSize(a attr) int {
	n := 0
	if a.key != "" {
		n = 1 + sizeVarint(uint64(len(a.key))) + len(a.key)
	}
	v := 1 + sizeVarint(uint64(len(a.value))) + len(a.value) // AnyValue
	return n + 1 + sizeVarint(uint64(v)) + v
}

// appendKeyValue appends a's KeyValue message, its length first.
func appendKeyValue(b []byte, a attr) []byte {
	b = appendVarint(b, uint64(attrSize(a)))
	if a.key != "" {
		b = append(b, tagKey)
		b = appendVarint(b, uint64(len(a.key)))
		b = append(b, a.key...)
	}
	b = append(b, tagValue)
	b = appendVarint(b, uint64(1+sizeVarint(uint64(len(a.value)))+len(a.value)))
	b = append(b, tagStringValue)
	b = appendVarint(b, uint64(len(a.value)))
	return append(b, a.value...)
}

// less reports whether a sorts before b, which must not be empty; most keys
// differ at their first byte.
func less(a, b string) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

// sizeVarint is protowire.SizeVarint with the one-byte case inlined.
func sizeVarint(v uint64) int {
	if v < 0x80 {
		return 1
	}
	return protowire.SizeVarint(v)
}

// asciiBytes reports whether b is ASCII, eight bytes at a time.
func asciiBytes(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
	}
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendVarint is protowire.AppendVarint with the one-byte case inlined.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// validUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD; s itself when it is valid, else a view of the arena.
func (e *Encoder) validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	start := len(e.arena)
	e.arena = appendValidUTF8(e.arena, s)
	return view(e.arena[start:])
}

// appendValidUTF8 appends s with each byte that is not part of valid UTF-8
// replaced by U+FFFD.
func appendValidUTF8(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// view returns b, a part of the arena, as a string without copying. The
// arena is only appended to while a point is encoded (growing it leaves the
// old bytes as they were) and its bytes are rewritten only for the next
// point, once the attributes viewing them are cleared.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
