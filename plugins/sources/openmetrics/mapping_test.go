package openmetrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// rig maps bodies as one target's scrapes would, through the same parse and
// mapping, and returns what each scrape emitted.
type rig struct {
	t    testing.TB
	tg   *target
	c    *sdktest.Collector
	seen int
}

func newRig(t testing.TB, edit func(*Config)) *rig {
	t.Helper()
	s := New()
	cfg := defaultConfig()
	cfg.Targets = []string{"http://127.0.0.1:9100/metrics"}
	if edit != nil {
		edit(cfg)
	}
	if err := s.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
		t.Fatal(err)
	}
	c := &sdktest.Collector{}
	return &rig{t: t, c: c, tg: s.newTarget(s.cfg.settings.targets[0], nil, c.Writer(Protocol))}
}

// scrape maps body (in format, the text format when "") and returns what
// it emitted, each sample as "type name{tags} value", sorted.
func (r *rig) scrape(format expfmt.Format, body string) ([]string, error) {
	r.t.Helper()
	if format == "" {
		format = expfmt.FmtText
	}
	err := r.tg.ingest(format, []byte(body))
	r.tg.w.Flush()
	ms := r.c.Metrics()
	out := []string{}
	for _, m := range ms[r.seen:] {
		out = append(out, fmt.Sprintf("%s %s{%s} %g", m.Type, m.Name, m.Tags, m.Value))
	}
	r.seen = len(ms)
	slices.Sort(out)
	for _, p := range r.c.Problems() {
		r.t.Errorf("Writer contract: %s", p)
	}
	return out, err
}

// want maps body and checks that it emitted exactly want.
func (r *rig) want(body string, want ...string) {
	r.t.Helper()
	r.wantFormat("", body, want...)
}

