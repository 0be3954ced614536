package kafka

import (
	"encoding/binary"
	"math"
	"unicode/utf8"

	"github.com/dgryski/go-metro"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/veneurd/veneurd/internal/textenc"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
	"github.com/veneurd/veneurd/sdk"
)

// Format is how record values are encoded.
type Format uint8

const (
	// JSON values are the lines the localfile sink writes, without the
	// newline: {"name":...,"tags":[...],"type":...,"value":...,...}.
	JSON Format = iota
	// Protobuf values are Point and Event messages (point.proto).
	Protobuf
)

// KeySize is the length of every record key: a 64-bit hash, big-endian.
const KeySize = 8

// Encoder turns points and events into Kafka records (key and value), one
// at a time with Record and EventRecord, or many into one contiguous buffer
// with Append and AppendEvent, read back with At or Records. An Encoder is
// reused and is not safe for concurrent use.
//
// A point's key is the same for every point of its series (type, name, tags
// and hostname), whatever the format, so that a series stays in one
// partition and its points keep their order there, and so that a compacted
// topic keeps the last point of each series. NOTES.md gives the mapping.
type Encoder struct {
	// Format is the encoding of values; JSON unless set.
	Format Format

	buf  []byte // keys and values of the records appended since Reset
	recs []span
	one  []byte // Record's and EventRecord's record
	id   []byte // what a key hashes
	ts   textenc.Timestamp
}

// span locates a record's key, buf[k0:v0], and value, buf[v0:v1].
type span struct{ k0, v0, v1 int }

// Reset empties the batch, keeping its capacity.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.recs = e.recs[:0]
}

// Len is the number of records appended since Reset.
func (e *Encoder) Len() int { return len(e.recs) }

// Size is the number of bytes of the batch: the keys and values appended
// since Reset, and a 4-byte length each. Kafka adds a few bytes per record
// (lengths, offset and timestamp deltas, attributes) and per batch.
func (e *Encoder) Size() int { return len(e.buf) }

// Body returns the batch as one buffer, each record a 4-byte big-endian
// length of its value, its key (KeySize bytes) and its value: what the sink
// queues for delivery, and Split reads. Valid until the next Reset, Append
// or AppendEvent.
func (e *Encoder) Body() []byte { return e.buf }

// Split calls yield with the key and value of each record of body, a Body,
// until yield returns false. It reports whether body was whole.
func Split(body []byte, yield func(key, value []byte) bool) bool {
	for len(body) > 0 {
		if len(body) < 4+KeySize {
			return false
		}
		n := int(binary.BigEndian.Uint32(body))
		if len(body) < 4+KeySize+n {
			return false
		}
		if !yield(body[4:4+KeySize:4+KeySize], body[4+KeySize:4+KeySize+n:4+KeySize+n]) {
			return true
		}
		body = body[4+KeySize+n:]
	}
	return true
}

// At returns the key and value of the i-th record appended since Reset,
// valid until the next Reset, Append or AppendEvent: the caller copies them
// to keep them.
func (e *Encoder) At(i int) (key, value []byte) {
	s := e.recs[i]
	return e.buf[s.k0:s.v0:s.v0], e.buf[s.v0:s.v1:s.v1]
}

// Records calls yield with the key and value of each record appended since
// Reset, in order, until yield returns false. The slices are valid as At's
// are. It is an iterator: for key, value := range e.Records { ... }.
func (e *Encoder) Records(yield func(key, value []byte) bool) {
	for i := range e.recs {
		if !yield(e.At(i)) {
			return
		}
	}
}

// Append appends p's record to the batch. It returns false, appending
// nothing, when p cannot be encoded: in JSON, whose numbers cannot be NaN or
// infinite, a point whose value is not finite. Protobuf takes every point.
// Strings are written as valid UTF-8, each byte that is not part of valid
// UTF-8 replaced with U+FFFD. p is not retained.
func (e *Encoder) Append(p *sdk.Point) bool {
	if e.Format == JSON && (math.IsNaN(p.Value) || math.IsInf(p.Value, 0)) {
		return false
	}
	h := len(e.buf)
	e.buf = append(e.buf, 0, 0, 0, 0)
	k0 := len(e.buf)
	e.buf = e.appendPointKey(e.buf, p)
	v0 := len(e.buf)
	e.buf = e.appendPoint(e.buf, p)
	e.add(h, k0, v0)
	return true
}

// AppendEvent appends the record of ev, flushed at ts, to the batch: an
// event without a timestamp takes the flush's. It always succeeds. ev is
// not retained.
func (e *Encoder) AppendEvent(ev *sdk.Event, ts int64) bool {
	h := len(e.buf)
	e.buf = append(e.buf, 0, 0, 0, 0)
	k0 := len(e.buf)
	e.buf = e.appendEventKey(e.buf, ev)
	v0 := len(e.buf)
	e.buf = e.appendEvent(e.buf, ev, ts)
	e.add(h, k0, v0)
	return true
}

