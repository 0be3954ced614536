package sdk

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"unsafe"
)

// Points are packed for the host-to-sink boundary: one bytes field per
// chunk instead of a protobuf message per point, so that neither side
// allocates per point or validates each string. A
// chunk is a version byte followed by records:
//
//	type      uint8   PointType
//	flags     uint8   pointNewTags | pointNewHost | pointMessage | pointNewTime
//	value     float64
//	[time]    varint   if pointNewTime, else the previous record's
//	name      uvarint length, bytes
//	[tags]    uvarint count, then each as uvarint length, bytes; if
//	          pointNewTags, else the previous record's tags
//	[host]    uvarint length, bytes; if pointNewHost, else the previous
//	[message] uvarint length, bytes; if pointMessage
//
// The points of one series (x.min, x.max, ...) share their tags slice, and a
// flush has one timestamp and nearly always one hostname: each is written
// once per run of records that share it.
const (
	pointNewTags = 1 << iota
	pointNewHost
	pointMessage
	pointNewTime
)

// PointsVersion is the first byte of a packed points chunk.
const PointsVersion = 1

// PointPacker packs points. The zero value is ready to use. Not safe for
// concurrent use.
type PointPacker struct {
	buf        []byte
	n          int
	flags      byte
	prevTags   []string // of the last Append
	prevJoined string   // of the last AppendJoined
	prevHost   string
	prevTime   int64
}

// Append packs p.
func (w *PointPacker) Append(p *Point) {
	newTags := w.n == 0 || !sameSlice(p.Tags, w.prevTags)
	w.header(p.Type, p.Value, p.Timestamp, p.Hostname, p.Message, newTags)
	w.appendString(p.Name)
	if newTags {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(p.Tags)))
		for _, t := range p.Tags {
			w.appendString(t)
		}
		w.prevTags, w.prevJoined = p.Tags, ""
	}
	w.trailer(p.Hostname, p.Message)
}

// AppendJoined packs a point named name+suffix whose tags are given sorted
// and comma-joined, as the aggregator keeps them: nothing is allocated. The
// points of one series pass the same tags string and share one tag list.
func (w *PointPacker) AppendJoined(name, suffix, tags string, typ PointType, value float64, ts int64, hostname, message string) {
	newTags := w.n == 0 || w.prevTags != nil || !sameString(tags, w.prevJoined)
	w.header(typ, value, ts, hostname, message, newTags)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(name)+len(suffix)))
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, suffix...)
	if newTags {
		n := 0
		if tags != "" {
			n = strings.Count(tags, ",") + 1
		}
		w.buf = binary.AppendUvarint(w.buf, uint64(n))
		for rest := tags; n > 0; n-- {
			var t string
			t, rest, _ = strings.Cut(rest, ",")
			w.appendString(t)
		}
		w.prevTags, w.prevJoined = nil, tags
	}
	w.trailer(hostname, message)
}

func (w *PointPacker) header(typ PointType, value float64, ts int64, hostname, message string, newTags bool) {
	if len(w.buf) == 0 {
		w.buf = append(w.buf, PointsVersion)
		w.n = 0
	}
	var flags byte
	if newTags {
		flags |= pointNewTags
	}
	if w.n == 0 || hostname != w.prevHost {
		flags |= pointNewHost
	}
	if message != "" {
		flags |= pointMessage
	}
	if w.n == 0 || ts != w.prevTime {
		flags |= pointNewTime
	}
	w.flags = flags
	w.buf = append(w.buf, byte(typ), flags)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(value))
	if flags&pointNewTime != 0 {
		w.buf = binary.AppendVarint(w.buf, ts)
		w.prevTime = ts
	}
}

func (w *PointPacker) trailer(hostname, message string) {
	if w.flags&pointNewHost != 0 {
		w.appendString(hostname)
		w.prevHost = hostname
	}
	if w.flags&pointMessage != 0 {
		w.appendString(message)
	}
	w.n++
}

// sameString reports whether a and b are the same string (not merely equal).
func sameString(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b))
}

// sameSlice reports whether a and b are the same slice (not merely equal).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}

func (w *PointPacker) appendString(s string) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Len returns the number of points packed since the last Reset.
func (w *PointPacker) Len() int { return w.n }

// Size returns the chunk's size in bytes.
func (w *PointPacker) Size() int { return len(w.buf) }

// Bytes returns the chunk; it aliases the writer's buffer until Reset.
func (w *PointPacker) Bytes() []byte { return w.buf }

// Grow makes room for n more bytes, so that a chunk of a known size is
// built without the garbage of growing by doubling.
func (w *PointPacker) Grow(n int) { w.buf = slices.Grow(w.buf, n) }

// Reset empties the writer for a new chunk. The buffer is not reused: the
// previous chunk may still be in use.
func (w *PointPacker) Reset() { w.buf, w.n = nil, 0 }

// ErrCorruptPoints is returned for a points chunk that does not decode.
var ErrCorruptPoints = errors.New("corrupt points chunk")

// UnpackPoints appends the points of a chunk to out. All strings share one
// allocation, a copy of the chunk, and points written with the same tags
// share one tags slice: callers must not mutate them.
func UnpackPoints(chunk []byte, out []Point) ([]Point, error) {
	if len(chunk) == 0 {
		return out, nil
	}
	if chunk[0] != PointsVersion {
		return out, ErrCorruptPoints
	}
	all := string(chunk)
	d := pointDecoder{s: all, i: 1}
	var tags []string
	var host string
	var ts int64
	for d.i < len(d.s) {
		if len(d.s)-d.i < 10 {
			return out, ErrCorruptPoints
		}
		typ, flags := PointType(d.s[d.i]), d.s[d.i+1]
		value := math.Float64frombits(binary.LittleEndian.Uint64([]byte(d.s[d.i+2 : d.i+10])))
		d.i += 10
		if flags&pointNewTime != 0 {
			ts = d.varint()
		}
		name := d.str()
		if flags&pointNewTags != 0 {
			n := d.uvarint()
			if n > uint64(len(d.s)) {
				return out, ErrCorruptPoints
			}
			tags = nil
			if n > 0 {
				tags = make([]string, n)
				for j := range tags {
					tags[j] = d.str()
				}
			}
		}
		if flags&pointNewHost != 0 {
			host = d.str()
		}
		var msg string
		if flags&pointMessage != 0 {
			msg = d.str()
		}
		if d.bad {
			return out, ErrCorruptPoints
		}
		out = append(out, Point{Name: name, Tags: tags, Type: typ, Value: value, Timestamp: ts, Hostname: host, Message: msg})
	}
	return out, nil
}

type pointDecoder struct {
	s   string
	i   int
	bad bool
}

func (d *pointDecoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for j := 0; j < binary.MaxVarintLen64; j++ {
		if d.i >= len(d.s) {
			d.bad = true
			return 0
		}
		b := d.s[d.i]
		d.i++
		if b < 0x80 {
			return x | uint64(b)<<shift
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	d.bad = true
	return 0
}

func (d *pointDecoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *pointDecoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}
