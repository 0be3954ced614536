package influxdb

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestScan checks scan against a byte at a time, for every byte value at
// every position of strings of every length up to 20, among bytes that need
// nothing and among random ones.
func TestScan(t *testing.T) {
	naive := func(s string) (dirty, esc bool) {
		for i := range len(s) {
			dirty = dirty || attention[s[i]]
			esc = esc || strings.IndexByte(", =", s[i]) >= 0
		}
		return dirty, esc
	}
	check := func(s string) {
		d, e := scan(s)
		if wd, we := naive(s); d != wd || e != we {
			t.Fatalf("scan(%q) = %t, %t, want %t, %t", s, d, e, wd, we)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
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

// TestScanTag checks scanTag's colon against strings.IndexByte, on strings
// with colons here and there.
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
			colon, dirty, esc := scanTag(s)
			wd, we := scan(s)
			if colon != strings.IndexByte(s, ':') || dirty != wd || esc != we {
				t.Fatalf("scanTag(%q) = %d, %t, %t", s, colon, dirty, esc)
			}
		}
	}
}