// add records the record whose length is at h, key at k0 and value from v0
// to the end of the batch.
func (e *Encoder) add(h, k0, v0 int) {
	binary.BigEndian.PutUint32(e.buf[h:], uint32(len(e.buf)-v0))
	e.recs = append(e.recs, span{k0, v0, len(e.buf)})
}

// Record returns p's record, as Append would append it, in a buffer of its
// own that is valid until the next Record or EventRecord; it leaves the
// batch alone. ok is false when Append would refuse p.
func (e *Encoder) Record(p *sdk.Point) (key, value []byte, ok bool) {
	if e.Format == JSON && (math.IsNaN(p.Value) || math.IsInf(p.Value, 0)) {
		return nil, nil, false
	}
	e.one = e.appendPointKey(e.one[:0], p)
	e.one = e.appendPoint(e.one, p)
	return e.one[:KeySize:KeySize], e.one[KeySize:], true
}

// EventRecord returns the record of ev, flushed at ts, as AppendEvent would
// append it, in the buffer Record uses.
func (e *Encoder) EventRecord(ev *sdk.Event, ts int64) (key, value []byte, ok bool) {
	e.one = e.appendEventKey(e.one[:0], ev)
	e.one = e.appendEvent(e.one, ev, ts)
	return e.one[:KeySize:KeySize], e.one[KeySize:], true
}

// appendPointKey appends the key of p's series: the 64-bit metro hash (seed
// 0) of its type, name, tags and hostname, each string preceded by its
// length so that no two series hash the same input.
func (e *Encoder) appendPointKey(b []byte, p *sdk.Point) []byte {
	id := append(e.id[:0], 'p', byte(p.Type))
	id = appendLenString(id, p.Name)
	id = appendVarint(id, uint64(len(p.Tags)))
	for _, t := range p.Tags {
		id = appendLenString(id, t)
	}
	id = appendLenString(id, p.Hostname)
	e.id = id
	return binary.BigEndian.AppendUint64(b, metro.Hash64(id, 0))
}

// appendEventKey appends the key of ev: the hash of its hostname and
// aggregation key, or of its hostname and title when it has no aggregation
// key, so that the events that belong together stay in order.
func (e *Encoder) appendEventKey(b []byte, ev *sdk.Event) []byte {
	id := append(e.id[:0], 'e')
	id = appendLenString(id, ev.Hostname)
	if ev.AggregationKey != "" {
		id = appendLenString(append(id, 'k'), ev.AggregationKey)
	} else {
		id = appendLenString(append(id, 't'), ev.Title)
	}
	e.id = id
	return binary.BigEndian.AppendUint64(b, metro.Hash64(id, 0))
}

func appendLenString(b []byte, s string) []byte {
	return append(appendVarint(b, uint64(len(s))), s...)
}

// appendTag is protowire.AppendTag for the field numbers below 16 that
// point.proto uses: one byte.
func appendTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return append(b, byte(num)<<3|byte(typ))
}

// appendVarint is protowire.AppendVarint (and binary.AppendUvarint), with
// the one- and two-byte cases, lengths and small numbers, inline.
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<7:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v)|0x80, byte(v>>7))
	}
	return protowire.AppendVarint(b, v)
}

// ascii reports whether s is all ASCII, eight bytes at a time.
func ascii(s string) bool {
	var a uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		a |= textenc.Load64(s, i)
	}
	if i < len(s) {
		if len(s) < 8 {
			for ; i < len(s); i++ {
				if s[i] >= utf8.RuneSelf {
					return false
				}
			}
			return true
		}
		a |= textenc.Load64(s, len(s)-8)
	}
	return a&textenc.Highs == 0
}

// appendPoint appends p's value in e.Format; in JSON, p.Value is finite.
func (e *Encoder) appendPoint(b []byte, p *sdk.Point) []byte {
	if e.Format == JSON {
		return e.appendPointJSON(b, p)
	}
	// Fields in order and default values left out, as proto.Marshal writes
	// them.
	b = appendStringField(b, 1, p.Name)
	for _, t := range p.Tags {
		b = appendUTF8(appendTag(b, 2, protowire.BytesType), t)
	}
	if p.Type != 0 {
		b = appendVarint(appendTag(b, 3, protowire.VarintType), uint64(p.Type))
	}
	if v := math.Float64bits(p.Value); v != 0 {
		b = protowire.AppendFixed64(appendTag(b, 4, protowire.Fixed64Type), v)
	}
	if p.Timestamp != 0 {
		b = appendVarint(appendTag(b, 5, protowire.VarintType), uint64(p.Timestamp))
	}
	b = appendStringField(b, 6, p.Hostname)
	return appendStringField(b, 7, p.Message)
}

