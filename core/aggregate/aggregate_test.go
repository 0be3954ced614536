package aggregate

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/dgryski/go-metro"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

type sample struct {
	typ   sdk.MetricType
	scope sdk.Scope
	name  string
	tags  string
	value float64
	rate  float64
}

// ingest has samples aggregated as a source process aggregates them, in a
// table of its own, and merges the state it ships into a, as the daemon
// does: each call is one source.
func ingest(t *testing.T, a *Aggregator, samples ...sample) {
	t.Helper()
	var w state.Samples
	for _, s := range samples {
		if s.rate == 0 {
			s.rate = 1
		}
		if err := w.Append(uint8(s.typ), uint8(s.scope), []byte(s.name), []byte(s.tags), s.value, s.rate); err != nil {
			t.Fatal(err)
		}
	}
	ship(t, a, &w)
}

// ship aggregates w in a source's table and merges the state it ships into a.
func ship(t *testing.T, a *Aggregator, w *state.Samples) {
	t.Helper()
	src := state.New(a.table.Params(), 1)
	if _, refused := src.AddSamples(w); refused != (state.Refused{}) {
		t.Fatalf("samples refused: %+v", refused)
	}
	src.Ship(1<<20, func(b []byte) {
		if _, err := a.MergeState(b); err != nil {
			t.Fatal(err)
		}
	})
}

