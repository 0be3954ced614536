package state

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dgryski/go-metro"
)

// addEach adds the samples of s one at a time, each under the lock alone.
func addEach(t *Table, s *Samples) {
	var x sample
	for off := 0; off < len(s.b); {
		off = s.read(off, &x)
		h := hashKey(x.key)
		t.mu.Lock()
		t.add(h, &x)
		t.mu.Unlock()
	}
}

// setValue is what a source's Writer is given for a set member hashed h.
func setValue(h uint64) float64 { return math.Float64frombits(h) }

// snapshot takes a table's series, keyed by key.
func snapshot(t *Table) map[string]Series {
	out := map[string]Series{}
	for i := range t.Shards() {
		for _, se := range t.Take(i) {
			out[se.ID()] = se
		}
	}
	return out
}

// workload writes n samples over 40 series of every type into w.
func workload(w *Samples, rng *rand.Rand, n int) {
	types := []uint8{Counter, Gauge, Timer, Histogram, Set}
	for i := range n {
		typ := types[i%len(types)]
		name := fmt.Appendf(nil, "m.%d.%d", typ, rng.IntN(8))
		tags := []byte("env:prod,host:a")
		v := rng.NormFloat64()*10 + 100
		rate := 1.0
		if i%7 == 0 {
			rate = 0.5
		}
		if typ == Set {
			v = setValue(metro.Hash64(fmt.Appendf(nil, "member-%d", rng.IntN(500)), 1337))
		}
		w.Append(typ, 0, name, tags, v, rate)
	}
}

// TestShippedStateMergesToTheSame checks that samples aggregated in several
// tables, shipped as records (in small frames) and merged into one, give
// what aggregating them all in one table gives: exact sums and gauges,
// equal digest counts, extremes and sums, and percentiles within 1% of the
// direct digest's, and set estimates within 2%.
func TestShippedStateMergesToTheSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	direct := New(Params{}, 4)
	merged := New(Params{}, 8)
	for part := range 5 {
		var w Samples
		workload(&w, rng, 20_000)
		direct.AddSamples(&w)
		src := New(Params{}, 2)
		addEach(src, &w)
		frames := 0
		src.Ship(4096, func(b []byte) {
			frames++
			if _, err := merged.MergeRecords(b); err != nil {
				t.Fatalf("part %d: %v", part, err)
			}
		})
		if frames < 2 {
			t.Fatalf("part %d shipped in %d frame(s); want several of at most ~4 KB", part, frames)
		}
		if src.Size() != 0 || len(snapshot(src)) != 0 {
			t.Fatalf("part %d: the shipped table still holds %d bytes", part, src.Size())
		}
	}
	want, got := snapshot(direct), snapshot(merged)
	if len(want) != 40 || len(got) != len(want) {
		t.Fatalf("%d series merged, %d aggregated directly; want 40", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("series %q was not merged", k)
		}
		name := w.Name()
		switch w.Type() {
		case Counter:
			if math.Abs(g.Value-w.Value) > 1e-9*math.Abs(w.Value) {
				t.Errorf("%s: sum %v, want %v", name, g.Value, w.Value)
			}
		case Gauge:
			if g.Value != w.Value {
				t.Errorf("%s: gauge %v, want the last value %v", name, g.Value, w.Value)
			}
		case Timer, Histogram:
			if g.Digest.Count() != w.Digest.Count() || g.Digest.Min() != w.Digest.Min() || g.Digest.Max() != w.Digest.Max() {
				t.Errorf("%s: count/min/max %v/%v/%v, want %v/%v/%v", name, g.Digest.Count(), g.Digest.Min(), g.Digest.Max(),
					w.Digest.Count(), w.Digest.Min(), w.Digest.Max())
			}
			if math.Abs(g.Digest.Sum()-w.Digest.Sum()) > 1e-9*math.Abs(w.Digest.Sum()) {
				t.Errorf("%s: sum %v, want %v", name, g.Digest.Sum(), w.Digest.Sum())
			}
			for _, q := range []float64{0.5, 0.9, 0.99} {
				gq, wq := g.Digest.Quantile(q), w.Digest.Quantile(q)
				if math.Abs(gq-wq) > 0.01*math.Abs(wq) {
					t.Errorf("%s: p%v %v, want %v within 1%%", name, q*100, gq, wq)
				}
			}
		case Set:
			ge, we := float64(g.Set.Estimate()), float64(w.Set.Estimate())
			if math.Abs(ge-we) > 0.02*we {
				t.Errorf("%s: %v members, want %v within 2%%", name, ge, we)
			}
		}
	}
}

