package datadog

import (
	"encoding/json"
	"github.com/veneurd/veneurd/internal/textenc"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkJSON fails the test unless got is what encoding/json writes for v.
func checkJSON(t *testing.T, v any, got []byte) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%#v: got %s, want %s", v, got, want)
	}
}

// FuzzAppendString checks that strings are written exactly as encoding/json
// writes them.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "tab\t nl\n cr\r bs\b ff\f nul\x00 esc\x1b del\x7f", `quote " backslash \`,
		"<html> & ünïcödé", "line\u2028para\u2029", "invalid \xff\xfe", "cut \xe2\x82", "\xed\xa0\x80 surrogate", "\U0001F600", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkJSON(t, s, textenc.AppendJSONString(nil, s)) })
}

// TestAppendFloat checks that values are written as encoding/json writes
// them.
func TestAppendFloat(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -2.5, 3, 0.125, 1e-7, 1e-6, 9.99e-7, 123456789.125,
		1e20, 1e21, 1.5e300, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1 + 0.2, 1700000000,
		1<<53 - 1, 1 << 53, -(1<<53 - 1), 1<<52 + 1, 1e15, -25, 2.5, 1e300 / 3} {
		checkJSON(t, v, textenc.AppendFloat(nil, v))
	}
}

// sanitize is s as a JSON decoder reads it back from the body: each byte
// that is not part of valid UTF-8 becomes U+FFFD (strings.ToValidUTF8 would
// make one U+FFFD of a run of them).
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte
		i += size
	}
	return b.String()
}

// runePrefix is the first max characters of s as the body holds them,
// computed independently of truncate.
func runePrefix(s string, max int) string {
	r := []rune(sanitize(s))
	if len(r) > max {
		r = r[:max]
	}
	return string(r)
}

func TestTruncate(t *testing.T) {
	f := func(s string, max int, want string) {
		t.Helper()
		if got := truncate(s, max); got != want {
			t.Errorf("truncate(%q, %d) = %q, want %q", s, max, got, want)
		}
		if got, want := sanitize(truncate(s, max)), runePrefix(s, max); got != want {
			t.Errorf("truncate(%q, %d) reads back as %q, want %q", s, max, got, want)
		}
	}
	f("", 3, "")
	f("abc", 3, "abc")
	f("abcd", 3, "abc")
	f("éé", 3, "éé")                // 4 bytes, 2 characters
	f("éééé", 3, "ééé")             // cut after the third é, not inside the fourth
	f("a€b€", 2, "a€")              // 3-byte sequences
	f("😀😀😀", 2, "😀😀")               // 4-byte sequences
	f("\xff\xfeab", 3, "\xff\xfea") // each invalid byte is one character (one U+FFFD)
	f("a\xe2\x82", 2, "a\xe2")      // a cut sequence is two invalid bytes
	f("abc", 0, "")
}
