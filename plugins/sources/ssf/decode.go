package ssf

import (
	"encoding/binary"
	"errors"
	"math"
)

// The decoder reads an SSFSpan's protobuf encoding in place: names, tags and
// messages stay slices of the packet, samples and tags go into slices the
// decoder keeps from one span to the next, so decoding allocates nothing
// once they have grown. It accepts and refuses exactly what Veneur v14.2.0
// does: Veneur decodes SSF with gogo/protobuf's generated code
// (ssf/sample.pb.go), whose rules are followed here one by one, quirks
// included (a varint of ten bytes whose last bits overflow is taken, not
// refused; a known field of the wrong wire type is an error, not an unknown
// field; a map entry's key or value is read as length-delimited whatever its
// wire type; string fields are not checked for UTF-8). FuzzDecode checks the
// two agree on every input.

// Field numbers of ssf.proto.
const (
	fSpanVersion   = 1
	fSpanTraceID   = 2
	fSpanID        = 3
	fSpanParentID  = 4
	fSpanStart     = 5
	fSpanEnd       = 6
	fSpanError     = 7
	fSpanService   = 8
	fSpanMetrics   = 10
	fSpanTags      = 11
	fSpanIndicator = 12
	fSpanName      = 13
	fSpanRootStart = 14

	fSampleMetric  = 1
	fSampleName    = 2
	fSampleValue   = 3
	fSampleTime    = 4
	fSampleMessage = 5
	fSampleStatus  = 6
	fSampleRate    = 7
	fSampleTags    = 8
	fSampleUnit    = 9
	fSampleScope   = 10

	fMapEntryKey   = 1
	fMapEntryValue = 2
)

// Wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

// Decoding errors. errTruncated is an encoding that ends in the middle of a
// field; errInvalid any other malformed encoding.
var (
	errTruncated = errors.New("the protobuf encoding is truncated")
	errInvalid   = errors.New("the protobuf encoding is invalid")
)

// SSFSample.Metric values.
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
	metricSet       = 3
	metricStatus    = 4
)

// SSFSample.Scope values.
const (
	scopeDefault = 0
	scopeLocal   = 1
	scopeGlobal  = 2
)

// span is a decoded SSFSpan: the fields metrics are made of.
type span struct {
	traceID, id int64
	start, end  int64 // Unix nanoseconds
	isError     bool
	indicator   bool
	service     []byte
	name        []byte
	// objective is the value of the span's tag "ssf_objective" (the last
	// one: a map keeps the last value of a key), which names the objective
	// timer.
	objective []byte
	samples   []sample
}

// sample is a decoded SSFSample. Its tags are decoder.tags[tags0:tags1], in
// the order they came.
type sample struct {
	metric       int32
	status       int32
	scope        int32
	value        float32
	rate         float32
	name         []byte
	message      []byte
	tags0, tags1 int
}

// tagPair is one entry of a sample's tags map.
type tagPair struct{ k, v []byte }

// decoder decodes spans, reusing its slices. Not safe for concurrent use.
type decoder struct {
	sp   span
	tags []tagPair
}