// permutations returns every order of xs.
func permutations(xs []uint8) [][]uint8 {
	if len(xs) <= 1 {
		return [][]uint8{slices.Clone(xs)}
	}
	var out [][]uint8
	for i := range xs {
		rest := slices.Concat(xs[:i], xs[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]uint8{xs[i]}, p...))
		}
	}
	return out
}

// TestScopeDoesNotSplitASeries adds samples of one counter and one timer
// (x{a:1}) sent with every scope, in every order: each makes one series of
// every sample, at the widest scope (global), whatever the order. A gauge of
// the same name and tags stays a series of its own.
func TestScopeDoesNotSplitASeries(t *testing.T) {
	values := map[uint8]float64{ScopeDefault: 1, ScopeLocal: 2, ScopeGlobal: 4}
	for _, order := range permutations([]uint8{ScopeDefault, ScopeLocal, ScopeGlobal}) {
		tb := New(Params{}, 4)
		var w Samples
		for _, sc := range order {
			w.Append(Counter, sc, []byte("x"), []byte("a:1"), values[sc], 1)
			w.Append(Timer, sc, []byte("x"), []byte("a:1"), values[sc], 1)
		}
		w.Append(Gauge, ScopeLocal, []byte("x"), []byte("a:1"), 9, 1)
		tb.AddSamples(&w)
		got := snapshot(tb)
		if len(got) != 3 {
			t.Fatalf("scopes %v: %d series, want 3 (counter, timer, gauge)", order, len(got))
		}
		c, d, g := got[ID(Counter, "x", "a:1")], got[ID(Timer, "x", "a:1")], got[ID(Gauge, "x", "a:1")]
		if c.Value != 7 || c.Scope() != ScopeGlobal {
			t.Errorf("scopes %v: counter %v at scope %d, want 7 at global (%d)", order, c.Value, c.Scope(), ScopeGlobal)
		}
		if d.Digest == nil || d.Digest.Count() != 3 || d.Digest.Sum() != 7 || d.Scope() != ScopeGlobal {
			t.Errorf("scopes %v: timer %+v, want 3 samples summing to 7 at global", order, d)
		}
		if g.Value != 9 || g.Scope() != ScopeLocal {
			t.Errorf("scopes %v: gauge %v at scope %d, want 9 at local", order, g.Value, g.Scope())
		}
	}
	for _, c := range []struct {
		scopes []uint8
		want   uint8
	}{
		{[]uint8{ScopeLocal}, ScopeLocal},
		{[]uint8{ScopeLocal, ScopeDefault}, ScopeDefault},
		{[]uint8{ScopeDefault, ScopeLocal}, ScopeDefault},
		{[]uint8{ScopeLocal, 9}, ScopeDefault}, // an unknown scope is the default
		{[]uint8{ScopeLocal, ScopeGlobal, ScopeLocal}, ScopeGlobal},
	} {
		tb := New(Params{}, 1)
		var w Samples
		for _, sc := range c.scopes {
			w.Append(Counter, sc, []byte("x"), nil, 1, 1)
		}
		tb.AddSamples(&w)
		got := snapshot(tb)
		if se := got[ID(Counter, "x", "")]; len(got) != 1 || se.Scope() != c.want || se.Value != float64(len(c.scopes)) {
			t.Errorf("scopes %v: %d series, scope %d and sum %v; want one at scope %d summing to %d",
				c.scopes, len(got), se.Scope(), se.Value, c.want, len(c.scopes))
		}
	}
}

