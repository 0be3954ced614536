// Package textenc holds the pieces of text encoding the sinks' encoders
// share: JSON strings and numbers written exactly as encoding/json writes
// them, without allocating; a timestamp formatted once for the points of a
// flush that share it; and the eight-bytes-at-a-time tests the line
// protocols' scanners use to find the bytes they must escape.
package textenc

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendFloat appends f as encoding/json writes a float64: the shortest
// representation, with an exponent only for very small and very large
// magnitudes (3, -0.25, 1e-7, 1e+21). f must be finite.
func AppendFloat(b []byte, f float64) []byte {
	// Integers, the usual values of counters and many gauges, are written
	// as integers, which is what the shortest 'f' format gives for them
	// below 2^53; -0 keeps its sign.
	if i := int64(f); float64(i) == f && i > -1<<53 && i < 1<<53 && (i != 0 || !math.Signbit(f)) {
		return strconv.AppendInt(b, i, 10)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hex = "0123456789abcdef"

// plain holds the bytes AppendJSONString copies as they are: ASCII other
// than control characters, '"', '\\', '<', '>' and '&'. A table lookup per
// byte is the fastest test of those measured (comparisons, 8 bytes at a
// time).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes it: quotes, backslashes, control characters, <, >, &, U+2028 and
// U+2029 escaped, and each byte that is not part of valid UTF-8 replaced
// with U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Timestamp is the last Unix time written, as text: the points of a flush
// share theirs, which is then formatted once. The zero value is ready.
type Timestamp struct {
	t   int64
	n   int
	buf [20]byte
}

// Append appends t in decimal.
func (ts *Timestamp) Append(b []byte, t int64) []byte {
	if ts.n == 0 || ts.t != t {
		ts.t = t
		ts.n = len(strconv.AppendInt(ts.buf[:0], t, 10))
	}
	return append(b, ts.buf[:ts.n]...)
}

// Words: Ones has each byte 1, Highs each byte's high bit.
const (
	Ones  = 0x0101010101010101
	Highs = 0x8080808080808080
)

// Load64 is the eight bytes of s from i, little-endian: one load.
func Load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// Zero8 is not zero when one of the bytes of w is zero; its lowest bit set
// is exact, in the highest bit of the first zero byte. Zero8(w ^ Ones*c)
// finds byte c.
func Zero8(w uint64) uint64 { return (w - Ones) &^ w & Highs }