func (r *rig) wantFormat(format expfmt.Format, body string, want ...string) {
	r.t.Helper()
	got, err := r.scrape(format, body)
	if err != nil {
		r.t.Fatalf("scrape of\n%s\nfailed: %v", body, err)
	}
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		r.t.Errorf("scrape of\n%s\nemitted\n\t%s\nwant\n\t%s", body, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestCounterIncrease(t *testing.T) {
	r := newRig(t, nil)
	const typ = "# TYPE c_total counter\n"
	// The first scrape only remembers.
	r.want(typ + `c_total{a="1"} 5` + "\n")
	// A series first seen later counts whole: it appeared since.
	r.want(typ+`c_total{a="1"} 7`+"\n"+`c_total{a="2"} 4`+"\n",
		"counter c_total{a:1} 2", "counter c_total{a:2} 4")
	// No increase, nothing sent.
	r.want(typ + `c_total{a="1"} 7` + "\n" + `c_total{a="2"} 4` + "\n")
	// A decrease is a reset: the new value is what was counted since.
	r.want(typ+`c_total{a="1"} 3`+"\n"+`c_total{a="2"} 4.5`+"\n",
		"counter c_total{a:1} 3", "counter c_total{a:2} 0.5")
	// Fractions stay (veneur-prometheus truncated to int64).
	r.want(typ+`c_total{a="1"} 3.25`+"\n", "counter c_total{a:1} 0.25")
}

func TestCounterResetToZero(t *testing.T) {
	r := newRig(t, nil)
	r.want("# TYPE c_total counter\nc_total 10\n")
	r.want("# TYPE c_total counter\nc_total 0\n") // reset to 0: nothing counted
	r.want("# TYPE c_total counter\nc_total 2\n", "counter c_total{} 2")
}

func TestGaugesAndUntyped(t *testing.T) {
	r := newRig(t, nil)
	body := `# TYPE g gauge
g{b="x",a="y"} -2.5
# TYPE u untyped
u 7
no_type_line 3
# TYPE g_nan gauge
g_nan NaN
# TYPE g_inf gauge
g_inf +Inf
`
	for range 2 { // gauges are sent at every scrape, the first too
		r.want(body, "gauge g{a:y,b:x} -2.5", "gauge no_type_line{} 3", "gauge u{} 7")
	}
}

func TestHistogram(t *testing.T) {
	r := newRig(t, nil)
	h := func(b1, b2, b3, sum, count float64) string {
		return fmt.Sprintf(`# TYPE h histogram
h_bucket{path="/x",a="z",le="0.1"} %g
h_bucket{path="/x",a="z",le="1"} %g
h_bucket{path="/x",a="z",le="+Inf"} %g
h_sum{path="/x",a="z"} %g
h_count{path="/x",a="z"} %g
`, b1, b2, b3, sum, count)
	}
	r.want(h(1, 3, 4, 2.5, 4), "gauge h.sum{a:z,path:/x} 2.5")
	r.want(h(2, 3, 7, 6, 7),
		"counter h.bucket{a:z,le:0.1,path:/x} 1",
		"counter h.bucket{a:z,le:+Inf,path:/x} 3",
		"counter h.count{a:z,path:/x} 3",
		"gauge h.sum{a:z,path:/x} 6")
	// The target restarted: every part reset.
	r.want(h(1, 1, 1, 0.05, 1),
		"counter h.bucket{a:z,le:0.1,path:/x} 1",
		"counter h.bucket{a:z,le:1,path:/x} 1",
		"counter h.bucket{a:z,le:+Inf,path:/x} 1",
		"counter h.count{a:z,path:/x} 1",
		"gauge h.sum{a:z,path:/x} 0.05")
}

// TestHistogramBoundsAndTagOrder: bounds are written as Prometheus writes
// them, and the bucket tag takes its sorted place among any labels.
func TestHistogramBoundsAndTagOrder(t *testing.T) {
	r := newRig(t, nil)
	h := func(n float64) string {
		return fmt.Sprintf(`# TYPE h histogram
h_bucket{l="1",le_x="2",lf="3",le="0.005"} %g
h_bucket{l="1",le_x="2",lf="3",le="1e+06"} %g
h_bucket{l="1",le_x="2",lf="3",le="+Inf"} %g
h_sum{l="1",le_x="2",lf="3"} 0
h_count{l="1",le_x="2",lf="3"} %g
`, n, n, n, n)
	}
	r.want(h(0), "gauge h.sum{l:1,le_x:2,lf:3} 0")
	r.want(h(1),
		"counter h.bucket{l:1,le:0.005,le_x:2,lf:3} 1",
		"counter h.bucket{l:1,le:1e+06,le_x:2,lf:3} 1",
		"counter h.bucket{l:1,le:+Inf,le_x:2,lf:3} 1",
		"counter h.count{l:1,le_x:2,lf:3} 1",
		"gauge h.sum{l:1,le_x:2,lf:3} 0")
}

// TestHistogramVeneurPrometheusNames: histogram_bucket_tag = "" names the
// buckets as veneur-prometheus did, with fmt's %f.
func TestHistogramVeneurPrometheusNames(t *testing.T) {
	r := newRig(t, func(c *Config) { c.HistogramBucketTag = "" })
	h := func(n float64) string {
		return fmt.Sprintf(`# TYPE h histogram
h_bucket{le="0.1"} %g
h_bucket{le="1"} %g
h_bucket{le="+Inf"} %g
h_sum 1
h_count %g
`, n, n, n, n)
	}
	r.want(h(1), "gauge h.sum{} 1")
	r.want(h(3),
		"counter h.le0.100000{} 2",
		"counter h.le1.000000{} 2",
		"counter h.le+Inf{} 2",
		"counter h.count{} 2",
		"gauge h.sum{} 1")
}

func TestSummary(t *testing.T) {
	r := newRig(t, nil)
	s := func(sum, count float64) string {
		return fmt.Sprintf(`# TYPE s summary
s{quantile="0.5"} 1.5
s{quantile="0.99"} 3
s{quantile="0.999"} 4
s{quantile="0.75"} NaN
s_sum %g
s_count %g
`, sum, count)
	}
	quantiles := []string{"gauge s.50percentile{} 1.5", "gauge s.99percentile{} 3", "gauge s.99_9percentile{} 4"}
	r.want(s(10, 4), append(quantiles, "gauge s.sum{} 10")...)
	r.want(s(13, 6), append(quantiles, "gauge s.sum{} 13", "counter s.count{} 2")...)
}

func TestIgnoreRenameTags(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Ignore = []string{"go_.*"}
		c.IgnoreLabels = []string{"secret.*"}
		c.Rename = map[string]string{"node_(.*)": "host.$1", "drop_me": "", "x_.*": "never"}
		c.AddTags = map[string]string{"env": "prod", "a": "fixed"}
		c.InstanceTag = "instance"
	})
	const tags = "a:fixed,env:prod,instance:127.0.0.1:9100"
	r.want(`# TYPE go_goroutines gauge
go_goroutines 5
# TYPE cargo_go_things gauge
cargo_go_things 1
# TYPE node_load1 gauge
node_load1{secret_id="x",a="label",instance="other",z="w"} 0.5
# TYPE drop_me gauge
drop_me 1
# TYPE x_node_y gauge
x_node_y 2
`,
		"gauge cargo_go_things{"+tags+"} 1", // whole names only: go_.* does not take it
		"gauge host.load1{"+tags+",z:w} 0.5",
		"gauge never{"+tags+"} 2", // node_(.*) matches whole names only; x_.* does
	)
}