// TestRecordsCarryScope ships one series from three sources, one scope each,
// and merges their records in every order: one series of every sample, at
// the widest scope. A series shipped alone keeps its scope.
func TestRecordsCarryScope(t *testing.T) {
	values := map[uint8]float64{ScopeDefault: 1, ScopeLocal: 2, ScopeGlobal: 4}
	records := map[uint8][]byte{}
	for sc, v := range values {
		src := New(Params{}, 1)
		var w Samples
		w.Append(Counter, sc, []byte("x"), []byte("a:1"), v, 1)
		w.Append(Histogram, sc, []byte("h"), nil, v, 1)
		if sc == ScopeLocal {
			w.Append(Counter, sc, []byte("alone"), nil, 5, 1)
		}
		src.AddSamples(&w)
		src.Ship(1<<20, func(b []byte) { records[sc] = append(records[sc], b...) })
	}
	for _, order := range permutations([]uint8{ScopeDefault, ScopeLocal, ScopeGlobal}) {
		dst := New(Params{}, 2)
		for _, sc := range order {
			if _, err := dst.MergeRecords(records[sc]); err != nil {
				t.Fatal(err)
			}
		}
		got := snapshot(dst)
		if len(got) != 3 {
			t.Fatalf("merged in order %v: %d series, want 3", order, len(got))
		}
		c, h, alone := got[ID(Counter, "x", "a:1")], got[ID(Histogram, "h", "")], got[ID(Counter, "alone", "")]
		if c.Value != 7 || c.Scope() != ScopeGlobal {
			t.Errorf("merged in order %v: counter %v at scope %d, want 7 at global", order, c.Value, c.Scope())
		}
		if h.Digest.Count() != 3 || h.Digest.Sum() != 7 || h.Scope() != ScopeGlobal {
			t.Errorf("merged in order %v: histogram of %v summing to %v at scope %d, want 3 summing to 7 at global",
				order, h.Digest.Count(), h.Digest.Sum(), h.Scope())
		}
		if alone.Value != 5 || alone.Scope() != ScopeLocal {
			t.Errorf("merged in order %v: a local series alone is %v at scope %d, want 5 at local", order, alone.Value, alone.Scope())
		}
	}
}

// TestRecordsCorrupt checks that records that do not decode are refused
// with ErrCorrupt, after the good ones before them merged, and never panic.
func TestRecordsCorrupt(t *testing.T) {
	good := AppendRecord(nil, &Series{Key: Key(ScopeDefault, Counter, "c", ""), Value: 2})
	for name, b := range map[string][]byte{
		"version":    append([]byte{9}, good[1:]...),
		"version 1":  append([]byte{1}, good[1:]...),
		"truncated":  good[:len(good)-1],
		"payload":    append(slices.Clone(good), AppendRecord(nil, &Series{Key: Key(ScopeDefault, Timer, "t", ""), Value: 1})[1:]...),
		"type":       append(slices.Clone(good), AppendRecord(nil, &Series{Key: Key(ScopeDefault, 99, "x", ""), Value: 1})[1:]...),
		"scope":      append(slices.Clone(good), AppendRecord(nil, &Series{Key: Key(3, Counter, "x", ""), Value: 1})[1:]...),
		"header":     append(slices.Clone(good), 1, 0),
		"key length": append(slices.Clone(good), 8, 0, 0, 0, 0, 1, 200, 0, 0, 0),
	} {
		tb := New(Params{}, 1)
		n, err := tb.MergeRecords(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrCorrupt", name, err)
			continue
		}
		wantMerged := 1
		if strings.HasPrefix(name, "version") || name == "truncated" {
			wantMerged = 0
		}
		if n != wantMerged {
			t.Errorf("%s: %d records merged before the corrupt one, want %d", name, n, wantMerged)
		}
		t.Logf("%s: %v", name, err)
	}
}