// decode decodes b into d.sp, which stays valid until the next call and
// holds slices of b. It normalizes the span as Veneur's protocol.ParseSSF
// does: a span without a name takes its tag "name", and a sample rate of 0
// (left out) is 1.
func (d *decoder) decode(b []byte) (*span, error) {
	sp := &d.sp
	*sp = span{samples: sp.samples[:0]}
	d.tags = d.tags[:0]
	var nameTag []byte
	hasNameTag := false

	l := len(b)
	i := 0
	for i < l {
		pre := i
		wire, n := varint(b[i:])
		if n < 0 {
			return nil, varintErr(n)
		}
		i += n
		num := int32(wire >> 3)
		wt := int(wire & 7)
		if wt == wireEndGroup || num <= 0 {
			return nil, errInvalid
		}
		switch num {
		case fSpanVersion, fSpanParentID, fSpanRootStart:
			if wt != wireVarint {
				return nil, errInvalid
			}
			_, n := varint(b[i:])
			if n < 0 {
				return nil, varintErr(n)
			}
			i += n
		case fSpanTraceID, fSpanID, fSpanStart, fSpanEnd, fSpanError, fSpanIndicator:
			if wt != wireVarint {
				return nil, errInvalid
			}
			v, n := varint(b[i:])
			if n < 0 {
				return nil, varintErr(n)
			}
			i += n
			switch num {
			case fSpanTraceID:
				sp.traceID = int64(v)
			case fSpanID:
				sp.id = int64(v)
			case fSpanStart:
				sp.start = int64(v)
			case fSpanEnd:
				sp.end = int64(v)
			case fSpanError:
				sp.isError = v != 0
			case fSpanIndicator:
				sp.indicator = v != 0
			}
		case fSpanService, fSpanName:
			if wt != wireBytes {
				return nil, errInvalid
			}
			s, next, err := lengthDelimited(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			if num == fSpanService {
				sp.service = s
			} else {
				sp.name = s
			}
		case fSpanMetrics:
			if wt != wireBytes {
				return nil, errInvalid
			}
			m, next, err := lengthDelimited(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			s := sample{tags0: len(d.tags)}
			if err := d.sample(m, &s); err != nil {
				return nil, err
			}
			s.tags1 = len(d.tags)
			sp.samples = append(sp.samples, s)
		case fSpanTags:
			if wt != wireBytes {
				return nil, errInvalid
			}
			k, v, next, err := mapEntry(b, i)
			if err != nil {
				return nil, err
			}
			i = next
			switch string(k) {
			case "name":
				nameTag, hasNameTag = v, true
			case "ssf_objective":
				sp.objective = v
			}
		default:
			skip, err := skipField(b[pre:])
			if err != nil {
				return nil, err
			}
			if pre+skip > l {
				return nil, errTruncated
			}
			i = pre + skip
		}
	}
	if len(sp.name) == 0 && hasNameTag {
		sp.name = nameTag
	}
	return sp, nil
}

// sample decodes one SSFSample, appending its tags to d.tags.
func (d *decoder) sample(b []byte, s *sample) error {
	l := len(b)
	i := 0
	for i < l {
		pre := i
		wire, n := varint(b[i:])
		if n < 0 {
			return varintErr(n)
		}
		i += n
		num := int32(wire >> 3)
		wt := int(wire & 7)
		if wt == wireEndGroup || num <= 0 {
			return errInvalid
		}
		switch num {
		case fSampleMetric, fSampleStatus, fSampleScope, fSampleTime:
			if wt != wireVarint {
				return errInvalid
			}
			v, n := varint(b[i:])
			if n < 0 {
				return varintErr(n)
			}
			i += n
			// Veneur's enums are int32s: what a varint holds past 32 bits
			// is shifted out.
			switch num {
			case fSampleMetric:
				s.metric = int32(v)
			case fSampleStatus:
				s.status = int32(v)
			case fSampleScope:
				s.scope = int32(v)
			}
		case fSampleValue, fSampleRate:
			if wt != wireFixed32 {
				return errInvalid
			}
			if i+4 > l {
				return errTruncated
			}
			f := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
			i += 4
			if num == fSampleValue {
				s.value = f
			} else {
				s.rate = f
			}
		case fSampleName, fSampleMessage, fSampleUnit:
			if wt != wireBytes {
				return errInvalid
			}
			v, next, err := lengthDelimited(b, i)
			if err != nil {
				return err
			}
			i = next
			switch num {
			case fSampleName:
				s.name = v
			case fSampleMessage:
				s.message = v
			}
		case fSampleTags:
			if wt != wireBytes {
				return errInvalid
			}
			k, v, next, err := mapEntry(b, i)
			if err != nil {
				return err
			}
			i = next
			d.tags = append(d.tags, tagPair{k, v})
		default:
			skip, err := skipField(b[pre:])
			if err != nil {
				return err
			}
			if pre+skip > l {
				return errTruncated
			}
			i = pre + skip
		}
	}
	if s.rate == 0 {
		s.rate = 1
	}
	return nil
}

// varint reads a varint as gogo/protobuf does: up to ten bytes, the bits past
// 64 dropped. n is the bytes read, or -1 if b ends first, -2 if the varint
// is longer than ten bytes.
func varint(b []byte) (v uint64, n int) {
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, -2
		}
		if n >= len(b) {
			return 0, -1
		}
		c := b[n]
		n++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, n
		}
	}
}

