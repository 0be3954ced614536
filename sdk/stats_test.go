package sdk

import (
	"testing"
)

// TestStatsTakeReportsGains checks that Take reports what each counter
// gained since the last Take, once.
func TestStatsTakeReportsGains(t *testing.T) {
	s := NewStats()
	d := s.Counter("veneur.sink.metrics_dropped_total", "reason:buffer_full")
	r := s.Counter("veneur.sink.retries_total")
	d.Add(5)
	r.Add(1)
	got := s.Take()
	if len(got) != 2 || got[0].Name != "veneur.sink.metrics_dropped_total" || got[0].Value != 5 ||
		got[0].Tags[0] != "reason:buffer_full" || got[1].Value != 1 {
		t.Fatalf("first take %v", got)
	}
	if got := s.Take(); len(got) != 0 {
		t.Fatalf("nothing changed, yet took %v", got)
	}
	if s.Counter("veneur.sink.metrics_dropped_total", "reason:buffer_full") != d {
		t.Fatal("looking a counter up again gave another counter")
	}
	d.Add(2)
	if got := s.Take(); len(got) != 1 || got[0].Value != 2 {
		t.Fatalf("second take %v", got)
	}
	var none *Stats
	none.Counter("x").Add(1) // a nil Stats counts nothing, and does not panic
	if none.Take() != nil {
		t.Fatal("a nil Stats took counts")
	}
}