// appendEvent appends ev's value, flushed at ts, in e.Format.
func (e *Encoder) appendEvent(b []byte, ev *sdk.Event, ts int64) []byte {
	if e.Format == JSON {
		l := localfile.EventLine(ev, ts)
		return l.AppendJSON(b)
	}
	if ev.Timestamp != 0 {
		ts = ev.Timestamp
	}
	b = appendStringField(b, 1, ev.Title)
	b = appendStringField(b, 2, ev.Text)
	for _, t := range ev.Tags {
		b = appendUTF8(appendTag(b, 3, protowire.BytesType), t)
	}
	if ts != 0 {
		b = appendVarint(appendTag(b, 4, protowire.VarintType), uint64(ts))
	}
	b = appendStringField(b, 5, ev.Hostname)
	b = appendStringField(b, 6, ev.AggregationKey)
	b = appendStringField(b, 7, ev.Priority)
	b = appendStringField(b, 8, ev.SourceType)
	return appendStringField(b, 9, ev.AlertType)
}

// appendStringField appends field num holding s, unless s is empty.
func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendUTF8(appendTag(b, num, protowire.BytesType), s)
}

// appendUTF8 appends s length-prefixed, each byte that is not part of valid
// UTF-8 replaced with U+FFFD: protobuf strings must be valid UTF-8, and
// decoders refuse a message with one that is not.
func appendUTF8(b []byte, s string) []byte {
	if ascii(s) || utf8.ValidString(s) {
		return append(appendVarint(b, uint64(len(s))), s...)
	}
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += len("\uFFFD")
		} else {
			n += size
		}
		i += size
	}
	b = appendVarint(b, uint64(n))
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), "\uFFFD"...)
			start = i + 1
		}
		i += size
	}
	return append(b, s[start:]...)
}

// appendPointJSON appends the line the localfile sink writes for p, without
// its newline: localfile.PointLine(p).AppendJSON, and the same bytes. When
// p's strings need no escaping, as they nearly always do not, it writes the
// line itself, faster.
func (e *Encoder) appendPointJSON(b []byte, p *sdk.Point) []byte {
	start := len(b)
	if p.Type == sdk.PointStatus {
		b = append(b, `{"kind":"service_check","name":"`...)
	} else {
		b = append(b, `{"name":"`...)
	}
	if !plainJSON(p.Name) {
		return fallbackJSON(b[:start], p)
	}
	b = append(append(b, p.Name...), `","tags":[`...)
	for i, t := range p.Tags {
		if !plainJSON(t) {
			return fallbackJSON(b[:start], p)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), t...), '"')
	}
	b = append(append(append(b, `],"type":"`...), p.Type.String()...), `","value":`...)
	b = textenc.AppendFloat(b, p.Value)
	b = e.ts.Append(append(b, `,"timestamp":`...), p.Timestamp)
	if !plainJSON(p.Hostname) || !plainJSON(p.Message) {
		return fallbackJSON(b[:start], p)
	}
	b = append(append(append(b, `,"hostname":"`...), p.Hostname...), '"')
	if p.Message != "" {
		b = append(append(append(b, `,"message":"`...), p.Message...), '"')
	}
	return append(b, '}')
}

func fallbackJSON(b []byte, p *sdk.Point) []byte {
	l := localfile.PointLine(p)
	return l.AppendJSON(b)
}

// plainJSON reports whether s is written in JSON as it is, between quotes:
// it holds no byte that encoding/json (and so localfile) escapes or checks,
// that is no control character, quote, backslash, <, > or &, and only
// ASCII. Eight bytes at a time.
func plainJSON(s string) bool {
	var a uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		a |= notPlain8(textenc.Load64(s, i))
	}
	if i < len(s) {
		if len(s) < 8 {
			for ; i < len(s); i++ {
				if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
					return false
				}
			}
			return true
		}
		a |= notPlain8(textenc.Load64(s, len(s)-8))
	}
	return a == 0
}

// notPlain8 is not zero when one of the bytes of w is one plainJSON refuses.
func notPlain8(w uint64) uint64 {
	// " (0x22) and & (0x26) differ in one bit, as do < (0x3c) and > (0x3e).
	return (w-textenc.Ones*0x20)&^w&textenc.Highs | w&textenc.Highs | textenc.Zero8((w^(textenc.Ones*'"'))&^(textenc.Ones*0x04)) |
		textenc.Zero8((w^(textenc.Ones*'<'))&^(textenc.Ones*0x02)) | textenc.Zero8(w^(textenc.Ones*'\\'))
}