// TestHashCollisions forces keys onto one hash, and more keys onto one
// fingerprint than fit before the index grows: series stay apart, each found
// by its key.
func TestHashCollisions(t *testing.T) {
	var sh shard
	var keys []string
	for i := range 100 {
		k := fmt.Sprintf("key-%d", i)
		h := uint64(42) // the same hash for all
		if i%2 == 1 {
			h = uint64(i) << 32 // the same probe start, fingerprints apart
		}
		if _, ok := sh.find(h, []byte(k)); ok {
			t.Fatalf("%s found before insert", k)
		}
		sh.insert(h, Series{Key: "\x00" + k}) // scope, then identity
		keys = append(keys, k)
		for want, k := range keys {
			h := uint64(42)
			if want%2 == 1 {
				h = uint64(want) << 32
			}
			// Growing recomputes hashes from keys, so look up by the real
			// hash once the index has grown past the forced ones.
			i, ok := sh.find(h, []byte(k))
			if !ok {
				i, ok = sh.find(hashString(k), []byte(k))
			}
			if !ok || int(i) != want || sh.series[i].ID() != k {
				t.Fatalf("after %d inserts, %s: position %d, %v", len(keys), k, i, ok)
			}
		}
	}
}

// TestAddDoesNotAllocate checks the steady state: samples of series already
// held cost no allocation.
func TestAddDoesNotAllocate(t *testing.T) {
	tb := New(Params{}, 4)
	var w Samples
	workload(&w, rand.New(rand.NewPCG(3, 4)), 4096)
	for range 3 {
		tb.AddSamples(&w) // digests grow to their full size
	}
	if n := testing.AllocsPerRun(20, func() { tb.AddSamples(&w) }); n != 0 {
		t.Fatalf("AddSamples allocates %.1f times per 4096 samples", n)
	}
}

func FuzzMergeRecords(f *testing.F) {
	tb := New(Params{}, 2)
	var w Samples
	workload(&w, rand.New(rand.NewPCG(5, 6)), 50)
	w.Append(Counter, ScopeLocal, []byte("local"), nil, 1, 1)
	w.Append(Gauge, ScopeGlobal, []byte("global"), nil, 1, 1)
	tb.AddSamples(&w)
	tb.Ship(1<<20, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		New(Params{}, 1).MergeRecords(b)
	})
}

// BenchmarkAdd adds workload W's mix over 10,000 series (keys of ~40 bytes,
// 30% timers), sample by sample and a buffer of samples at a time.
func BenchmarkAdd(b *testing.B) {
	var w Samples
	rng := rand.New(rand.NewPCG(7, 8))
	types := []uint8{Counter, Counter, Counter, Counter, Gauge, Gauge, Timer, Timer, Timer, Set}
	for range 4096 {
		k := rng.IntN(10_000)
		v := rng.Float64() * 100
		if types[k%10] == Set {
			v = setValue(rng.Uint64())
		}
		w.Append(types[k%10], 0, fmt.Appendf(nil, "bench.metric.%d", k), []byte("env:prod,host:web-01,region:us"), v, 1)
	}
	for _, c := range []struct {
		name string
		add  func(*Table)
	}{
		{"one-by-one", func(t *Table) { addEach(t, &w) }},
		{"batch", func(t *Table) { t.AddSamples(&w) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			tb := New(Params{}, 16)
			var all Samples
			for k := range 10_000 { // every series held, as in a running interval
				all.Append(types[k%10], 0, fmt.Appendf(nil, "bench.metric.%d", k), []byte("env:prod,host:web-01,region:us"), 0, 1)
			}
			tb.AddSamples(&all)
			c.add(tb)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.add(tb)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*w.Len()), "ns/sample")
		})
	}
}

// BenchmarkShipMerge is the boundary's cost per series at a flush: the
// source encodes its state, the daemon merges it (10,000 series of every
// type, each having seen a few samples).
func BenchmarkShipMerge(b *testing.B) {
	var w Samples
	rng := rand.New(rand.NewPCG(9, 10))
	types := []uint8{Counter, Counter, Counter, Counter, Gauge, Gauge, Timer, Timer, Timer, Set}
	for i := range 30_000 {
		typ := types[i%len(types)]
		v := rng.Float64() * 100
		if typ == Set {
			v = setValue(rng.Uint64())
		}
		w.Append(typ, 0, fmt.Appendf(nil, "bench.metric.%d", i%10_000), []byte("env:prod,host:a"), v, 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		src, dst := New(Params{}, 8), New(Params{}, 8)
		src.AddSamples(&w)
		b.StartTimer()
		src.Ship(1<<20, func(f []byte) { dst.MergeRecords(f) })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10_000), "ns/series")
}

