package state

import (
	"encoding/binary"
	"errors"
	"math"
)

// Samples is a buffer of samples on their way into a Table, within one
// process: a source's Writer appends the samples it is given, and hands the
// buffer to Table.AddSamples when it fills up or is flushed. A buffer is
// reused from one batch to the next, so that appending and adding cost no
// allocation once it has grown to fit.
//
// Each sample is packed into one byte slice as
//
//	value   float64  for sets, the member's 64-bit hash (its bits, not a number)
//	rate    float64  the sample rate
//	scope   uint8    an sdk.Scope
//	type    uint8    \
//	nameLen uint16    |  the series key (see Series): a sample's series is
//	tagsLen uint16    |  found by hashing and comparing these bytes, without
//	name    []byte    |  building a string
//	tags    []byte   /   sorted, comma-joined
//
// Only Append writes it, so AddSamples reads it back without checking it.
// The zero value is an empty buffer. Not safe for concurrent use.
type Samples struct {
	b []byte
	n int
}

const (
	sampleHeader = 8 + 8 + 1 // value, rate, scope
	keyHeader    = 1 + 2 + 2 // type, nameLen, tagsLen
	sampleFixed  = sampleHeader + keyHeader
)

// MaxNameLen and MaxTagsLen bound a sample's name and tags.
const (
	MaxNameLen = math.MaxUint16
	MaxTagsLen = math.MaxUint16
)

// ErrTooLong is returned by Append for a name or tags longer than 65535 bytes.
var ErrTooLong = errors.New("metric name or tags longer than 65535 bytes")

// NewSamples returns an empty buffer with room for size bytes of samples.
func NewSamples(size int) *Samples { return &Samples{b: make([]byte, 0, size)} }

// Append adds one sample of type typ (an sdk.MetricType) and scope (an
// sdk.Scope; one it does not know is taken as ScopeDefault). name and tags
// are copied.
func (s *Samples) Append(typ, scope uint8, name, tags []byte, value, rate float64) error {
	if len(name) > MaxNameLen || len(tags) > MaxTagsLen {
		return ErrTooLong
	}
	if scope > ScopeGlobal {
		scope = ScopeDefault
	}
	var hdr [sampleFixed]byte
	binary.LittleEndian.PutUint64(hdr[0:], math.Float64bits(value))
	binary.LittleEndian.PutUint64(hdr[8:], math.Float64bits(rate))
	hdr[16] = scope
	hdr[17] = typ
	binary.LittleEndian.PutUint16(hdr[18:], uint16(len(name)))
	binary.LittleEndian.PutUint16(hdr[20:], uint16(len(tags)))
	s.b = append(s.b, hdr[:]...)
	s.b = append(s.b, name...)
	s.b = append(s.b, tags...)
	s.n++
	return nil
}

// Len returns the number of samples held.
func (s *Samples) Len() int { return s.n }

// Size returns the bytes the samples take.
func (s *Samples) Size() int { return len(s.b) }

// Reset empties the buffer, keeping its storage.
func (s *Samples) Reset() { s.b, s.n = s.b[:0], 0 }

// sample is one sample read back from a Samples buffer; key aliases it.
type sample struct {
	value float64
	rate  float64
	scope uint8
	typ   uint8
	key   []byte // type, name and tags: the series key
}

// read reads the sample at offset off into out and returns the offset of
// the next one.
func (s *Samples) read(off int, out *sample) int {
	b := s.b[off:]
	nl := int(binary.LittleEndian.Uint16(b[18:]))
	tl := int(binary.LittleEndian.Uint16(b[20:]))
	end := sampleFixed + nl + tl
	out.value = math.Float64frombits(binary.LittleEndian.Uint64(b[0:]))
	out.rate = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	out.scope = b[16]
	out.typ = b[17]
	out.key = b[sampleHeader:end]
	return off + end
}
