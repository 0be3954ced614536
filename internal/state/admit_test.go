package state

import (
	"strconv"
	"testing"
)

// TestAdmit: the table asks its Admit only for series it does not hold; a
// series refused is never held, and each of its samples is asked again.
func TestAdmit(t *testing.T) {
	tbl := New(Params{}, 4)
	asked := map[string]int{}
	tbl.SetAdmit(func(_ uint64, name, tags []byte) bool {
		asked[string(name)+"|"+string(tags)]++
		return string(name) != "dropped"
	})
	var s Samples
	for i := range 10 {
		for _, name := range []string{"kept", "dropped"} {
			if err := s.Append(Counter, ScopeDefault, []byte(name), []byte("k:"+strconv.Itoa(i%2)), 1, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	added, refused := tbl.AddSamples(&s)
	if added != 10 || refused.NotAdmitted != 10 {
		t.Errorf("added %d, not admitted %d", added, refused.NotAdmitted)
	}
	n := 0
	refused.Each(func(string, int) { n++ })
	if n != 0 {
		t.Error("samples not admitted are reported as rejected input")
	}
	if asked["kept|k:0"] != 1 || asked["kept|k:1"] != 1 || asked["dropped|k:0"] != 5 {
		t.Errorf("asked %v", asked)
	}
	var held []string
	for i := range tbl.Shards() {
		for _, se := range tbl.Take(i) {
			held = append(held, se.Name())
		}
	}
	if len(held) != 2 || held[0] != "kept" || held[1] != "kept" {
		t.Errorf("held %v", held)
	}
}

// TestMaxSeries: past its bound, a table refuses the samples and records of
// series it does not hold, counts them, and keeps merging into those it
// holds; taking its series makes room again.
func TestMaxSeries(t *testing.T) {
	tbl := New(Params{}, 4)
	tbl.SetMaxSeries(3)
	var s Samples
	for i := range 5 {
		for range 2 {
			if err := s.Append(Counter, ScopeDefault, []byte("c"+strconv.Itoa(i)), nil, 1, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	added, refused := tbl.AddSamples(&s)
	if added != 6 || refused.NotAdmitted != 4 || tbl.TakeOverLimit() != 4 {
		t.Fatalf("added %d, refused %d", added, refused.NotAdmitted)
	}
	// Records: one of a held series merges, one of a new series does not.
	src := New(Params{}, 1)
	var more Samples
	more.Append(Counter, ScopeDefault, []byte("c0"), nil, 5, 1)
	more.Append(Counter, ScopeDefault, []byte("c9"), nil, 5, 1)
	src.AddSamples(&more)
	src.Ship(1<<20, func(records []byte) {
		if _, err := tbl.MergeRecords(records); err != nil {
			t.Fatal(err)
		}
	})
	if n := tbl.TakeOverLimit(); n != 1 {
		t.Errorf("over the limit: %d records, want 1", n)
	}
	got := map[string]float64{}
	for i := range tbl.Shards() {
		for _, se := range tbl.Take(i) {
			got[se.Name()] = se.Value
		}
	}
	if len(got) != 3 || got["c0"] != 7 {
		t.Errorf("held %v", got)
	}
	s.Reset()
	s.Append(Counter, ScopeDefault, []byte("c4"), nil, 1, 1)
	if added, _ := tbl.AddSamples(&s); added != 1 {
		t.Error("an emptied table still refuses new series")
	}
}
