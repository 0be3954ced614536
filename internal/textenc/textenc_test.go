package textenc

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestAsEncodingJSON checks strings and numbers against encoding/json.
func TestAsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "tab\tnl\nnul\x00\x1f<>&", "é\u2028\u2029", "bad\xff\xfe", strings.Repeat("x", 100)} {
		want, _ := json.Marshal(s)
		if got := AppendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 3, -0.25, 1e-7, 1e21, 1e20, 123456789012345, 1 << 53, 1<<53 + 2, 0.1, -1.5e-300, math.MaxFloat64} {
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: %s, want %s", f, got, want)
		}
	}
}

func TestTimestampAndWords(t *testing.T) {
	var ts Timestamp
	if got := string(ts.Append(ts.Append(nil, 1795300000), -5)); got != "1795300000-5" {
		t.Fatal(got)
	}
	w := Load64("abc:defg", 0)
	if Zero8(w^Ones*':') == 0 || Zero8(w^Ones*'z') != 0 {
		t.Fatal("Zero8 missed a byte or found one that is not there")
	}
}