// points renders a flush as "name{tags} type value" lines, sorted.
func points(f *sdk.Flush) []string {
	var out []string
	for _, p := range f.Points {
		out = append(out, fmt.Sprintf("%s{%s} %s %g", p.Name, strings.Join(p.Tags, ","), p.Type, p.Value))
	}
	sort.Strings(out)
	return out
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCountersGaugesSets(t *testing.T) {
	a := New(Config{Aggregates: Min | Max | Count, Hostname: "h"})
	set := func(m string) float64 { return sdk.SetValue(metro.Hash64([]byte(m), 1337)) }
	ingest(t, a,
		sample{typ: sdk.Counter, name: "c", value: 1, rate: 0.5},
		sample{typ: sdk.Counter, name: "c", value: 0.5},
		sample{typ: sdk.Counter, name: "c", value: 0.5},
		sample{typ: sdk.Counter, name: "c", tags: "a:1", value: 3},
		sample{typ: sdk.Gauge, name: "g", value: 7},
		sample{typ: sdk.Gauge, name: "g", value: -2.5},
		sample{typ: sdk.Set, name: "s", value: set("alice")},
		sample{typ: sdk.Set, name: "s", value: set("bob")},
		sample{typ: sdk.Set, name: "s", value: set("alice")},
	)
	expect(t, points(a.Flush(100)),
		"c{} counter 3",
		"c{a:1} counter 3",
		"g{} gauge -2.5",
		"s{} gauge 2",
	)
	if f := a.Flush(110); len(f.Points) != 0 {
		t.Fatalf("series outlived their interval: %v", points(f))
	}
}

func TestHistogramAggregates(t *testing.T) {
	a := New(Config{Aggregates: Min | Max | Count | Sum | Avg | Median | HMean, Percentiles: []float64{0.5, 0.99}})
	for _, v := range []float64{1, 2, 4} {
		ingest(t, a, sample{typ: sdk.Timer, name: "t", tags: "x:y", value: v})
	}
	ingest(t, a, sample{typ: sdk.Timer, name: "t", tags: "x:y", value: 4, rate: 0.5})
	// Values 1, 2, 4 and 4 weighted 2: count 5, sum 15, reciprocal sum 1+0.5+0.25+0.5.
	expect(t, points(a.Flush(1)),
		"t.avg{x:y} gauge 3",
		"t.count{x:y} counter 5",
		"t.hmean{x:y} gauge "+fmt.Sprint(5/2.25),
		"t.max{x:y} gauge 4",
		"t.min{x:y} gauge 1",
		"t.sum{x:y} gauge 15",
		"t.median{x:y} gauge 4",
		"t.50percentile{x:y} gauge 4",
		"t.99percentile{x:y} gauge 4",
	)
}

func TestZeroHistogram(t *testing.T) {
	a := New(Config{Aggregates: Sum | Avg | HMean | Count})
	ingest(t, a, sample{typ: sdk.Histogram, name: "z", value: 0})
	expect(t, points(a.Flush(1)),
		"z.avg{} gauge 0", "z.count{} counter 1", "z.hmean{} gauge 0", "z.sum{} gauge 0")
}

// TestScopeDoesNotSplitASeries flushes x:1|c|#a:1,
// x:2|c|#a:1,veneurlocalonly and x:4|c|#a:1,veneurglobalonly (as the
// dogstatsd source parses them: tags a:1, three scopes) as one point,
// x{a:1} = 7, whether one source or three read them, and with tags
// extended at flush. A gauge of the same name and tags stays apart.
func TestScopeDoesNotSplitASeries(t *testing.T) {
	lines := []sample{
		{typ: sdk.Counter, name: "x", tags: "a:1", value: 1},
		{typ: sdk.Counter, scope: sdk.ScopeLocal, name: "x", tags: "a:1", value: 2},
		{typ: sdk.Counter, scope: sdk.ScopeGlobal, name: "x", tags: "a:1", value: 4},
	}
	a := New(Config{})
	ingest(t, a, lines...)
	expect(t, points(a.Flush(1)), "x{a:1} counter 7")

	for _, l := range lines {
		ingest(t, a, l)
	}
	ingest(t, a, sample{typ: sdk.Gauge, scope: sdk.ScopeLocal, name: "x", tags: "a:1", value: 3})
	expect(t, points(a.Flush(2)), "x{a:1} counter 7", "x{a:1} gauge 3")

	a = New(Config{ExtendTags: []string{"env:prod"}})
	ingest(t, a, lines[1])
	ingest(t, a, sample{typ: sdk.Counter, scope: sdk.ScopeGlobal, name: "x", tags: "a:1,env:dev", value: 5})
	expect(t, points(a.Flush(3)), "x{a:1,env:prod} counter 7")
}

func TestServiceChecksLastWins(t *testing.T) {
	a := New(Config{Hostname: "self"})
	a.AddServiceCheck(sdk.ServiceCheck{Name: "db", Status: 2, Message: "down"})
	a.AddServiceCheck(sdk.ServiceCheck{Name: "db", Status: 0, Message: "up", Hostname: "dbhost"})
	f := a.Flush(5)
	if len(f.Points) != 1 || f.Points[0].Value != 0 || f.Points[0].Message != "up" || f.Points[0].Hostname != "dbhost" || f.Points[0].Type != sdk.PointStatus {
		t.Fatalf("points %+v", f.Points)
	}
}

func TestPercentileSuffix(t *testing.T) {
	f := func(q float64, want string) {
		t.Helper()
		if got := PercentileSuffix(q); got != want {
			t.Errorf("PercentileSuffix(%v) = %q, want %q", q, got, want)
		}
	}
	f(0.5, ".50percentile")
	f(0.99, ".99percentile")
	f(0.75, ".75percentile")
	f(0.999, ".99_9percentile")
	f(0.9999, ".99_99percentile")
	f(0.001, ".0_1percentile")
	f(0.05, ".5percentile")
	if PercentileSuffix(0.99) == PercentileSuffix(0.999) {
		t.Error("0.99 and 0.999 collide")
	}
}

func TestExtendTags(t *testing.T) {
	a := New(Config{ExtendTags: []string{"env:prod", "region"}, Aggregates: Count})
	ingest(t, a,
		sample{typ: sdk.Counter, name: "c", tags: "env:dev,x:1", value: 1},
		sample{typ: sdk.Counter, name: "c", tags: "env:prod,x:1", value: 2},
		sample{typ: sdk.Counter, name: "c", tags: "x:1", value: 4},
		sample{typ: sdk.Timer, name: "t", tags: "env:dev", value: 1},
		sample{typ: sdk.Timer, name: "t", tags: "env:qa", value: 2},
	)
	a.AddServiceCheck(sdk.ServiceCheck{Name: "sc", Tags: []string{"env:dev"}})
	a.AddEvent(&pb.Event{Title: "deploy", Tags: []string{"x:1", "env:dev"}})
	f := a.Flush(1)
	if got := strings.Join(f.Events[0].Tags, ","); got != "env:prod,region,x:1" {
		t.Errorf("event tags %q", got)
	}
	expect(t, points(f),
		"c{env:prod,region,x:1} counter 7",
		"t.count{env:prod,region} counter 2",
		"sc{env:prod,region} status 0",
	)
}

// TestSetAccuracy checks the sketch's estimate for 1,000,000 distinct
// members at the default precision is within 2%.
func TestSetAccuracy(t *testing.T) {
	a := New(Config{})
	var w state.Samples
	for i := range 1_000_000 {
		m := fmt.Appendf(nil, "member-%d", i)
		w.Append(uint8(sdk.Set), 0, []byte("users"), nil, sdk.SetValue(metro.Hash64(m, 1337)), 1)
	}
	ship(t, a, &w)
	f := a.Flush(1)
	got := f.Points[0].Value
	relErr := (got - 1e6) / 1e6
	t.Logf("1,000,000 distinct members estimated as %.0f: error %.3f%%", got, 100*relErr)
	if relErr > 0.02 || relErr < -0.02 {
		t.Fatalf("estimate %v is off by more than 2%%", got)
	}
}

// TestFlushToEach: with several emitters each series is emitted once, its
// points in a row to one emitter, and together they emit what one would.
func TestFlushToEach(t *testing.T) {
	cfg := Config{Percentiles: []float64{0.5}, Aggregates: Max | Count, Hostname: "h"}
	var samples []sample
	for i := range 2000 {
		samples = append(samples, sample{typ: sdk.Counter, name: "c", tags: fmt.Sprintf("i:%d", i), value: 1},
			sample{typ: sdk.Timer, name: "t", tags: fmt.Sprintf("i:%d", i), value: float64(i)})
	}
	one, many := New(cfg), New(cfg)
	ingest(t, one, samples...)
	ingest(t, many, samples...)
	one.AddServiceCheck(sdk.ServiceCheck{Name: "sc", Status: 1})
	many.AddServiceCheck(sdk.ServiceCheck{Name: "sc", Status: 1})
	want := &Collector{}
	one.FlushTo(want)
	parts := []*Collector{{}, {}, {}}
	many.FlushToEach([]Emitter{parts[0], parts[1], parts[2]})
	var got []sdk.Point
	seen := map[string]int{} // series -> part
	for i, c := range parts {
		prev := ""
		for _, p := range c.Points {
			series := strings.Join(p.Tags, ",") + "|" + strings.SplitN(p.Name, ".", 2)[0]
			if part, ok := seen[series]; ok && (part != i || prev != series) {
				t.Fatalf("the points of %s are not in a row of one emitter", series)
			}
			seen[series], prev = i, series
		}
		got = append(got, c.Points...)
	}
	if g, w := points(&sdk.Flush{Points: got}), points(&sdk.Flush{Points: want.Points}); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%d points from three emitters, %d from one", len(g), len(w))
	}
	if len(parts[0].Points) == 0 || parts[0].Points[len(parts[0].Points)-1].Name != "sc" {
		t.Error("the service check is not the first emitter's last point")
	}
}

