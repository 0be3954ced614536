// Package remotewrite encodes flushed points as Prometheus remote write 1.0
// requests (https://prometheus.io/docs/specs/remote_write_spec/): the
// uncompressed protobuf prometheus.WriteRequest, one TimeSeries of one
// Sample per point. Compression and delivery belong to sdk/delivery.
//
// The mapping follows Veneur's cortex sink where it is sound and the remote
// write specification where Veneur's output was invalid; NOTES.md has it in
// full with examples.
//
// The sink's configuration will look like this (not built yet):
//
//	type Config struct {
//		URL     string            `hcl:"url"`              // remote write endpoint
//		Headers map[string]string `hcl:"headers,optional"` // extra HTTP headers
//		// batching, timeouts, retries and TLS come from sdk/delivery
//	}
package remotewrite

import (
	"encoding/binary"
	"math"
	"strings"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/veneurd/veneurd/sdk"
)

// Field tags, each one byte: protowire.EncodeTag(number, type).
const (
	tagTimeSeries  = 1<<3 | byte(protowire.BytesType)   // WriteRequest.timeseries = 1
	tagLabel       = 1<<3 | byte(protowire.BytesType)   // TimeSeries.labels = 1
	tagSample      = 2<<3 | byte(protowire.BytesType)   // TimeSeries.samples = 2
	tagLabelName   = 1<<3 | byte(protowire.BytesType)   // Label.name = 1
	tagLabelValue  = 2<<3 | byte(protowire.BytesType)   // Label.value = 2
	tagSampleValue = 1<<3 | byte(protowire.Fixed64Type) // Sample.value = 1 (double)
	tagSampleTime  = 2<<3 | byte(protowire.VarintType)  // Sample.timestamp = 2 (int64, ms)
)

// NameLabel is the label holding a series' metric name.
const NameLabel = "__name__"

// HostLabel is the label holding a point's Hostname, unless one of its tags
// names the label itself.
const HostLabel = "host"

// ReservedPrefix is put before a label name, made from a tag key, that
// starts with "__": such names are reserved for Prometheus ("__name__",
// "__meta_*", ...), so tag "__name__:x" becomes label tag__name__="x" and
// cannot replace the metric name.
const ReservedPrefix = "tag"

// BareValue is the value of the label made from a tag without a colon. An
// empty value would make Prometheus drop the label, so tag "canary" becomes
// canary="true" and stays visible.
const BareValue = "true"

// NormalNaN is the NaN Prometheus stores for a NaN sample (its
// value.NormalNaN). The remote write specification reserves
// 0x7ff0000000000002 for stale markers, which a NaN from a client must never
// become, so every NaN is sent with these bits.
const NormalNaN uint64 = 0x7ff8000000000001

// label is one label made of a point's tags or hostname. Its strings are
// the point's own, or views of the encoder's arena.
type label struct{ name, value string }

// Encoder builds a WriteRequest body. The zero value is ready to use. It is
// meant to be reused: after a warm-up it allocates nothing. Not safe for
// concurrent use.
//
// The points of a series (x.count, x.max, ...) and often those of several
// series carry the same tags and hostname: the encoder keeps the labels it
// made of the last point's tags and hostname, encoded, with a copy of those
// tags and hostname to know when the next point has the same. It keeps no
// reference to a point.
type Encoder struct {
	buf []byte // the body: one timeseries field per point
	n   int    // points appended since Reset

	// The labels of the last point's tags and hostname, encoded as
	// TimeSeries.labels fields: those sorting before __name__ in
	// labels[:split], the others after.
	labels []byte
	split  int
	// The hostname and tags they were made of, one after the other in key,
	// their lengths in keyLens; valid tells whether labels is up to date.
	key     []byte
	keyLens []int
	valid   bool

	scratch []label // the labels of a point, while they are made
	arena   []byte  // sanitised names and repaired values of that point
}

// Reset empties the body, keeping its memory.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.n = 0
}

// Len returns the number of points appended since Reset.
func (e *Encoder) Len() int { return e.n }

// Size returns the size of the body in bytes.
func (e *Encoder) Size() int { return len(e.buf) }

// Body returns the WriteRequest holding the points appended since Reset
// (empty when there are none). It aliases the encoder's memory: it is valid
// until the next Reset or Point, and the caller copies it to keep it.
func (e *Encoder) Body() []byte { return e.buf }

// nameLabelHead is the start of the Label message of __name__: its name
// field and the tag of its value field.
const nameLabelHead = "\x0a\x08" + NameLabel + "\x12"

