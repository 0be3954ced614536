package openmetrics

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/veneurd/veneurd/sdk"
)

// FuzzBody maps two bodies, then the first again, as three scrapes of one
// target, in the text format or OpenMetrics: whatever the bodies, nothing
// panics, a counter is never negative or zero, every value is finite and
// every tag is k:v, sorted (the Collector checks the Writer contract). The
// seed corpus is in testdata/fuzz/FuzzBody.
func FuzzBody(f *testing.F) {
	f.Add([]byte("# TYPE c_total counter\nc_total{a=\"1\"} 5\n"), []byte("# TYPE c_total counter\nc_total{a=\"1\"} 3\n"), false)
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"),
		[]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 5\nh_sum -3\nh_count 5\n"), false)
	f.Add([]byte("# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1\ns_count 1\n"), []byte("garbage{"), false)
	f.Add([]byte("# TYPE foo counter\nfoo_total 1\n# EOF\n"), []byte("# TYPE foo counter\nfoo_total 0.5\n# EOF\n"), true)
	f.Fuzz(func(t *testing.T, a, b []byte, om bool) {
		format := expfmt.FmtText
		if om {
			format = expfmt.FmtOpenMetrics_1_0_0
		}
		r := newRig(t, func(c *Config) { c.InstanceTag = "instance"; c.AddTags = map[string]string{"env": "x"} })
		for _, body := range [][]byte{a, b, a} {
			r.tg.ingest(format, body) // a parse error is fine; a panic is not
		}
		r.tg.w.Flush()
		for _, m := range r.c.Metrics() {
			if m.Type == sdk.Counter && !(m.Value > 0) || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
				t.Fatalf("emitted %v", m)
			}
			for _, tag := range strings.Split(m.Tags, ",") {
				if k, _, ok := strings.Cut(tag, ":"); !ok || k == "" {
					t.Fatalf("tag %q of %v", tag, m)
				}
			}
			if m.Name == "" {
				t.Fatalf("emitted %v without a name", m)
			}
		}
		for _, p := range r.c.Problems() {
			t.Fatalf("Writer contract: %s", p)
		}
	})
}
