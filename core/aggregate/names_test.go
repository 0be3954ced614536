package aggregate

import (
	"strconv"
	"testing"
)

// TestTopNamesAmongDistinctNames: among 300,000 names of one series each,
// spread over three flush workers, the names with many series come out on
// top, in order, each estimate at least its true count and over it by at
// most the sketch's bound; a series costs no allocation.
func TestTopNamesAmongDistinctNames(t *testing.T) {
	cs := []*nameCounter{{}, {}, {}}
	heavy := map[string]uint64{"big.a": 900, "big.b": 700, "big.c": 500}
	n := 0
	for i := range 300_000 {
		cs[i%3].add("single." + strconv.Itoa(i))
		n++
		if i%300 == 0 {
			for name, k := range heavy {
				if uint64(i/300) < k {
					cs[(i/300)%3].add(name)
					n++
				}
			}
		}
	}
	top, series := mergeNames(cs)
	if series != uint64(n) {
		t.Errorf("%d series counted, want %d", series, n)
	}
	bound := uint64(3 * n / cmsWidth) // e·N/width, rounded up
	for i, want := range []string{"big.a", "big.b", "big.c"} {
		if top[i].Name != want || top[i].Series < heavy[want] || top[i].Series > heavy[want]+bound {
			t.Errorf("top %d: %+v, want %s with %d (+%d at most)", i, top[i], want, heavy[want], bound)
		}
	}
	c := &nameCounter{}
	c.add("warm")
	if a := testing.AllocsPerRun(1000, func() { c.add("single.42") }); a != 0 {
		t.Errorf("%v allocations per series", a)
	}
}

func BenchmarkNameCounter(b *testing.B) {
	names := make([]string, 1<<16)
	for i := range names {
		names[i] = "bench.counter." + strconv.Itoa(i)
	}
	c := &nameCounter{}
	b.ResetTimer()
	for i := range b.N {
		c.add(names[i&(1<<16-1)])
	}
}