// TestFlushStats: a flush counts its series, once each whether own,
// received or both, and names the names with the most series, most first
// (ties by name), whichever emitters emitted them.
func TestFlushStats(t *testing.T) {
	a := New(Config{Hostname: "h"})
	var samples []sample
	for n := range 15 { // name.N has N+1 series
		for i := range n + 1 {
			samples = append(samples, sample{typ: sdk.Counter, name: fmt.Sprintf("name.%02d", n), tags: fmt.Sprintf("i:%d", i), value: 1})
		}
	}
	samples = append(samples, sample{typ: sdk.Timer, name: "tie", tags: "a", value: 1}, sample{typ: sdk.Timer, name: "tie", tags: "b", value: 1},
		sample{typ: sdk.Timer, name: "tie", tags: "c", value: 1})
	ingest(t, a, samples...)
	// A global's: the same timer received from a local joins its own.
	var w state.Samples
	w.Append(uint8(sdk.Timer), uint8(sdk.ScopeDefault), []byte("tie"), []byte("a"), 2, 1)
	src := state.New(a.table.Params(), 1)
	src.AddSamples(&w)
	src.Ship(1<<20, func(records []byte) {
		if _, err := a.Import(records); err != nil {
			t.Fatal(err)
		}
	})
	a.FlushToEach([]Emitter{&Collector{}, &Collector{}, &Collector{}})
	st := a.LastFlush()
	if st.Series != 120+3 {
		t.Errorf("%d series, want 123", st.Series)
	}
	var got []string
	for _, nc := range st.TopNames {
		got = append(got, fmt.Sprintf("%s=%d", nc.Name, nc.Series))
	}
	want := "name.14=15 name.13=14 name.12=13 name.11=12 name.10=11 name.09=10 name.08=9 name.07=8 name.06=7 name.05=6"
	if strings.Join(got, " ") != want {
		t.Errorf("top names %s\nwant %s", strings.Join(got, " "), want)
	}
	a.FlushTo(&Collector{})
	if st := a.LastFlush(); st.Series != 0 || len(st.TopNames) != 0 {
		t.Errorf("an empty flush: %+v", st)
	}
}