func TestLabelsToTags(t *testing.T) {
	r := newRig(t, nil)
	r.want(`# TYPE m gauge
m{a="",b="1",c="x,y",d="k:v"} 1
`, "gauge m{b:1,c:x_y,d:k:v} 1")
}

func TestRenameOrder(t *testing.T) {
	// Both patterns match whole: the first in sorted order applies.
	r := newRig(t, func(c *Config) { c.Rename = map[string]string{"b.*": "second", "a.*|b.*": "first"} })
	r.want("# TYPE bob gauge\nbob 1\n", "gauge first{} 1")
}

func TestDuplicateSeriesInABody(t *testing.T) {
	r := newRig(t, nil)
	r.want("# TYPE c_total counter\nc_total 5\nc_total 5\n")
	r.want("# TYPE c_total counter\nc_total 8\nc_total 100\n", "counter c_total{} 3")
	r.want("# TYPE c_total counter\nc_total 9\n", "counter c_total{} 1")
}

func TestForgetMissingSeries(t *testing.T) {
	r := newRig(t, nil)
	const other = "# TYPE d_total counter\nd_total 1\n"
	r.want("# TYPE c_total counter\nc_total 5\n" + other)
	for range forgetAfter { // missing from forgetAfter scrapes: remembered
		r.want(other)
	}
	r.want("# TYPE c_total counter\nc_total 7\n"+other, "counter c_total{} 2")
	for range forgetAfter + 1 { // missing from one more: forgotten
		r.want(other)
	}
	r.want("# TYPE c_total counter\nc_total 9\n"+other, "counter c_total{} 9")
	if len(r.tg.m.series) != 2 {
		t.Errorf("%d series remembered, want 2", len(r.tg.m.series))
	}
}

func TestCounterValuesNoCounterHolds(t *testing.T) {
	r := newRig(t, nil)
	r.want("# TYPE c_total counter\nc_total -1\n# TYPE n_total counter\nn_total NaN\n# TYPE i_total counter\ni_total +Inf\n")
	r.want("# TYPE c_total counter\nc_total 4\n# TYPE n_total counter\nn_total 1\n# TYPE i_total counter\ni_total 2\n",
		"counter c_total{} 4", "counter i_total{} 2", "counter n_total{} 1")
}

// TestGarbageKeepsState: a body the parser refuses emits nothing and
// changes nothing remembered: the next good scrape counts from the last
// good one.
func TestGarbageKeepsState(t *testing.T) {
	r := newRig(t, nil)
	r.want("# TYPE c_total counter\nc_total 5\n# TYPE g gauge\ng 1\n", "gauge g{} 1")
	got, err := r.scrape("", "# TYPE c_total counter\nc_total 6\ng{ 5\n")
	if err == nil || len(got) != 0 {
		t.Fatalf("garbage: emitted %v, error %v; want nothing and an error", got, err)
	}
	r.want("# TYPE c_total counter\nc_total 9\n# TYPE g gauge\ng 2\n", "counter c_total{} 4", "gauge g{} 2")
}

func TestOpenMetrics(t *testing.T) {
	r := newRig(t, nil)
	om := func(foo float64) string {
		return fmt.Sprintf(`# TYPE foo counter
foo_total %g
foo_created 1.7e+09
# TYPE gh gaugehistogram
gh_bucket{le="1"} 2
gh_bucket{le="+Inf"} 5
gh_gcount 5
gh_gsum 7.5
# TYPE s summary
s{quantile="0.5"} 2
s_sum 4
s_count 2
# EOF
`, foo)
	}
	gauges := []string{"gauge gh.bucket{le:+Inf} 5", "gauge gh.bucket{le:1} 2", "gauge gh.count{} 5", "gauge gh.sum{} 7.5",
		"gauge s.50percentile{} 2", "gauge s.sum{} 4"}
	r.wantFormat(expfmt.FmtOpenMetrics_1_0_0, om(3), gauges...)
	r.wantFormat(expfmt.FmtOpenMetrics_1_0_0, om(10), append(gauges, "counter foo_total{} 7")...)
	// An OpenMetrics body must end with # EOF: a cut one is refused.
	if _, err := r.scrape(expfmt.FmtOpenMetrics_1_0_0, "# TYPE foo counter\nfoo_total 12\n"); err == nil {
		t.Error("an OpenMetrics body without # EOF was taken")
	}
	r.wantFormat(expfmt.FmtOpenMetrics_1_0_0, om(11), append(gauges, "counter foo_total{} 1")...)
}

