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
