package state

import (
	"math"
	"testing"
)

// TestRefusesInvalidSamples adds samples whose value is not a finite number
// (or becomes one at its rate) and samples whose rate is out of range among
// good ones: each bad one is refused and counted under its reason, makes no
// series, and changes no aggregate; every good one is added exactly. A set's
// value is a hash, whatever float64 its bits spell.
func TestRefusesInvalidSamples(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	type in struct {
		typ         uint8
		name        string
		value, rate float64
	}
	good := []in{
		{Counter, "c", 1, 1},
		{Counter, "c", 1, 0.5},
		{Gauge, "g", 4, 1},
		{Timer, "t", 3, 1},
		{Set, "s", setValue(math.Float64bits(nan)), 1},
		{Set, "s", setValue(math.Float64bits(inf)), 1},
		{Set, "s", setValue(math.Float64bits(-inf)), 1},
	}
	invalidValue := []in{
		{Counter, "c", nan, 1},
		{Counter, "c", inf, 1},
		{Counter, "c", -inf, 0.5},
		{Counter, "c", 1e308, 0.1}, // 1e309 at its rate
		{Gauge, "g", inf, 1},
		{Gauge, "g", nan, 1},
		{Timer, "t", -inf, 1},
		{Histogram, "h", nan, 1}, // would be a series of its own
	}
	invalidRate := []in{
		{Counter, "c", 1, 0},
		{Counter, "c", 1, -1},
		{Counter, "c", 1, 2},
		{Gauge, "g", 1, nan},
		{Timer, "t", 1, 1e-320}, // a weight of 1e320
		{Set, "s", setValue(1), inf},
	}
	var w Samples
	for i := range max(len(good), len(invalidValue), len(invalidRate)) {
		for _, list := range [][]in{invalidValue, good, invalidRate} {
			if i < len(list) {
				x := list[i]
				w.Append(x.typ, ScopeDefault, []byte(x.name), nil, x.value, x.rate)
			}
		}
	}
	w.Append(6, ScopeDefault, []byte("status"), nil, 1, 1)  // not a type a Table holds
	w.Append(Gauge, ScopeDefault, []byte("g"), nil, nan, 1) // the last gauge, refused: 4 stays

	tb := New(Params{}, 2)
	added, refused := tb.AddSamples(&w)
	want := Refused{UnknownType: 1, InvalidValue: len(invalidValue) + 1, InvalidRate: len(invalidRate)}
	if added != len(good) || refused != want {
		t.Fatalf("added %d, refused %+v; want %d added, %+v refused", added, refused, len(good), want)
	}
	got := snapshot(tb)
	if len(got) != 4 {
		t.Fatalf("%d series, want c, g, t and s only", len(got))
	}
	if c := got[ID(Counter, "c", "")]; c.Value != 3 {
		t.Errorf("counter %v, want 3", c.Value)
	}
	if g := got[ID(Gauge, "g", "")]; g.Value != 4 {
		t.Errorf("gauge %v, want 4", g.Value)
	}
	if d := got[ID(Timer, "t", "")].Digest; d.Count() != 1 || d.Sum() != 3 || d.Min() != 3 || d.Max() != 3 {
		t.Errorf("timer count %v sum %v min %v max %v, want one sample of 3", d.Count(), d.Sum(), d.Min(), d.Max())
	}
	if n := got[ID(Set, "s", "")].Set.Estimate(); n != 3 {
		t.Errorf("set of %d members, want 3", n)
	}

	var reasons []string
	refused.Each(func(reason string, n int) { reasons = append(reasons, reason) })
	if len(reasons) != 3 || reasons[0] != "unknown_type" || reasons[1] != "invalid_value" || reasons[2] != "invalid_rate" {
		t.Errorf("reasons %v", reasons)
	}
}
