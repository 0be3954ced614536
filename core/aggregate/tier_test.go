package aggregate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/dgryski/go-metro"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

var tierConfig = Config{Aggregates: Min | Max | Count | Median, Percentiles: []float64{0.99}, Hostname: "h"}

// cells are one series of every type in every scope, named type.scope,
// each sample of value v (a set's member "m<v>").
func cells(v float64) []sample {
	var out []sample
	scopes := map[string]sdk.Scope{"def": sdk.ScopeDefault, "loc": sdk.ScopeLocal, "glob": sdk.ScopeGlobal}
	for _, typ := range []sdk.MetricType{sdk.Counter, sdk.Gauge, sdk.Histogram, sdk.Timer, sdk.Set} {
		for sname, scope := range scopes {
			s := sample{typ: typ, scope: scope, name: typ.String() + "." + sname, value: v}
			if typ == sdk.Set {
				s.value = sdk.SetValue(metro.Hash64(fmt.Appendf(nil, "m%g", v), 1337))
			}
			out = append(out, s)
		}
	}
	return out
}

// names lists a flush's point names, sorted.
func names(f *sdk.Flush) []string {
	var out []string
	for _, p := range f.Points {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func values(f *sdk.Flush) map[string]float64 {
	m := map[string]float64{}
	for _, p := range f.Points {
		m[p.Name] = p.Value
	}
	return m
}

// local is a local's aggregator with samples of values 1..n of every cell
// added, and the frames it forwards at its flush.
type local struct {
	a      *Aggregator
	mu     sync.Mutex
	frames [][]byte
}

func newLocal(t *testing.T, from, to int) *local {
	l := &local{a: New(tierConfig)}
	l.a.SetForward(func(frame []byte) {
		l.mu.Lock()
		l.frames = append(l.frames, frame)
		l.mu.Unlock()
	})
	for v := from; v <= to; v++ {
		ingest(t, l.a, cells(float64(v))...)
	}
	return l
}

// forwarded names the series of the frames.
func forwarded(t *testing.T, frames [][]byte) []string {
	tab := state.New(state.Params{}, 1)
	for _, f := range frames {
		if _, err := tab.MergeRecords(f); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, se := range tab.Take(0) {
		out = append(out, se.Name())
	}
	sort.Strings(out)
	return out
}

// TestLocalTier checks every cell of the table in docs/global-tier.md on a
// local: what it emits itself, and what it forwards.
func TestLocalTier(t *testing.T) {
	l := newLocal(t, 1, 10)
	f := l.a.Flush(1)
	expect(t, names(f),
		"counter.def", "counter.loc",
		"gauge.def", "gauge.loc",
		"histogram.def.count", "histogram.def.max", "histogram.def.min",
		"histogram.loc.99percentile", "histogram.loc.count", "histogram.loc.max", "histogram.loc.median", "histogram.loc.min",
		"set.loc",
		"timer.def.count", "timer.def.max", "timer.def.min",
		"timer.loc.99percentile", "timer.loc.count", "timer.loc.max", "timer.loc.median", "timer.loc.min",
	)
	if v := values(f); v["counter.def"] != 55 || v["histogram.def.count"] != 10 || v["histogram.def.max"] != 10 || v["set.loc"] != 10 {
		t.Errorf("local values %v", v)
	}
	expect(t, forwarded(t, l.frames),
		"counter.glob", "gauge.glob",
		"histogram.def", "histogram.glob",
		"set.def", "set.glob",
		"timer.def", "timer.glob",
	)
}

// TestGlobalTier checks every cell on a global that receives the state of
// two locals (values 1..50 and 51..100) and has a source of its own
// (values 101..150): its own host's outputs from its own samples, the
// fleet's from the union of all three, and every series once.
func TestGlobalTier(t *testing.T) {
	l1, l2 := newLocal(t, 1, 50), newLocal(t, 51, 100)
	l1.a.Flush(1)
	l2.a.Flush(1)
	g := New(tierConfig)
	for _, f := range append(l1.frames, l2.frames...) {
		if _, err := g.Import(f); err != nil {
			t.Fatal(err)
		}
	}
	for v := 101; v <= 150; v++ {
		ingest(t, g, cells(float64(v))...)
	}
	f := g.Flush(1)
	got := names(f)
	if dup := slices.Compact(slices.Clone(got)); len(dup) != len(got) {
		t.Fatalf("a point emitted twice: %v", got)
	}
	expect(t, got,
		// Its own host's outputs, from its own samples.
		"counter.def", "counter.loc", "gauge.def", "gauge.loc", "set.loc",
		"histogram.def.count", "histogram.def.max", "histogram.def.min",
		"histogram.loc.99percentile", "histogram.loc.count", "histogram.loc.max", "histogram.loc.median", "histogram.loc.min",
		"timer.def.count", "timer.def.max", "timer.def.min",
		"timer.loc.99percentile", "timer.loc.count", "timer.loc.max", "timer.loc.median", "timer.loc.min",
		// The fleet's, from the union.
		"counter.glob", "gauge.glob",
		"histogram.def.99percentile", "histogram.def.median",
		"histogram.glob.99percentile", "histogram.glob.count", "histogram.glob.max", "histogram.glob.median", "histogram.glob.min",
		"set.def", "set.glob",
		"timer.def.99percentile", "timer.def.median",
		"timer.glob.99percentile", "timer.glob.count", "timer.glob.max", "timer.glob.median", "timer.glob.min",
	)
	v := values(f)
	exact := map[string]float64{
		"counter.def": 6275, "counter.loc": 6275, // 101+...+150
		"counter.glob":        11325, // 1+...+150
		"histogram.def.count": 50, "histogram.def.min": 101, "histogram.def.max": 150,
		"histogram.glob.count": 150, "histogram.glob.min": 1, "histogram.glob.max": 150,
		"histogram.loc.count": 50,
		"set.loc":             50, "set.def": 150, "set.glob": 150, // a HyperLogLog is exact at these sizes
	}
	for name, want := range exact {
		if v[name] != want {
			t.Errorf("%s = %g, want %g", name, v[name], want)
		}
	}
	// Quantiles of the union 1..150, within the digest's error at 150
	// samples: a rank of one either way.
	approx := map[string]float64{"histogram.def.median": 75.5, "histogram.def.99percentile": 148.5, "histogram.glob.median": 75.5,
		"timer.def.median": 75.5, "histogram.loc.median": 125.5}
	for name, want := range approx {
		if math.Abs(v[name]-want) > 1.5 {
			t.Errorf("%s = %g, want %g±1.5", name, v[name], want)
		}
	}
}

// TestGlobalWithoutOwnSeries checks that a series only imported is emitted
// whole by its fleet share, and one only of its own sources as a
// standalone instance would.
func TestGlobalWithoutOwnSeries(t *testing.T) {
	l := newLocal(t, 1, 4)
	l.a.Flush(1)
	g := New(tierConfig)
	for _, f := range l.frames {
		if _, err := g.Import(f); err != nil {
			t.Fatal(err)
		}
	}
	ingest(t, g, sample{typ: sdk.Histogram, name: "own.h", value: 3})
	got := names(g.Flush(1))
	want := []string{"counter.glob", "gauge.glob",
		"histogram.def.99percentile", "histogram.def.median",
		"histogram.glob.99percentile", "histogram.glob.count", "histogram.glob.max", "histogram.glob.median", "histogram.glob.min",
		"own.h.99percentile", "own.h.count", "own.h.max", "own.h.median", "own.h.min",
		"set.def", "set.glob",
		"timer.def.99percentile", "timer.def.median",
		"timer.glob.99percentile", "timer.glob.count", "timer.glob.max", "timer.glob.median", "timer.glob.min"}
	expect(t, got, want...)
	if strings.Join(names(g.Flush(2)), ",") != "" {
		t.Fatal("the next flush emitted the imports again")
	}
}

// TestGlobalTierExtendTags checks that with extend_tags an own series
// merges into the imported one its extended tags make it.
func TestGlobalTierExtendTags(t *testing.T) {
	l := newLocal(t, 1, 10)
	l.a.Flush(1)
	cfg := tierConfig
	cfg.ExtendTags = []string{"dc:eu"}
	g := New(cfg)
	for _, f := range l.frames {
		if _, err := g.Import(f); err != nil {
			t.Fatal(err)
		}
	}
	ingest(t, g, sample{typ: sdk.Histogram, name: "histogram.def", value: 100}, sample{typ: sdk.Counter, scope: sdk.ScopeGlobal, name: "counter.glob", value: 5})
	f := g.Flush(1)
	v := map[string]float64{}
	for _, p := range f.Points {
		if strings.Join(p.Tags, ",") != "dc:eu" {
			t.Errorf("%s has tags %v", p.Name, p.Tags)
		}
		if _, dup := v[p.Name]; dup {
			t.Errorf("%s emitted twice", p.Name)
		}
		v[p.Name] = p.Value
	}
	if v["counter.glob"] != 60 || v["histogram.def.count"] != 1 || v["histogram.def.max"] != 100 || math.Abs(v["histogram.def.median"]-6) > 1 {
		t.Errorf("%v", v)
	}
}