// Point appends p as one TimeSeries holding one Sample:
//
//   - the label __name__ is p.Name with every byte outside [a-zA-Z0-9_:]
//     replaced by '_' and a '_' put before a leading digit;
//   - each tag "k:v" becomes the label k=v, the name made of k as the
//     metric name is (':' replaced too) and prefixed with ReservedPrefix
//     when it starts with "__", the value with each byte that is not valid
//     UTF-8 replaced by U+FFFD; a tag "k" becomes k="true" (BareValue);
//     tags with an empty key or an empty value are left out, since
//     Prometheus forbids empty names and reads an empty value as no label;
//   - p.Hostname, when not empty, is the label host unless a tag made one;
//   - of labels with the same name the last tag's wins, as in Veneur;
//   - labels are sorted by name (bytewise: "Zone" and "_1st" come before
//     "__name__"), as the specification requires;
//   - the sample's value is p.Value, any NaN sent as NormalNaN, and its
//     timestamp p.Timestamp in milliseconds.
//
// Counters are sent as the interval's count and status points as their
// status (0 to 3): remote write has no types. A status point's message is
// left out: as a label it would make a new series for each message.
//
// Point appends nothing and returns false when p.Name is empty, which no
// metric name can represent.
func (e *Encoder) Point(p *sdk.Point) bool {
	if p.Name == "" {
		return false
	}
	if !e.same(p) {
		e.makeLabels(p)
	}
	name := p.Name
	digit := name[0] >= '0' && name[0] <= '9'
	nameLen := len(name)
	if digit {
		nameLen++
	}
	nameLabel := len(nameLabelHead) + sizeVarint(uint64(nameLen)) + nameLen
	bits := math.Float64bits(p.Value)
	if p.Value != p.Value {
		bits = NormalNaN
	}
	ms := uint64(p.Timestamp * 1000)
	sampleSize := 1 + 8 + 1 + sizeVarint(ms)
	size := len(e.labels) + 1 + sizeVarint(uint64(nameLabel)) + nameLabel +
		1 + sizeVarint(uint64(sampleSize)) + sampleSize

	b := append(e.buf, tagTimeSeries)
	b = appendVarint(b, uint64(size))
	b = append(b, e.labels[:e.split]...)
	b = append(b, tagLabel)
	b = appendVarint(b, uint64(nameLabel))
	b = append(b, nameLabelHead...)
	b = appendVarint(b, uint64(nameLen))
	if digit {
		b = append(b, '_')
	}
	start := len(b)
	b = append(b, name...)
	for i, c := range b[start:] {
		if !metricByte[c] {
			b[start+i] = '_'
		}
	}
	b = append(b, e.labels[e.split:]...)
	b = append(b, tagSample)
	b = appendVarint(b, uint64(sampleSize))
	b = append(b, tagSampleValue)
	b = protowire.AppendFixed64(b, bits)
	b = append(b, tagSampleTime)
	b = appendVarint(b, ms)
	e.buf = b
	e.n++
	return true
}

// same reports whether p has the hostname and tags e.labels were made of.
func (e *Encoder) same(p *sdk.Point) bool {
	if !e.valid || len(e.keyLens) != len(p.Tags)+1 {
		return false
	}
	n := e.keyLens[0]
	if string(e.key[:n]) != p.Hostname {
		return false
	}
	k := e.key[n:]
	for i, t := range p.Tags {
		n := e.keyLens[i+1]
		if string(k[:n]) != t {
			return false
		}
		k = k[n:]
	}
	return true
}

