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
	tbl.SetAdmit(func(name, tags []byte) bool {
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