func TestPercentileNames(t *testing.T) {
	m := newMapper(&rules{}, "")
	for q, want := range map[float64]string{0: ".0percentile", 0.25: ".25percentile", 0.5: ".50percentile",
		0.9: ".90percentile", 0.99: ".99percentile", 0.999: ".99_9percentile", 0.9999: ".99_99percentile", 1: ".100percentile"} {
		if got := m.percentile(q); got != want {
			t.Errorf("percentile(%v) = %q, want %q", q, got, want)
		}
	}
}

// TestBlankLines: the text parser recurses once a blank line; a body of
// more than maxBlankRun of them in a row is refused before it could
// exhaust the stack, and fewer are taken.
func TestBlankLines(t *testing.T) {
	r := newRig(t, nil)
	r.want("g 1\n"+strings.Repeat("\n \t\n", maxBlankRun/2)+"h 2\n", "gauge g{} 1", "gauge h{} 2")
	got, err := r.scrape("", "g 1\n"+strings.Repeat("\n", 10<<20))
	if err == nil || len(got) != 0 || !strings.Contains(err.Error(), "blank lines in a row") {
		t.Errorf("10 MB of blank lines: emitted %v, error %v", got, err)
	}
}

// TestSeriesKeptByTheirBytes: a series is mapped once and then found by
// the bytes the target writes; a family whose type changes maps anew.
func TestSeriesKeptByTheirBytes(t *testing.T) {
	r := newRig(t, nil)
	r.want("# TYPE x counter\nx{a=\"1\"} 1\n")
	r.want("# TYPE x counter\nx{a=\"1\"} 3\n", "counter x{a:1} 2")
	if len(r.tg.m.series) != 1 {
		t.Fatalf("%d series kept, want 1", len(r.tg.m.series))
	}
	// The same series now a gauge: a series of its own, emitted as such.
	r.want("# TYPE x gauge\nx{a=\"1\"} 5\n", "gauge x{a:1} 5")
	// Labels written in another order: the same series.
	r.want("# TYPE x counter\nx{a=\"1\",b=\"2\"} 4\n", "counter x{a:1,b:2} 4")
	r.want("# TYPE x counter\nx{b=\"2\",a=\"1\"} 6\n", "counter x{a:1,b:2} 2")
	r.want("# TYPE x counter\nx{a=\"1\",b=\"2\"} 7\n", "counter x{a:1,b:2} 1")
}

// TestOpenMetricsInfoStatesetExemplars: OpenMetrics' info and stateset
// families are gauges of their samples; exemplars, units and _created
// samples are taken and left out.
func TestOpenMetricsInfoStatesetExemplars(t *testing.T) {
	r := newRig(t, nil)
	om := func(c int) string {
		return fmt.Sprintf(`# TYPE build info
build_info{version="1.2"} 1
# TYPE door stateset
door{door="open"} 1
door{door="shut"} 0
# TYPE req counter
# UNIT req_seconds seconds
req_total{code="200"} %d # {trace_id="abc"} 0.5 1.7e+09
req_created{code="200"} 1.7e+09
# TYPE lat histogram
lat_bucket{le="1"} %d # {trace_id="def"} 0.3
lat_bucket{le="+Inf"} %d
lat_count %d
lat_sum 2
lat_created 1.7e+09
# EOF
`, c, c, c, c)
	}
	gauges := []string{"gauge build_info{version:1.2} 1", "gauge door{door:open} 1", "gauge door{door:shut} 0", "gauge lat.sum{} 2"}
	r.wantFormat(expfmt.FmtOpenMetrics_1_0_0, om(1), gauges...)
	r.wantFormat(expfmt.FmtOpenMetrics_1_0_0, om(4), append(gauges, "counter req_total{code:200} 3",
		"counter lat.bucket{le:1} 3", "counter lat.bucket{le:+Inf} 3", "counter lat.count{} 3")...)
}
