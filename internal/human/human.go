// Package human writes numbers as operators read them at a glance, for the
// status page and `veneurd top`: counts and rates in four characters or so
// (1.2k, 120k, 3.4M), durations in the unit that reads best.
package human

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Count is u in at most four characters and a unit: 999, 1.2k, 12k, 120k,
// 1.2M.
func Count(u uint64) string {
	if u < 1000 {
		return strconv.FormatUint(u, 10)
	}
	return scaled(float64(u))
}

// Rate is a rate per second: like Count, with a decimal below 10 (2.5) and
// two significant digits below 1 (0.25).
func Rate(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "?"
	case v < 0:
		return "-" + Rate(-v)
	case v == 0:
		return "0"
	case v < 0.01:
		return "<0.01"
	case v < 1:
		return strconv.FormatFloat(v, 'g', 2, 64)
	case v < 9.95:
		return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	case v < 999.5:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return scaled(v)
}

// scaled is v >= 999.5 with a unit prefix.
func scaled(v float64) string {
	units := []string{"", "k", "M", "G", "T", "P", "E"}
	i := 0
	for v >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if v < 9.95 {
		return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
}

// Duration is a duration in seconds in the unit that reads best: 340 µs,
// 3.2 ms, 12 ms, 2.5 s, 10 s, 2m30s.
func Duration(sec float64) string {
	switch {
	case math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0:
		return "?"
	case sec == 0:
		return "0"
	case sec < 0.001:
		return strconv.FormatFloat(sec*1e6, 'f', 0, 64) + " µs"
	case sec < 0.00995:
		return strconv.FormatFloat(sec*1e3, 'f', 1, 64) + " ms"
	case sec < 0.9995:
		return strconv.FormatFloat(sec*1e3, 'f', 0, 64) + " ms"
	case sec < 9.95:
		return strings.TrimSuffix(strconv.FormatFloat(sec, 'f', 1, 64), ".0") + " s"
	case sec < 59.5:
		return strconv.FormatFloat(sec, 'f', 0, 64) + " s"
	}
	return time.Duration(math.Round(sec) * float64(time.Second)).String()
}