// makeLabels makes and encodes the labels of p's tags and hostname into
// e.labels, and remembers them.
func (e *Encoder) makeLabels(p *sdk.Point) {
	e.key = append(e.key[:0], p.Hostname...)
	e.keyLens = append(e.keyLens[:0], len(p.Hostname))
	for _, t := range p.Tags {
		e.key = append(e.key, t...)
		e.keyLens = append(e.keyLens, len(t))
	}
	e.valid = true
	// Hostnames and tags are nearly always ASCII: then none needs repairing.
	ascii := asciiBytes(e.key)

	e.arena = e.arena[:0]
	labels := e.scratch[:0]
	if h := p.Hostname; h != "" {
		if !ascii {
			h = e.validUTF8(h)
		}
		labels = append(labels, label{HostLabel, h})
	}
	for _, t := range p.Tags {
		// One pass over the key finds the colon and tells whether the key
		// is a label name as it is (the common case).
		i, valid := 0, true
		for ; i < len(t) && t[i] != ':'; i++ {
			valid = valid && labelByte[t[i]]
		}
		k, v := t[:i], BareValue
		if i < len(t) {
			v = t[i+1:]
		}
		if k == "" || v == "" {
			continue
		}
		if !valid || '0' <= k[0] && k[0] <= '9' || strings.HasPrefix(k, "__") {
			k = e.labelName(k)
		}
		if !ascii {
			v = e.validUTF8(v)
		}
		labels = append(labels, label{k, v})
	}

	// Sort by name, stably (insertion sort: tags come sorted, so their
	// labels nearly are), then keep the last of each name: the host label
	// comes before the tags, so a tag's host replaces it.
	for i := 1; i < len(labels); i++ {
		for j := i; j > 0 && less(labels[j].name, labels[j-1].name); j-- {
			labels[j], labels[j-1] = labels[j-1], labels[j]
		}
	}
	b := e.labels[:0]
	e.split = 0
	for i, l := range labels {
		if i+1 < len(labels) && labels[i+1].name == l.name {
			continue
		}
		if less(l.name, NameLabel) {
			e.split = len(b) + labelFieldSize(l)
		}
		n := 1 + sizeVarint(uint64(len(l.name))) + len(l.name) +
			1 + sizeVarint(uint64(len(l.value))) + len(l.value)
		b = append(b, tagLabel)
		b = appendVarint(b, uint64(n))
		b = append(b, tagLabelName)
		b = appendVarint(b, uint64(len(l.name)))
		b = append(b, l.name...)
		b = append(b, tagLabelValue)
		b = appendVarint(b, uint64(len(l.value)))
		b = append(b, l.value...)
	}
	e.labels = b
	// Keep no reference to the point's strings.
	clear(labels)
	e.scratch = labels[:0]
}

// less reports whether a sorts before b, which must not be empty; most
// label names differ at their first byte.
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

// labelFieldSize is the size of l's TimeSeries.labels field.
func labelFieldSize(l label) int {
	n := 1 + sizeVarint(uint64(len(l.name))) + len(l.name) +
		1 + sizeVarint(uint64(len(l.value))) + len(l.value)
	return 1 + sizeVarint(uint64(n)) + n
}

// appendVarint is protowire.AppendVarint with the one-byte case inlined.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// metricByte and labelByte tell the bytes a metric name and a label name
// may hold after their first: [a-zA-Z0-9_:] and [a-zA-Z0-9_].
var metricByte, labelByte = nameBytes(true), nameBytes(false)

func nameBytes(colon bool) (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || colon && c == ':'
	}
	return t
}

// labelName returns s as a valid label name ([a-zA-Z_][a-zA-Z0-9_]*): each
// other byte becomes '_', a leading digit gets a '_' before it, as Veneur's
// cortex sink does (byte by byte where Veneur went rune by rune), and a
// name starting with "__" gets ReservedPrefix before it. s must not be
// empty. (Point writes metric names the same way, ':' kept, straight into
// the body.)
func (e *Encoder) labelName(s string) string {
	n := e.sanitise(s, &labelByte)
	if strings.HasPrefix(n, "__") {
		start := len(e.arena)
		e.arena = append(e.arena, ReservedPrefix...)
		e.arena = append(e.arena, n...)
		return view(e.arena[start:])
	}
	return n
}

// sanitise replaces each byte c of s for which ok[c] is false with '_', and
// puts '_' before a leading digit. It returns s itself when nothing
// changes.
func (e *Encoder) sanitise(s string, ok *[256]bool) string {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 0
	if !digit {
		for i < len(s) && ok[s[i]] {
			i++
		}
		if i == len(s) {
			return s
		}
	}
	start := len(e.arena)
	if digit {
		e.arena = append(e.arena, '_')
	}
	e.arena = append(e.arena, s...)
	b := e.arena[start:]
	for j := len(b) - len(s) + i; j < len(b); j++ {
		if !ok[b[j]] {
			b[j] = '_'
		}
	}
	return view(b)
}

// validUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD; s itself when it is valid.
func (e *Encoder) validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	start := len(e.arena)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.arena = utf8.AppendRune(e.arena, utf8.RuneError)
		} else {
			e.arena = append(e.arena, s[i:i+size]...)
		}
		i += size
	}
	return view(e.arena[start:])
}

// view returns b, a part of the arena, as a string without copying. The
// arena is only appended to while the labels of a point are made (growing
// it leaves the old bytes as they were) and its bytes are rewritten only for
// another point, once the labels viewing them are cleared.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
