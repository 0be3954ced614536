package consistenthash

import (
	"fmt"
	"math"
	"testing"
)

// seriesKeys are n keys shaped like the state's series identities: a type,
// a name and sorted tags.
func seriesKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "\x03api.request.latency.%d\x00env:prod,host:web-%d,route:/v%d", i/100, i%100, i%7)
	}
	return keys
}

func members(n int) []string {
	m := make([]string, n)
	for i := range m {
		m[i] = fmt.Sprintf("10.0.0.%d:8128", i+1)
	}
	return m
}

// TestSpread spreads 100,000 series over 2, 3 and 10 members and checks
// that each member's share is within 4% of a fair share (about four
// standard deviations of a binomial, with 10 members; the keys are fixed, so
// the test is deterministic), reporting the spread.
func TestSpread(t *testing.T) {
	keys := seriesKeys(100_000)
	for _, n := range []int{2, 3, 10} {
		r := New(members(n))
		counts := make([]int, n)
		for _, k := range keys {
			counts[r.Choose(Hash(k))]++
		}
		fair := float64(len(keys)) / float64(n)
		worst := 0.0
		for _, c := range counts {
			worst = max(worst, math.Abs(float64(c)-fair)/fair)
		}
		t.Logf("%d members: %v series each; the furthest from a fair share (%.0f) is %.2f%% off", n, counts, fair, 100*worst)
		if worst > 0.04 {
			t.Errorf("%d members: a share is %.2f%% from fair: %v", n, 100*worst, counts)
		}
	}
}

// TestLeaveMovesOnlyTheLeaversSeries checks that when a member leaves, only
// its series move, each to its next choice in Order; and when it comes
// back, they return.
func TestLeaveMovesOnlyTheLeaversSeries(t *testing.T) {
	keys := seriesKeys(20_000)
	all := New(members(5))
	gone := all.Members()[2]
	rest := New(append(members(5)[:2:2], members(5)[3:]...))
	var moved int
	var order []int
	for _, k := range keys {
		h := Hash(k)
		before := all.Members()[all.Choose(h)]
		after := rest.Members()[rest.Choose(h)]
		order = all.Order(h, order[:0])
		if all.Members()[order[0]] != before {
			t.Fatalf("Order's first %s is not Choose's %s", all.Members()[order[0]], before)
		}
		if before != gone {
			if after != before {
				t.Fatalf("%q moved from %s to %s, though %s left", k, before, after, gone)
			}
			continue
		}
		moved++
		if next := all.Members()[order[1]]; after != next {
			t.Fatalf("%q went to %s, not its next choice %s", k, after, next)
		}
		if up := all.ChooseAmong(h, func(i int) bool { return all.Members()[i] != gone }); all.Members()[up] != after {
			t.Fatalf("ChooseAmong without %s gives %s, the smaller ring %s", gone, all.Members()[up], after)
		}
	}
	if moved < len(keys)/5*9/10 || moved > len(keys)/5*11/10 {
		t.Errorf("%d of %d series moved; a fifth was expected", moved, len(keys))
	}
}

// TestMembersAreASet checks that the order members are listed in, and
// duplicates, change nothing: every sender agrees whatever its list.
func TestMembersAreASet(t *testing.T) {
	a := New([]string{"b:1", "a:1", "c:1"})
	b := New([]string{"c:1", "a:1", "b:1", "a:1"})
	if !a.Equal(b) || a.Len() != 3 {
		t.Fatalf("%v and %v", a.Members(), b.Members())
	}
	for _, k := range seriesKeys(1000) {
		if a.Choose(Hash(k)) != b.Choose(Hash(k)) {
			t.Fatal("two lists of the same members chose differently")
		}
	}
	if New(nil).Choose(1) != -1 {
		t.Fatal("an empty ring chose a member")
	}
}

func BenchmarkChoose(b *testing.B) {
	keys := seriesKeys(1000)
	for _, n := range []int{3, 10} {
		r := New(members(n))
		b.Run(fmt.Sprint(n, "members"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, k := range keys {
					r.Choose(Hash(k))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/series")
		})
	}
}
