// Package frame is the packed encoding of samples between a source plugin and
// the host: the hottest format veneurd owns.
//
// A frame is a version byte followed by records. Each record is
//
//	value   float64  (for sets: the member's 64-bit hash)
//	rate    float64  sample rate in (0, 1]
//	scope   uint8    \
//	type    uint8     |  the series key: these bytes identify a series,
//	nameLen uint16    |  so the host can look one up without building a
//	tagsLen uint16    |  string (map[string(key)] does not allocate)
//	name    []byte    |
//	tags    []byte   /   sorted, comma-joined
//
// all little-endian. Records are written and read without allocation.
package frame

import (
	"encoding/binary"
	"errors"
	"math"
)

// Version is the frame format version, the first byte of every frame.
const Version = 1

const (
	fixedLen = 8 + 8 + 1 + 1 + 2 + 2
	keyStart = 16
)

// MaxNameLen and MaxTagsLen bound a record's variable parts.
const (
	MaxNameLen = math.MaxUint16
	MaxTagsLen = math.MaxUint16
)

// ErrTooLong is returned by Append for a name or tags longer than 65535 bytes.
var ErrTooLong = errors.New("metric name or tags longer than 65535 bytes")

// Writer appends records to a frame. The zero value is ready to use. Not safe
// for concurrent use.
type Writer struct {
	buf []byte
	n   int
}

// NewWriter returns a Writer that appends to buf[:0].
func NewWriter(buf []byte) Writer { return Writer{buf: buf[:0]} }

// Append adds one sample of type typ (an sdk.MetricType) and scope (an
// sdk.Scope). name and tags are copied.
func (w *Writer) Append(typ, scope uint8, name, tags []byte, value, rate float64) error {
	if len(name) > MaxNameLen || len(tags) > MaxTagsLen {
		return ErrTooLong
	}
	if len(w.buf) == 0 {
		w.buf = append(w.buf, Version)
	}
	var hdr [fixedLen]byte
	binary.LittleEndian.PutUint64(hdr[0:], math.Float64bits(value))
	binary.LittleEndian.PutUint64(hdr[8:], math.Float64bits(rate))
	hdr[16] = byte(scope)
	hdr[17] = byte(typ)
	binary.LittleEndian.PutUint16(hdr[18:], uint16(len(name)))
	binary.LittleEndian.PutUint16(hdr[20:], uint16(len(tags)))
	w.buf = append(w.buf, hdr[:]...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, tags...)
	w.n++
	return nil
}

// Len returns the number of records written since the last Reset.
func (w *Writer) Len() int { return w.n }

// Size returns the frame's size in bytes.
func (w *Writer) Size() int { return len(w.buf) }

// Bytes returns the frame. It aliases the Writer's buffer until Reset.
func (w *Writer) Bytes() []byte { return w.buf }

// Reset empties the frame, keeping its buffer.
func (w *Writer) Reset() { w.buf, w.n = w.buf[:0], 0 }

// Sample is one decoded record. Its slices alias the frame.
type Sample struct {
	Value float64
	Rate  float64
	Scope uint8 // an sdk.Scope
	Type  uint8 // an sdk.MetricType
	Name  []byte
	Tags  []byte
	// Key identifies the series: scope, type, name and tags.
	Key []byte
}

// ErrCorrupt is returned for a frame that does not decode.
var ErrCorrupt = errors.New("corrupt sample frame")

// Reader iterates over the records of a frame without allocating:
//
//	r := frame.NewReader(b)
//	for r.Next() {
//		use(&r.Sample)
//	}
//	if err := r.Err(); err != nil { ... }
//
// Records before a corrupt one are delivered; the rest is reported by Err.
type Reader struct {
	// Sample is the current record. Its slices alias the frame and it is
	// overwritten by Next.
	Sample Sample
	b      []byte
	err    error
}

// NewReader returns a Reader over frame.
func NewReader(frame []byte) Reader {
	if len(frame) == 0 {
		return Reader{}
	}
	if frame[0] != Version {
		return Reader{err: ErrCorrupt}
	}
	return Reader{b: frame[1:]}
}

// Next moves to the next record and reports whether there is one.
func (r *Reader) Next() bool {
	b := r.b
	if len(b) == 0 || r.err != nil {
		return false
	}
	if len(b) < fixedLen {
		r.err, r.b = ErrCorrupt, nil
		return false
	}
	nl := int(binary.LittleEndian.Uint16(b[18:]))
	tl := int(binary.LittleEndian.Uint16(b[20:]))
	end := fixedLen + nl + tl
	if len(b) < end {
		r.err, r.b = ErrCorrupt, nil
		return false
	}
	s := &r.Sample
	s.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[0:]))
	s.Rate = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	s.Scope = b[16]
	s.Type = b[17]
	s.Name = b[fixedLen : fixedLen+nl]
	s.Tags = b[fixedLen+nl : end]
	s.Key = b[keyStart:end]
	r.b = b[end:]
	return true
}

// Err returns ErrCorrupt if the frame ended in a record that does not decode.
func (r *Reader) Err() error { return r.err }

// SetValue returns the value that carries a set member's hash.
func SetValue(hash uint64) float64 { return math.Float64frombits(hash) }

// SetHash is the inverse of SetValue.
func SetHash(value float64) uint64 { return math.Float64bits(value) }
