package human

import "testing"

func TestRate(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {0.004, "<0.01"}, {0.25, "0.25"}, {2.5, "2.5"}, {3, "3"}, {9.96, "10"}, {990.1, "990"},
		{999.4, "999"}, {999.6, "1.0k"}, {1234, "1.2k"}, {12345, "12k"}, {123456, "123k"}, {999999, "1.0M"},
		{2.5e9, "2.5G"}, {-5, "-5"},
	} {
		if got := Rate(c.v); got != c.want {
			t.Errorf("Rate(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1.0k"}, {120000, "120k"}, {18446744073709551615, "18E"}} {
		if got := Count(c.v); got != c.want {
			t.Errorf("Count(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		sec  float64
		want string
	}{
		{0, "0"}, {0.00034, "340 µs"}, {0.0032, "3.2 ms"}, {0.012, "12 ms"}, {0.9996, "1 s"}, {2.5, "2.5 s"},
		{10, "10 s"}, {150, "2m30s"},
	} {
		if got := Duration(c.sec); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.sec, got, c.want)
		}
	}
}
