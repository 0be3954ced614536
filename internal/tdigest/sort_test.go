package tdigest

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSortByMean(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	gens := map[string]func(i, n int) float64{
		"random":    func(i, n int) float64 { return r.Float64() },
		"few":       func(i, n int) float64 { return float64(r.IntN(3)) },
		"equal":     func(i, n int) float64 { return 1 },
		"sorted":    func(i, n int) float64 { return float64(i) },
		"reversed":  func(i, n int) float64 { return float64(n - i) },
		"organpipe": func(i, n int) float64 { return float64(min(i, n-i)) },
		"sawtooth":  func(i, n int) float64 { return float64(i % 17) },
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 2, 3, 12, 13, 50, 704, 5000} {
			cs := make([]Centroid, n)
			for i := range cs {
				cs[i] = Centroid{Mean: gen(i, n), Weight: float64(i)}
			}
			want := slices.Clone(cs)
			slices.SortStableFunc(want, compareMean)
			sortByMean(cs)
			if !slices.IsSortedFunc(cs, compareMean) {
				t.Fatalf("%s/%d: not sorted", name, n)
			}
			// Same multiset: compare after a total order on (mean, weight).
			byBoth := func(a, b Centroid) int {
				if c := compareMean(a, b); c != 0 {
					return c
				}
				return compareMean(Centroid{Mean: a.Weight}, Centroid{Mean: b.Weight})
			}
			slices.SortFunc(cs, byBoth)
			slices.SortFunc(want, byBoth)
			if !slices.Equal(cs, want) {
				t.Fatalf("%s/%d: elements changed", name, n)
			}
		}
	}
	// The depth-limited fallback.
	cs := make([]Centroid, 1000)
	for i := range cs {
		cs[i].Mean = r.Float64()
	}
	quickSort(cs, 0, false, 0)
	if !slices.IsSortedFunc(cs, compareMean) {
		t.Fatal("heapSort fallback did not sort")
	}
}
