package influxdb

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/veneurd/veneurd/internal/textenc"
	"github.com/veneurd/veneurd/sdk"
)

// Limits InfluxDB puts on what it accepts.
const (
	// MaxKeyLength is the longest series key (the measurement and tag set
	// as written, escapes included) InfluxDB accepts: a longer one fails
	// the point with "max key length exceeded".
	MaxKeyLength = 65535
	// MaxStringLength is the documented length limit of a string, which the
	// message field is cut to (in bytes, at a character boundary).
	MaxStringLength = 64 << 10
)

// Encoder builds the body of an InfluxDB write request (/write or
// /api/v2/write) in line protocol, one line per point:
//
//	<measurement>[,<tag>=<value>...] value=<float>[,message="<text>"] <seconds>\n
//
// The timestamp is in seconds: the request must be made with precision=s.
// NOTES.md gives the full mapping. An Encoder is reused across requests and
// is not safe for concurrent use.
type Encoder struct {
	// NoHostTag leaves out the host tag that a point's hostname otherwise
	// becomes.
	NoHostTag bool
	// NoMessage leaves out the message field of service checks, for
	// receivers that have no strings: VictoriaMetrics reads a quoted field
	// as a number, and a message as a series <name>_message of value 0.
	NoMessage bool

	buf     []byte
	n       int
	ts      textenc.Timestamp
	tags    []tag  // the current point's tags, when appendTags sorts them
	scratch []byte // the current point's strings that needed cleaning
}

// tag is one tag as stored, before escaping; esc is false when neither its
// key nor its value holds anything to escape.
type tag struct {
	k, v string
	esc  bool
}

// Reset empties the body, keeping its capacity.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.n = 0
}

// Len is the number of points appended since Reset.
func (e *Encoder) Len() int { return e.n }

// Size is the length of the body in bytes.
func (e *Encoder) Size() int { return len(e.buf) }

// Body is the request body: the lines of the points appended since Reset.
// It is valid until the next Reset or Point; the caller copies it to keep
// it.
func (e *Encoder) Body() []byte { return e.buf }

// Point appends p's line. It returns false, appending nothing, when InfluxDB
// cannot take the point: its value is NaN or infinite (InfluxDB stores
// neither), its name is empty (a measurement is required), or its series key
// would be longer than MaxKeyLength. Every other point is written, its
// strings sanitised and escaped as NOTES.md describes. p is not retained.
func (e *Encoder) Point(p *sdk.Point) bool {
	if p.Name == "" || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return false
	}
	start := len(e.buf)
	e.scratch = e.scratch[:0]
	b := e.buf
	name, esc := e.clean(p.Name)
	if name[0] == '#' {
		// A line starting with # is a comment.
		b = append(b, '_')
		name = name[1:]
	}
	b = appendEscaped(b, name, esc, false)
	if tags, ok := e.appendTagsInOrder(b, p); ok {
		b = tags
	} else {
		b = e.appendTags(b, p)
	}
	if len(b)-start > MaxKeyLength {
		e.buf = b[:start]
		return false
	}
	b = append(b, " value="...)
	b = textenc.AppendFloat(b, p.Value)
	if p.Message != "" && !e.NoMessage {
		b = append(b, `,message="`...)
		b = appendStringField(b, p.Message)
		b = append(b, '"')
	}
	b = append(b, ' ')
	b = e.ts.Append(b, p.Timestamp)
	e.buf = append(b, '\n')
	e.n++
	return true
}

// appendTagsInOrder appends p's tags as appendTags does, in one pass, when
// that is simple: p's tags are clean, none is renamed or left out, and
// their keys are in order (as they are when the tags, sorted as strings,
// have no key that is a prefix of another). Otherwise it returns false,
// having appended part of the tags, and appendTags is the way.
func (e *Encoder) appendTagsInOrder(b []byte, p *sdk.Point) ([]byte, bool) {
	host := e.NoHostTag || p.Hostname == "" // whether the host is written, or not to be
	var hostEsc bool
	if !host {
		var dirty bool
		if dirty, hostEsc = scan(p.Hostname); dirty {
			return b, false
		}
	}
	var prev string
	for _, s := range p.Tags {
		i, dirty, esc := scanTag(s)
		k := s
		if i >= 0 {
			k = s[:i]
		}
		if dirty || !after(k, prev) || i == len(s)-1 {
			// To clean, out of order, a duplicate, an empty key or an
			// empty value.
			return b, false
		}
		switch k {
		case "time", "_field", "_measurement":
			return b, false
		}
		if !host && !after("host", k) {
			if k != "host" {
				b = appendEscaped(append(b, ",host="...), p.Hostname, hostEsc, true)
			}
			host = true
		}
		switch {
		case i < 0:
			b = append(appendEscaped(append(b, ','), s, esc, true), "=true"...)
		case !esc:
			eq := len(b) + 1 + i
			b = append(append(b, ','), s...)
			b[eq] = '='
		default:
			b = appendEscaped(append(b, ','), k, esc, true)
			b = appendEscaped(append(b, '='), s[i+1:], esc, true)
		}
		prev = k
	}
	if !host {
		b = appendEscaped(append(b, ",host="...), p.Hostname, hostEsc, true)
	}
	return b, true
}

// appendTags appends ,key=value for each of p's tags, collected by
// collectTags, and the host tag, skipping a tag whose key is the previous
// one's: InfluxDB refuses a point with duplicate tag keys.
func (e *Encoder) appendTags(b []byte, p *sdk.Point) []byte {
	e.collectTags(p)
	var prev string
	for i, t := range e.tags {
		if i > 0 && t.k == prev {
			continue
		}
		prev = t.k
		b = appendEscaped(append(b, ','), t.k, t.esc, true)
		b = appendEscaped(append(b, '='), t.v, t.esc, true)
	}
	return b
}

