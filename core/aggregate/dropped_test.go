package aggregate

import (
	"maps"
	"math"
	"testing"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// expectDropped checks what TakeDropped reports, then that it counts anew.
func expectDropped(t *testing.T, a *Aggregator, want map[string]uint64) {
	t.Helper()
	if got := a.TakeDropped(); !maps.Equal(got, want) {
		t.Errorf("dropped %v, want %v", got, want)
	}
	if got := a.TakeDropped(); got != nil {
		t.Errorf("dropped %v after taking them, want nil", got)
	}
}

// TestHMeanUndefinedDropsThatPointOnly flushes -1:1|h with every aggregate:
// the reciprocals cancel out, so the harmonic mean (2/0) is dropped as
// undefined; every other point of the series and of the flush is emitted.
func TestHMeanUndefinedDropsThatPointOnly(t *testing.T) {
	a := New(Config{Aggregates: Min | Max | Count | Sum | Avg | Median | HMean, Percentiles: []float64{0.5}})
	ingest(t, a,
		sample{typ: sdk.Histogram, name: "h", value: -1},
		sample{typ: sdk.Histogram, name: "h", value: 1},
		sample{typ: sdk.Counter, name: "c", value: 1},
	)
	expect(t, points(a.Flush(1)),
		"c{} counter 1",
		"h.50percentile{} gauge 0",
		"h.avg{} gauge 0",
		"h.count{} counter 2",
		"h.max{} gauge 1",
		"h.median{} gauge 0",
		"h.min{} gauge -1",
		"h.sum{} gauge 0",
	)
	expectDropped(t, a, map[string]uint64{DropUndefined: 1})

	// A zero value makes the harmonic mean 0, whatever the zero's sign.
	ingest(t, a,
		sample{typ: sdk.Histogram, name: "z", value: 0},
		sample{typ: sdk.Histogram, name: "z", value: math.Copysign(0, -1)},
		sample{typ: sdk.Histogram, name: "z", value: 2},
	)
	a.SetConfig(Config{Aggregates: HMean})
	expect(t, points(a.Flush(2)), "z.hmean{} gauge 0")
	expectDropped(t, a, nil)
}

// TestDigestSumOverflowDropsThosePointsOnly flushes 1e308:1e308|h: its sum,
// and so its average, overflow float64 and are dropped; its count, extremes
// and percentiles are emitted.
func TestDigestSumOverflowDropsThosePointsOnly(t *testing.T) {
	a := New(Config{Aggregates: Min | Max | Count | Sum | Avg | Median | HMean, Percentiles: []float64{0.99}})
	ingest(t, a,
		sample{typ: sdk.Histogram, name: "h", value: 1e308},
		sample{typ: sdk.Histogram, name: "h", value: 1e308},
	)
	expect(t, points(a.Flush(1)),
		"h.99percentile{} gauge 1e+308",
		"h.count{} counter 2",
		"h.hmean{} gauge 1e+308",
		"h.max{} gauge 1e+308",
		"h.median{} gauge 1e+308",
		"h.min{} gauge 1e+308",
	)
	expectDropped(t, a, map[string]uint64{DropOverflow: 2})
}

// TestCounterOverflowDropsThatPointOnly flushes two 1e308|c, aggregated by
// one source, then by two sources each holding a finite 1e308 (the sum
// overflows in the daemon's merge): the counter is dropped, every other
// point is emitted, and a counter that goes back into range in a later
// interval is emitted again.
func TestCounterOverflowDropsThatPointOnly(t *testing.T) {
	a := New(Config{Aggregates: Count})
	big := sample{typ: sdk.Counter, name: "x", tags: "a:1", value: 1e308}
	ingest(t, a, big, big, sample{typ: sdk.Counter, name: "y", value: 2}, sample{typ: sdk.Timer, name: "t", value: 1})
	expect(t, points(a.Flush(1)), "t.count{} counter 1", "y{} counter 2")
	expectDropped(t, a, map[string]uint64{DropOverflow: 1})

	ingest(t, a, big)
	ingest(t, a, big, sample{typ: sdk.Counter, scope: sdk.ScopeLocal, name: "x", tags: "a:1", value: -1e308},
		sample{typ: sdk.Gauge, name: "g", value: 5})
	ingest(t, a, sample{typ: sdk.Counter, scope: sdk.ScopeGlobal, name: "x", tags: "a:1", value: 1e308})
	expect(t, points(a.Flush(2)), "g{} gauge 5")
	expectDropped(t, a, map[string]uint64{DropOverflow: 1})

	ingest(t, a, big, sample{typ: sdk.Counter, name: "x", tags: "a:1", value: -1})
	expect(t, points(a.Flush(3)), "x{a:1} counter 1e+308")
	expectDropped(t, a, nil)
}

// TestInvalidStateDropsThatPointOnly merges records no Table makes from
// samples, a gauge at +Inf and a counter at NaN: each point is dropped, the
// gauge's as invalid.
func TestInvalidStateDropsThatPointOnly(t *testing.T) {
	a := New(Config{})
	var b []byte
	b = state.AppendRecord(b, &state.Series{Key: state.Key(state.ScopeDefault, state.Gauge, "g", ""), Value: math.Inf(1)})
	b = state.AppendRecord(b, &state.Series{Key: state.Key(state.ScopeDefault, state.Counter, "c", ""), Value: math.NaN()})
	b = state.AppendRecord(b, &state.Series{Key: state.Key(state.ScopeDefault, state.Gauge, "ok", ""), Value: 1})
	if n, err := a.MergeState(b); n != 3 || err != nil {
		t.Fatalf("merged %d records: %v", n, err)
	}
	expect(t, points(a.Flush(1)), "ok{} gauge 1")
	expectDropped(t, a, map[string]uint64{DropInvalid: 1, DropOverflow: 1})
}
