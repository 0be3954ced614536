package datadog

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// The JSON writers below are those of plugins/sinks/localfile (line.go),
// which keeps them unexported; they write exactly what encoding/json writes,
// which the tests check.

// appendFloat formats f as encoding/json does: the shortest representation,
// with an exponent only for very small and very large magnitudes. f must be
// finite.
func appendFloat(b []byte, f float64) []byte {
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

// plain holds the bytes that appendString copies as they are: ASCII other
// than control characters, '"', '\\', '<', '>' and '&'. A table lookup per
// byte is the fastest test of the ones measured (comparisons, 8 bytes at a
// time).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string exactly as encoding/json writes
// it: quotes, backslashes, control characters, <, >, &, U+2028 and U+2029
// escaped, and each byte that is not part of valid UTF-8 replaced with
// U+FFFD.
func appendString(b []byte, s string) []byte {
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

// appendField appends ,"key":value (key is a plain literal).
func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendOptional appends ,"key":value when value is not empty.
func appendOptional(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	return appendField(b, key, value)
}

// truncate returns the longest prefix of s that holds at most max
// characters as the body holds them: a valid UTF-8 sequence is one
// character, and so is each byte that is not part of one (it becomes
// U+FFFD). The cut is always at a character boundary, so no sequence is
// split. Datadog documents its limits in characters (JSON Schema's
// maxLength, which counts code points).
func truncate(s string, max int) string {
	if len(s) <= max { // a character is at least one byte
		return s
	}
	n := 0
	for i := 0; i < len(s); n++ {
		if n == max {
			return s[:i]
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s
}
