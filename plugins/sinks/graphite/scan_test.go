package graphite

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestDirty checks charSet.dirty against a byte at a time, for every byte
// value at every position of strings of every length up to 20, among bytes
// that need nothing and among random ones.
func TestDirty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, set := range []*charSet{nameChars, keyChars, valueChars} {
		check := func(s string) {
			for _, first := range []bool{false, true} {
				want := first && strings.HasPrefix(s, "~")
				for i := range len(s) {
					want = want || set.table[s[i]]
				}
				if got := set.dirty(s, first); got != want {
					t.Fatalf("dirty(%q, %t) = %t", s, first, got)
				}
			}
		}
		for n := range 21 {
			for pos := range n {
				for c := range 256 {
					b := []byte(strings.Repeat("a", n))
					b[pos] = byte(c)
					check(string(b))
					for i := range b {
						if i != pos {
							b[i] = byte(r.IntN(256))
						}
					}
					check(string(b))
				}
			}
		}
	}
}

// TestScanTag checks scanTag against strings.IndexByte and keyChars.dirty,
// on strings with colons here and there.
func TestScanTag(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 40 {
		for range 2000 {
			b := make([]byte, n)
			for i := range b {
				switch r.IntN(6) {
				case 0:
					b[i] = ':'
				case 1:
					b[i] = byte(r.IntN(256))
				default:
					b[i] = 'a' + byte(r.IntN(26))
				}
			}
			s := string(b)
			colon, dirty := scanTag(s)
			if colon != strings.IndexByte(s, ':') || dirty != keyChars.dirty(s, false) {
				t.Fatalf("scanTag(%q) = %d, %t", s, colon, dirty)
			}
		}
	}
}
