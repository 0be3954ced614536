package datadog

import (
	"unicode/utf8"

	"github.com/veneurd/veneurd/internal/textenc"
)

// The JSON of the bodies is written with internal/textenc, exactly as
// encoding/json writes it, which the tests check.

// appendField appends ,"key":value (key is a plain literal).
func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return textenc.AppendJSONString(b, value)
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
