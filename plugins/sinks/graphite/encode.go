package graphite

import (
	"bytes"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/veneurd/veneurd/internal/textenc"
	"github.com/veneurd/veneurd/sdk"
)

// MaxLineLength is the longest line, without its newline, that Carbon's
// plaintext receiver takes: it drops the connection on a longer one, losing
// the lines after it.
const MaxLineLength = 16384

// Encoder builds Graphite plaintext protocol with tags (Graphite 1.1 and
// later), one line per point:
//
//	<prefix><name>[;<tag>=<value>...] <value> <seconds>\n
//
// NOTES.md gives the full mapping. An Encoder is reused across connections
// or requests and is not safe for concurrent use.
type Encoder struct {
	// Prefix is prepended to every name, sanitised as names are, e.g.
	// "veneur.". Empty by default.
	Prefix string
	// NoHostTag leaves out the host tag that a point's hostname otherwise
	// becomes.
	NoHostTag bool

	buf     []byte
	n       int
	ts      textenc.Timestamp
	tags    []tag
	scratch []byte // the current point's tag keys and values that needed cleaning
}

// tag is one tag as written.
type tag struct{ k, v string }

// Reset empties the body, keeping its capacity.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.n = 0
}

// Len is the number of points appended since Reset.
func (e *Encoder) Len() int { return e.n }

// Size is the length of the body in bytes.
func (e *Encoder) Size() int { return len(e.buf) }

// Body is the lines of the points appended since Reset. It is valid until
// the next Reset or Point; the caller copies it to keep it.
func (e *Encoder) Body() []byte { return e.buf }

// Point appends p's line. It returns false, appending nothing, when Graphite
// cannot take the point: its value is NaN or infinite (Carbon drops NaN, and
// neither is a measurement), its name is empty, or its line would be longer
// than MaxLineLength. Every other point is written, its strings sanitised as
// NOTES.md describes. A status point's message is not written: Graphite
// stores numbers only. p is not retained.
func (e *Encoder) Point(p *sdk.Point) bool {
	if p.Name == "" || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return false
	}
	start := len(e.buf)
	b := appendClean(e.buf, e.Prefix, nameChars, true)
	b = appendClean(b, p.Name, nameChars, e.Prefix == "")
	if tags, ok := appendTagsInOrder(b, p, e.NoHostTag); ok {
		b = tags
	} else {
		b = e.appendTags(b, p)
	}
	if n := len(b); n-start >= 2 && b[n-1] == '}' && b[n-2] == '"' && bytes.IndexByte(b[start:], '{') >= 0 {
		// Carbon reads a path ending in "} with a { as an OpenMetrics name,
		// metric{tag="value",...}.
		b[n-1] = '_'
	}
	b = append(b, ' ')
	b = textenc.AppendFloat(b, p.Value)
	b = append(b, ' ')
	b = e.ts.Append(b, p.Timestamp)
	if len(b)-start > MaxLineLength {
		e.buf = b[:start]
		return false
	}
	e.buf = append(b, '\n')
	e.n++
	return true
}

// appendTagsInOrder appends p's tags as appendTags does, in one pass, when
// that is simple: p's tags need no sanitising (nor do their values hold a
// character that only tag names forbid), none is left out, and their names
// are in order (as they are when the tags, sorted as strings, have no name
// that is a prefix of another). Otherwise it returns false, having appended
// part of the tags, and appendTags is the way.
func appendTagsInOrder(b []byte, p *sdk.Point, noHost bool) ([]byte, bool) {
	host := noHost || p.Hostname == "" // whether the host is written, or not to be
	if !host && valueChars.dirty(p.Hostname, true) {
		return b, false
	}
	var prev string
	for _, s := range p.Tags {
		i, dirty := scanTag(s)
		k := s
		if i >= 0 {
			k = s[:i]
		}
		if dirty || !after(k, prev) || i == len(s)-1 || (i >= 0 && s[i+1] == '~') {
			// To sanitise, out of order, a duplicate, an empty name or an
			// empty value.
			return b, false
		}
		if !host && !after("host", k) {
			if k != "host" {
				b = append(append(b, ";host="...), p.Hostname...)
			}
			host = true
		}
		if i < 0 {
			b = append(append(append(b, ';'), s...), "=true"...)
		} else {
			eq := len(b) + 1 + i
			b = append(append(b, ';'), s...)
			b[eq] = '='
		}
		prev = k
	}
	if !host {
		b = append(append(b, ";host="...), p.Hostname...)
	}
	return b, true
}