func varintErr(n int) error {
	if n == -1 {
		return errTruncated
	}
	return errInvalid
}

// lengthDelimited reads the length at b[i:] and returns the bytes it
// announces and the index after them.
func lengthDelimited(b []byte, i int) ([]byte, int, error) {
	v, n := varint(b[i:])
	if n < 0 {
		return nil, 0, varintErr(n)
	}
	i += n
	size := int(v)
	if size < 0 {
		return nil, 0, errInvalid
	}
	end := i + size
	if end < 0 {
		return nil, 0, errInvalid
	}
	if end > len(b) {
		return nil, 0, errTruncated
	}
	return b[i:end:end], end, nil
}

// mapEntry reads the map<string, string> entry whose length is at b[i:]
// and returns its key, value and the index after the entry. It follows
// gogo/protobuf's generated code: fields 1 and 2 are read as strings
// whatever their wire type, within the enclosing message rather than the
// entry (the index then goes back to the entry's end), and other fields are
// skipped within the entry.
func mapEntry(b []byte, i int) (k, v []byte, next int, err error) {
	entry, end, err := lengthDelimited(b, i)
	if err != nil {
		return nil, nil, 0, err
	}
	i = end - len(entry)
	for i < end {
		pre := i
		wire, m := varint(b[i:])
		if m < 0 {
			return nil, nil, 0, varintErr(m)
		}
		i += m
		switch int32(wire >> 3) {
		case fMapEntryKey, fMapEntryValue:
			s, after, err := lengthDelimited(b, i)
			if err != nil {
				return nil, nil, 0, err
			}
			i = after
			if int32(wire>>3) == fMapEntryKey {
				k = s
			} else {
				v = s
			}
		default:
			skip, err := skipField(b[pre:])
			if err != nil {
				return nil, nil, 0, err
			}
			if pre+skip > end {
				return nil, nil, 0, errTruncated
			}
			i = pre + skip
		}
	}
	return k, v, end, nil
}

// skipField returns the length of the field, tag included, that b starts
// with, as gogo/protobuf's skip functions do: a fixed-size value may run
// past b (the caller checks), a group is skipped to the end group that
// closes it, without checking field numbers. Groups are followed with a
// depth count rather than recursion, so that a packet of nested groups
// cannot grow the stack.
func skipField(b []byte) (int, error) {
	l := len(b)
	i := 0
	depth := 0
	for {
		wire, n := varint(b[i:])
		if n < 0 {
			return 0, varintErr(n)
		}
		i += n
		switch int(wire & 7) {
		case wireVarint:
			_, n := varint(b[i:])
			if n < 0 {
				return 0, varintErr(n)
			}
			i += n
		case wireFixed64:
			i += 8
		case wireBytes:
			v, n := varint(b[i:])
			if n < 0 {
				return 0, varintErr(n)
			}
			i += n
			// gogo reads this length into an int, seven bits at a time.
			size := int(v)
			if size < 0 {
				return 0, errInvalid
			}
			i += size
			if i < 0 {
				return 0, errInvalid
			}
		case wireStartGroup:
			depth++
		case wireEndGroup:
			if depth > 0 {
				depth--
			}
		case wireFixed32:
			i += 4
		default:
			return 0, errInvalid
		}
		if depth == 0 {
			return i, nil
		}
		if i > l {
			// Inside a group, gogo reads the next tag, which is not there.
			return 0, errTruncated
		}
	}
}