// collectTags fills e.tags with p's tags as they are stored: split at the
// first colon, cleaned, reserved keys renamed, sorted by key (stably, so
// that of tags sharing a key the first one is kept), with the host tag
// added.
func (e *Encoder) collectTags(p *sdk.Point) {
	e.tags = e.tags[:0]
	hasHost := false
	for _, s := range p.Tags {
		// One scan of the whole tag says whether its key and value need
		// cleaning or escaping.
		dirty, esc := scan(s)
		t := tag{k: s, v: "true", esc: esc}
		if i := strings.IndexByte(s, ':'); i >= 0 {
			t.k, t.v = s[:i], s[i+1:]
			if t.v == "" {
				// InfluxDB has no empty tag values: an empty value is an
				// absent tag.
				continue
			}
		}
		if t.k == "" {
			continue
		}
		if dirty {
			t.k, t.v = e.cleanDirty(t.k), e.cleanDirty(t.v)
			t.esc = true
		}
		// InfluxDB refuses points with the tag keys time, _field and
		// _measurement.
		switch t.k {
		case "time":
			t.k = "time_"
		case "_field":
			t.k = "_field_"
		case "_measurement":
			t.k = "_measurement_"
		case "host":
			hasHost = true
		}
		e.tags = append(e.tags, t)
	}
	if !hasHost && !e.NoHostTag && p.Hostname != "" {
		t := tag{k: "host"}
		t.v, t.esc = e.clean(p.Hostname)
		e.tags = append(e.tags, t)
	}
	if len(e.tags) <= 12 {
		// Insertion sort: tags arrive sorted as strings, which is nearly
		// always sorted by key.
		for i := 1; i < len(e.tags); i++ {
			t := e.tags[i]
			j := i
			for ; j > 0 && e.tags[j-1].k > t.k; j-- {
				e.tags[j] = e.tags[j-1]
			}
			e.tags[j] = t
		}
		return
	}
	slices.SortStableFunc(e.tags, func(a, b tag) int { return strings.Compare(a.k, b.k) })
}

// clean returns s as InfluxDB is to store it (see appendClean): s itself
// when it needs no cleaning, else a cleaned copy in e.scratch, valid until
// the next Point. esc is false when the result holds nothing to escape.
func (e *Encoder) clean(s string) (clean string, esc bool) {
	dirty, esc := scan(s)
	if !dirty {
		return s, esc
	}
	return e.cleanDirty(s), true
}

// cleanDirty returns a cleaned copy of s in e.scratch, valid until the next
// Point.
func (e *Encoder) cleanDirty(s string) string {
	if s == "" {
		return ""
	}
	i := len(e.scratch)
	e.scratch = appendClean(e.scratch, s)
	// Cleaning never shortens s, which is not empty. The bytes are not
	// written again before the next Point resets e.scratch, and a copy left
	// behind when e.scratch grows stays as it is.
	return unsafe.String(&e.scratch[i], len(e.scratch)-i)
}

// appendClean appends s as InfluxDB is to store it in a measurement, tag key
// or tag value: each control character (C0, DEL and C1, newlines included)
// becomes a space, each byte that is not part of valid UTF-8 becomes U+FFFD,
// and a backslash that would stand last or before a backslash, comma, equals
// sign or space becomes a slash. InfluxDB and the line protocol spec
// disagree on what a backslash means there (InfluxDB keeps `\\` as two
// backslashes, the spec and other receivers read one), so the output has
// only backslashes that all of them read as themselves.
func appendClean(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !attention[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch {
			case c != '\\':
				b = append(b, ' ')
			case escapedAfterClean(s, i+1):
				b = append(b, '/')
			default:
				b = append(b, '\\')
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
		case r < 0xa0: // C1 control
			b = append(b, s[start:i]...)
			b = append(b, ' ')
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// escapedAfterClean reports whether a backslash before s[i:] would, once s
// is cleaned, be followed by nothing, a backslash, or a character that
// line protocol escapes (comma, equals sign, space, which control
// characters become).
func escapedAfterClean(s string, i int) bool {
	if i == len(s) {
		return true
	}
	switch c := s[i]; {
	case c < 0x20, c == 0x7f, c == '\\', c == ',', c == '=', c == ' ':
		return true
	case c == 0xc2:
		return i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] < 0xa0 // C1 control
	}
	return false
}

// appendEscaped appends s, cleaned, with a backslash before each comma and
// space, and before each equals sign when eq is set (tag keys and values;
// measurements do not escape it). esc false says s holds none of them.
func appendEscaped(b []byte, s string, esc, eq bool) []byte {
	if !esc {
		return append(b, s...)
	}
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == ' ' || (c == '=' && eq) {
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	return append(b, s[start:]...)
}

// appendStringField appends s as the inside of a string field value: double
// quotes and backslashes escaped, control characters turned into spaces and
// invalid UTF-8 into U+FFFD as in appendClean, and cut to MaxStringLength
// bytes of text at a character boundary.
func appendStringField(b []byte, s string) []byte {
	n := 0 // bytes of text written
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		w := size
		if r == utf8.RuneError && size == 1 {
			w = 3
		}
		if n+w > MaxStringLength {
			break
		}
		n += w
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || (r >= 0x7f && r < 0xa0):
			b = append(b, ' ')
		case r == utf8.RuneError && size == 1:
			b = append(b, "\uFFFD"...)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// after reports whether k sorts after prev, deciding on the first bytes
// without a call when they differ, as they mostly do.
func after(k, prev string) bool {
	if len(k) > 0 && len(prev) > 0 && k[0] != prev[0] {
		return k[0] > prev[0]
	}
	return k > prev
}