// appendTags appends ;name=value for each of p's tags, collected by
// collectTags, and the host tag, skipping a tag whose name is the previous
// one's: Graphite keeps one value per tag name.
func (e *Encoder) appendTags(b []byte, p *sdk.Point) []byte {
	e.collectTags(p)
	var prev string
	for i, t := range e.tags {
		if i > 0 && t.k == prev {
			continue
		}
		prev = t.k
		b = append(append(append(append(b, ';'), t.k...), '='), t.v...)
	}
	return b
}

// collectTags fills e.tags with p's tags as they are written: split at the
// first colon, cleaned, sorted by key (stably, so that of tags sharing a key
// the first one is kept), with the host tag added.
func (e *Encoder) collectTags(p *sdk.Point) {
	e.tags = e.tags[:0]
	e.scratch = e.scratch[:0]
	hasHost := false
	for _, s := range p.Tags {
		k, v := s, "true"
		if i := strings.IndexByte(s, ':'); i >= 0 {
			k, v = s[:i], s[i+1:]
			if v == "" {
				// Graphite has no empty tag values.
				continue
			}
		}
		if k == "" {
			continue
		}
		t := tag{e.clean(k, keyChars, false), e.clean(v, valueChars, true)}
		if t.k == "host" {
			hasHost = true
		}
		e.tags = append(e.tags, t)
	}
	if !hasHost && !e.NoHostTag && p.Hostname != "" {
		e.tags = append(e.tags, tag{"host", e.clean(p.Hostname, valueChars, true)})
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

// clean returns s cleaned as appendClean does: s itself when it needs no
// cleaning, else a cleaned copy in e.scratch, valid until the next Point.
func (e *Encoder) clean(s string, set *charSet, first bool) string {
	if !set.dirty(s, first) {
		return s
	}
	i := len(e.scratch)
	e.scratch = appendClean(e.scratch, s, set, first)
	// Cleaning never shortens s, which is not empty. The bytes are not
	// written again before the next Point resets e.scratch, and a copy left
	// behind when e.scratch grows stays as it is.
	return unsafe.String(&e.scratch[i], len(e.scratch)-i)
}

// charSet marks, for one element, the ASCII bytes appendClean replaces with
// an underscore, and the bytes it must look at: all those of multi-byte
// characters.
type charSet struct {
	table [256]bool
	// forbid holds each forbidden printable byte in all 8 bytes; unused
	// entries hold DEL, which attention8 looks for anyway, so that it
	// checks all four without a loop.
	forbid [4]uint64
}

func newCharSet(forbidden string) *charSet {
	t := new(charSet)
	for c := range 256 {
		// Control characters, and the space that separates the fields of a
		// line.
		t.table[c] = c <= ' ' || c == 0x7f || c >= utf8.RuneSelf
	}
	if len(forbidden) > len(t.forbid) {
		panic("graphite: more forbidden bytes than a charSet holds")
	}
	for i := range t.forbid {
		t.forbid[i] = textenc.Ones * 0x7f
	}
	for i := range len(forbidden) {
		t.table[forbidden[i]] = true
		t.forbid[i] = textenc.Ones * uint64(forbidden[i])
	}
	return t
}

// dirty reports whether appendClean would change s, eight bytes at a time.
func (set *charSet) dirty(s string, first bool) bool {
	if first && len(s) > 0 && s[0] == '~' {
		return true
	}
	var a uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		a |= set.attention8(textenc.Load64(s, i))
	}
	if i < len(s) {
		if len(s) < 8 {
			for ; i < len(s); i++ {
				if set.table[s[i]] {
					return true
				}
			}
			return false
		}
		a |= set.attention8(textenc.Load64(s, len(s)-8))
	}
	return a != 0
}

// attention8 is not zero when one of the bytes of w is one set marks.
func (set *charSet) attention8(w uint64) uint64 {
	return (w-textenc.Ones*0x21)&^w&textenc.Highs | w&textenc.Highs | textenc.Zero8(w^(textenc.Ones*0x7f)) |
		textenc.Zero8(w^set.forbid[0]) | textenc.Zero8(w^set.forbid[1]) | textenc.Zero8(w^set.forbid[2]) | textenc.Zero8(w^set.forbid[3])
}

// scanTag reports where the first colon of s is (-1 when there is none), and
// whether s holds a byte keyChars marks (whether the tag, name or value,
// may need sanitising), eight bytes at a time.
func scanTag(s string) (colon int, dirty bool) {
	colon = -1
	var a uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := textenc.Load64(s, i)
		a |= keyChars.attention8(w)
		if c := textenc.Zero8(w ^ (textenc.Ones * ':')); c != 0 && colon < 0 {
			colon = i + bits.TrailingZeros64(c)/8
		}
	}
	if i < len(s) {
		if len(s) < 8 {
			for ; i < len(s); i++ {
				c := s[i]
				if keyChars.table[c] {
					a = 1
				}
				if c == ':' && colon < 0 {
					colon = i
				}
			}
			return colon, a != 0
		}
		// The last eight bytes, of which the first 8-(len(s)-i) were
		// scanned already.
		j := len(s) - 8
		w := textenc.Load64(s, j)
		a |= keyChars.attention8(w)
		if colon < 0 {
			// Set the bytes already scanned to 0xff, which is not a colon,
			// to look at the rest only.
			w |= 1<<(8*uint(i-j)) - 1
			if c := textenc.Zero8(w ^ (textenc.Ones * ':')); c != 0 {
				colon = j + bits.TrailingZeros64(c)/8
			}
		}
	}
	return colon, a != 0
}

