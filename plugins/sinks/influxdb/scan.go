package influxdb

import (
	"math/bits"
	"unicode/utf8"

	"github.com/veneurd/veneurd/internal/textenc"
)

// attention marks the bytes appendClean must look at: ASCII control
// characters, the backslash, and the bytes of multi-byte characters.
var attention = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == 0x7f || c == '\\' || c >= utf8.RuneSelf
	}
	return t
}()

// scan reports whether s holds a byte appendClean must look at (dirty), and
// whether it holds a comma, space or equals sign (esc), eight bytes at a
// time.
func scan(s string) (dirty, esc bool) {
	var a, x uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := textenc.Load64(s, i)
		a |= attention8(w)
		x |= escape8(w)
	}
	if i < len(s) {
		if len(s) >= 8 {
			w := textenc.Load64(s, len(s)-8)
			a |= attention8(w)
			x |= escape8(w)
		} else {
			for ; i < len(s); i++ {
				c := s[i]
				if attention[c] {
					a = 1
				}
				if c == ',' || c == ' ' || c == '=' {
					x = 1
				}
			}
		}
	}
	return a != 0, x != 0
}

// scanTag is scan of a whole tag, which also finds the first colon: colon
// is its index, or -1.
func scanTag(s string) (colon int, dirty, esc bool) {
	colon = -1
	var a, x uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := textenc.Load64(s, i)
		a |= attention8(w)
		x |= escape8(w)
		if c := textenc.Zero8(w ^ (textenc.Ones * ':')); c != 0 && colon < 0 {
			// The lowest byte flagged is exact.
			colon = i + bits.TrailingZeros64(c)/8
		}
	}
	if i < len(s) {
		if len(s) >= 8 {
			// The last eight bytes, of which the first 8-(len(s)-i) were
			// scanned already.
			j := len(s) - 8
			w := textenc.Load64(s, j)
			a |= attention8(w)
			x |= escape8(w)
			if colon < 0 {
				// Set every byte already scanned to 0xff, which is not a
				// colon (nor zero once xored), to look at the rest only.
				w |= 1<<(8*uint(i-j)) - 1
				if c := textenc.Zero8(w ^ (textenc.Ones * ':')); c != 0 {
					colon = j + bits.TrailingZeros64(c)/8
				}
			}
		} else {
			for ; i < len(s); i++ {
				c := s[i]
				if attention[c] {
					a = 1
				}
				if c == ',' || c == ' ' || c == '=' {
					x = 1
				}
				if c == ':' && colon < 0 {
					colon = i
				}
			}
		}
	}
	return colon, a != 0, x != 0
}

// attention8 is not zero when one of the bytes of w is one attention marks.
func attention8(w uint64) uint64 {
	// Below 0x20, 0x7f and above (adding one carries into the next byte
	// only from 0xff, which is caught already), or a backslash.
	return (w-textenc.Ones*0x20)&^w&textenc.Highs | ((w+textenc.Ones)|w)&textenc.Highs | textenc.Zero8(w^(textenc.Ones*'\\'))
}

// escape8 is not zero when one of the bytes of w is a comma, space or
// equals sign.
func escape8(w uint64) uint64 {
	return textenc.Zero8(w^(textenc.Ones*',')) | textenc.Zero8(w^(textenc.Ones*' ')) | textenc.Zero8(w^(textenc.Ones*'='))
}