// TestMergeIfHeld checks that a series merges into a table's series of the
// same identity, widening its scope, and that a table without one is left
// alone.
func TestMergeIfHeld(t *testing.T) {
	tab := New(Params{}, 2)
	other := New(Params{}, 2)
	add := func(tb *Table, scope uint8, v float64) {
		var s Samples
		if err := s.Append(Counter, scope, []byte("c"), []byte("a:b"), v, 1); err != nil {
			t.Fatal(err)
		}
		tb.AddSamples(&s)
	}
	add(tab, ScopeDefault, 2)
	add(other, ScopeGlobal, 3)
	var se Series
	for i := range other.Shards() {
		if taken := other.Take(i); len(taken) > 0 {
			se = taken[0]
		}
	}
	if ok, err := tab.MergeIfHeld(&se); !ok || err != nil {
		t.Fatalf("MergeIfHeld: %t %v", ok, err)
	}
	var got []Series
	for i := range tab.Shards() {
		got = append(got, tab.Take(i)...)
	}
	if len(got) != 1 || got[0].Value != 5 || got[0].Scope() != ScopeGlobal {
		t.Fatalf("%+v", got)
	}
	if ok, _ := tab.MergeIfHeld(&se); ok {
		t.Fatal("merged into an empty table")
	}
}

// TestSplitRecords splits shipped frames record by record into parts by
// series, as a proxy does: every series lands in exactly one part, whole,
// and the parts merged together equal the frames merged directly.
func TestSplitRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var w Samples
	workload(&w, rng, 20_000)
	src := New(Params{}, 2)
	src.AddSamples(&w)
	direct, parts := New(Params{}, 4), [3][]byte{}
	where := map[string]int{}
	src.Ship(4096, func(b []byte) {
		if _, err := direct.MergeRecords(b); err != nil {
			t.Fatal(err)
		}
		err := EachRecord(b, func(record, id []byte) bool {
			p := int(metro.Hash64(id, 0) % 3)
			if q, seen := where[string(id)]; seen && q != p {
				t.Fatalf("series %q in parts %d and %d", id, q, p)
			}
			where[string(id)] = p
			parts[p] = AppendRaw(parts[p], record)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	merged := New(Params{}, 4)
	for p, b := range parts {
		if len(b) == 0 {
			t.Fatalf("part %d is empty: 40 series should spread over 3", p)
		}
		if _, err := merged.MergeRecords(b); err != nil {
			t.Fatalf("part %d: %v", p, err)
		}
	}
	want, got := snapshot(direct), snapshot(merged)
	if len(want) != 40 || len(got) != 40 {
		t.Fatalf("%d series from the parts, %d direct; want 40", len(got), len(want))
	}
	for k, ws := range want {
		gs := got[k]
		switch {
		case ws.Digest != nil:
			if gs.Digest == nil || gs.Digest.Count() != ws.Digest.Count() || gs.Digest.Quantile(0.9) != ws.Digest.Quantile(0.9) {
				t.Errorf("%s: digest differs after the split", ws.Name())
			}
		case ws.Set != nil:
			if gs.Set == nil || gs.Set.Estimate() != ws.Set.Estimate() {
				t.Errorf("%s: set differs after the split", ws.Name())
			}
		case gs.Value != ws.Value:
			t.Errorf("%s: %v after the split, want %v", ws.Name(), gs.Value, ws.Value)
		}
	}
	if err := EachRecord(parts[0][:len(parts[0])-1], func(_, _ []byte) bool { return true }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a truncated frame: %v, want ErrCorrupt", err)
	}
}