var (
	// Names end at the first semicolon, where the tags begin.
	nameChars = newCharSet(";")
	// Tag names may not contain ;!^=.
	keyChars = newCharSet(";!^=")
	// Tag values may not contain ;.
	valueChars = newCharSet(";")
)

// appendClean appends s with each byte that set marks, each control
// character (C0, DEL and C1) and each character Python counts as
// whitespace (Carbon splits lines with str.split) replaced by an
// underscore, each byte that is not part of valid UTF-8 by U+FFFD (Carbon
// refuses invalid UTF-8), and, when first, a leading tilde by an underscore
// (Graphite refuses tag values starting with one, and the name is a tag
// value).
func appendClean(b []byte, s string, set *charSet, first bool) []byte {
	if !set.dirty(s, first) {
		return append(b, s...)
	}
	if first && len(s) > 0 && s[0] == '~' {
		b = append(b, '_')
		s = s[1:]
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !set.table[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			b = append(b, '_')
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
		case r < 0xa0 || isSpace(r): // C1 controls (U+0085 is whitespace too)
			b = append(b, s[start:i]...)
			b = append(b, '_')
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// isSpace reports whether Python's str.isspace is true of r, beyond ASCII
// and U+0085.
func isSpace(r rune) bool {
	switch {
	case r == 0xa0, r == 0x1680, r >= 0x2000 && r <= 0x200a, r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}

// after reports whether k sorts after prev, deciding on the first bytes
// without a call when they differ, as they mostly do.
func after(k, prev string) bool {
	if len(k) > 0 && len(prev) > 0 && k[0] != prev[0] {
		return k[0] > prev[0]
	}
	return k > prev
}
