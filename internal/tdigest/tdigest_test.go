package tdigest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
)

func TestEmpty(t *testing.T) {
	d := New(DefaultCompression)
	if got := d.Quantile(0.5); !math.IsNaN(got) {
		t.Errorf("Quantile(0.5) of empty digest = %v, want NaN", got)
	}
	if d.Count() != 0 || d.Sum() != 0 || d.ReciprocalSum() != 0 {
		t.Errorf("empty digest: count %v sum %v rsum %v", d.Count(), d.Sum(), d.ReciprocalSum())
	}
	if !math.IsInf(d.Min(), 1) || !math.IsInf(d.Max(), -1) {
		t.Errorf("empty digest: min %v max %v, want +Inf -Inf", d.Min(), d.Max())
	}
	if cs := d.Centroids(); len(cs) != 0 {
		t.Errorf("empty digest has centroids %v", cs)
	}
}

func TestIgnoredInput(t *testing.T) {
	d := New(DefaultCompression)
	d.Add(math.NaN(), 1)
	d.Add(math.Inf(1), 1)
	d.Add(math.Inf(-1), 1)
	d.Add(1, 0)
	d.Add(1, -1)
	d.Add(1, math.NaN())
	d.Add(1, math.Inf(1))
	if d.Count() != 0 || len(d.Centroids()) != 0 {
		t.Fatalf("ignored input was added: count %v", d.Count())
	}
	for _, q := range []float64{-0.1, 1.1, math.NaN()} {
		d.Add(1, 1)
		if got := d.Quantile(q); !math.IsNaN(got) {
			t.Errorf("Quantile(%v) = %v, want NaN", q, got)
		}
	}
}

func TestExactSmall(t *testing.T) {
	d := New(DefaultCompression)
	vals := []float64{3, -1, 4, 1, 5, 9, 2, 6}
	var sum, rsum float64
	for _, v := range vals {
		d.Add(v, 1)
		sum += v
		rsum += 1 / v
	}
	if d.Count() != float64(len(vals)) {
		t.Errorf("Count = %v, want %v", d.Count(), len(vals))
	}
	if d.Sum() != sum || d.ReciprocalSum() != rsum {
		t.Errorf("Sum = %v, ReciprocalSum = %v; want %v, %v", d.Sum(), d.ReciprocalSum(), sum, rsum)
	}
	if d.Min() != -1 || d.Max() != 9 {
		t.Errorf("Min, Max = %v, %v; want -1, 9", d.Min(), d.Max())
	}
	// Small digests keep every point as its own centroid, so quantiles
	// interpolate the sorted values at midpoint ranks (Hazen's definition).
	sorted := slices.Sorted(slices.Values(vals))
	for i, v := range sorted {
		q := (float64(i) + 0.5) / float64(len(vals))
		if got := d.Quantile(q); got != v {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, v)
		}
	}
	if got := d.Quantile(0); got != -1 {
		t.Errorf("Quantile(0) = %v, want -1", got)
	}
	if got := d.Quantile(1); got != 9 {
		t.Errorf("Quantile(1) = %v, want 9", got)
	}
	if cs := d.Centroids(); len(cs) != len(vals) {
		t.Errorf("got %d centroids, want %d", len(cs), len(vals))
	}
	// The count stays exact when points are merged.
	for range 100000 {
		d.Add(0.5, 0.5)
	}
	_ = d.Quantile(0.5)
	if want := float64(len(vals)) + 50000; d.Count() != want {
		t.Errorf("Count = %v, want %v", d.Count(), want)
	}
}

func TestSingleValue(t *testing.T) {
	for _, n := range []int{1, 2, 1000} {
		d := New(DefaultCompression)
		for range n {
			d.Add(42.5, 3)
		}
		for _, q := range []float64{0, 0.001, 0.25, 0.5, 0.75, 0.999, 1} {
			if got := d.Quantile(q); got != 42.5 {
				t.Errorf("n=%d: Quantile(%v) = %v, want 42.5", n, q, got)
			}
		}
		if d.Count() != float64(3*n) || d.Sum() != 42.5*3*float64(n) {
			t.Errorf("n=%d: Count %v Sum %v", n, d.Count(), d.Sum())
		}
		if d.Min() != 42.5 || d.Max() != 42.5 {
			t.Errorf("n=%d: Min %v Max %v", n, d.Min(), d.Max())
		}
	}
}

func TestTwoValues(t *testing.T) {
	d := New(DefaultCompression)
	d.Add(10, 1)
	d.Add(20, 1)
	for _, c := range []struct{ q, want float64 }{
		{0, 10}, {0.1, 10}, {0.25, 10}, {0.5, 15}, {0.625, 17.5}, {0.75, 20}, {0.9, 20}, {1, 20},
	} {
		if got := d.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	rsum := 0.0
	for _, v := range []float64{10, 20} {
		rsum += 1 / v
	}
	if d.Count() != 2 || d.Sum() != 30 || d.ReciprocalSum() != rsum || d.Min() != 10 || d.Max() != 20 {
		t.Errorf("count %v sum %v rsum %v min %v max %v", d.Count(), d.Sum(), d.ReciprocalSum(), d.Min(), d.Max())
	}
}

func TestQuantileMonotoneAndBounded(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	d := New(DefaultCompression)
	for range 50000 {
		d.Add(r.ExpFloat64()*float64(r.IntN(3)+1), float64(r.IntN(4)+1))
	}
	prev := math.Inf(-1)
	for i := 0; i <= 10000; i++ {
		v := d.Quantile(float64(i) / 10000)
		if v < prev || v < d.Min() || v > d.Max() {
			t.Fatalf("Quantile(%v) = %v after %v, bounds [%v, %v]", float64(i)/10000, v, prev, d.Min(), d.Max())
		}
		prev = v
	}
	cs := d.Centroids()
	if len(cs) > centroidBound(DefaultCompression) {
		t.Errorf("%d centroids exceed the bound %d", len(cs), centroidBound(DefaultCompression))
	}
	if !slices.IsSortedFunc(cs, compareMean) {
		t.Error("centroids are not sorted")
	}
}

func TestWeighted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b := New(DefaultCompression), New(DefaultCompression)
	var xs []float64
	for range 100000 {
		v := math.Floor(r.NormFloat64()*1000) / 8
		a.Add(v, 2)
		b.Add(v, 1)
		b.Add(v, 1)
		xs = append(xs, v)
	}
	if a.Count() != b.Count() || a.Sum() != b.Sum() || a.ReciprocalSum() != b.ReciprocalSum() {
		t.Errorf("count %v/%v sum %v/%v rsum %v/%v", a.Count(), b.Count(), a.Sum(), b.Sum(), a.ReciprocalSum(), b.ReciprocalSum())
	}
	if a.Min() != b.Min() || a.Max() != b.Max() {
		t.Errorf("min %v/%v max %v/%v", a.Min(), b.Min(), a.Max(), b.Max())
	}
	// The digests see different merge schedules, so compare them in rank.
	slices.Sort(xs)
	for _, q := range []float64{0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999} {
		qa, qb := a.Quantile(q), b.Quantile(q)
		ea, eb := rankError(xs, q, qa), rankError(xs, q, qb)
		if ea > 0.001 || eb > 0.001 {
			t.Errorf("Quantile(%v): weight 2 gives %v (rank error %v), two adds give %v (rank error %v)", q, qa, ea, qb, eb)
		}
	}

	// Small case: weight 2 and two unit adds agree exactly at every
	// midpoint rank.
	c, e := New(DefaultCompression), New(DefaultCompression)
	for _, v := range []float64{5, 1, 3} {
		c.Add(v, 2)
		e.Add(v, 1)
		e.Add(v, 1)
	}
	for _, q := range []float64{0, 1.0 / 6, 0.5, 5.0 / 6, 1} {
		if c.Quantile(q) != e.Quantile(q) {
			t.Errorf("Quantile(%v): weight 2 gives %v, two adds give %v", q, c.Quantile(q), e.Quantile(q))
		}
	}
}

// logNormal returns n samples of a log-normal distribution with a fixed seed.
func logNormal(n int) []float64 {
	r := rand.New(rand.NewPCG(20240601, 42))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = math.Exp(r.NormFloat64())
	}
	return xs
}

// rankError returns |fraction of sorted <= estimate - q|.
func rankError(sorted []float64, q, estimate float64) float64 {
	rank := sort.Search(len(sorted), func(i int) bool { return sorted[i] > estimate })
	return math.Abs(float64(rank)/float64(len(sorted)) - q)
}

var accuracyQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

func checkAccuracy(t *testing.T, name string, d *Merging, sorted []float64) {
	t.Helper()
	for _, q := range accuracyQuantiles {
		est := d.Quantile(q)
		e := rankError(sorted, q, est)
		t.Logf("%s: q=%v estimate=%.6g exact=%.6g rank error=%.5f%% (%d centroids)",
			name, q, est, sorted[int(q*float64(len(sorted)))], 100*e, len(d.Centroids()))
		if e > 0.001 {
			t.Errorf("%s: q=%v rank error %v exceeds 0.001", name, q, e)
		}
	}
}

func TestAccuracy(t *testing.T) {
	const n, parts = 1000000, 20
	xs := logNormal(n)
	sorted := slices.Sorted(slices.Values(xs))

	single := New(DefaultCompression)
	for _, x := range xs {
		single.Add(x, 1)
	}
	if single.Count() != n || single.Min() != sorted[0] || single.Max() != sorted[n-1] {
		t.Errorf("count %v min %v max %v", single.Count(), single.Min(), single.Max())
	}
	checkAccuracy(t, "single", single, sorted)

	digests := make([]*Merging, parts)
	for i := range digests {
		digests[i] = New(DefaultCompression)
		for _, x := range xs[i*n/parts : (i+1)*n/parts] {
			digests[i].Add(x, 1)
		}
	}
	merge := func() *Merging {
		m := New(DefaultCompression)
		for _, p := range digests {
			m.Merge(p)
		}
		return m
	}
	m1 := merge()
	if m1.Count() != n || m1.Min() != sorted[0] || m1.Max() != sorted[n-1] {
		t.Errorf("merged: count %v min %v max %v", m1.Count(), m1.Min(), m1.Max())
	}
	checkAccuracy(t, "merged", m1, sorted)

	// Determinism: the same inputs in the same order give bit-identical
	// quantiles and encodings.
	m2 := merge()
	for i := 0; i <= 1000; i++ {
		q := float64(i) / 1000
		if a, b := m1.Quantile(q), m2.Quantile(q); math.Float64bits(a) != math.Float64bits(b) {
			t.Fatalf("Quantile(%v) differs between identical merges: %v vs %v", q, a, b)
		}
	}
	e1, _ := m1.AppendBinary(nil)
	e2, _ := m2.AppendBinary(nil)
	if !bytes.Equal(e1, e2) {
		t.Error("encodings differ between identical merges")
	}
	// A digest reused after Reset, with its storage already grown, gives
	// the same result as a fresh one.
	single.Reset()
	for _, p := range digests {
		single.Merge(p)
	}
	if e3, _ := single.AppendBinary(nil); !bytes.Equal(e1, e3) {
		t.Error("merging into a reset digest differs from merging into a new one")
	}
	if m1.Sum() != m2.Sum() || m1.ReciprocalSum() != m2.ReciprocalSum() {
		t.Error("sums differ between identical merges")
	}
}

func TestMergeEdgeCases(t *testing.T) {
	d := New(DefaultCompression)
	d.Merge(New(DefaultCompression))
	d.Merge(nil)
	if d.Count() != 0 || !math.IsInf(d.Min(), 1) {
		t.Fatalf("merging empty digests changed d: count %v min %v", d.Count(), d.Min())
	}
	for i := range 1000 {
		d.Add(float64(i), 1)
	}
	o := New(50)
	o.Add(-5, 3)
	o.Add(2000, 1)
	d.Merge(o)
	if d.Count() != 1004 || d.Min() != -5 || d.Max() != 2000 || d.Sum() != 499500-15+2000 {
		t.Errorf("count %v min %v max %v sum %v", d.Count(), d.Min(), d.Max(), d.Sum())
	}
	if o.Count() != 4 || len(o.cs) != 2 || o.nMain != 0 {
		t.Error("Merge modified its argument")
	}

	// Self merge doubles every weight.
	med := d.Quantile(0.5)
	d.Merge(d)
	if d.Count() != 2008 || d.Sum() != 2*(499500-15+2000) || d.Quantile(0.5) != med {
		t.Errorf("self merge: count %v sum %v median %v (was %v)", d.Count(), d.Sum(), d.Quantile(0.5), med)
	}
}

func TestReset(t *testing.T) {
	d := New(DefaultCompression)
	for i := range 10000 {
		d.Add(float64(i), 1)
	}
	c := cap(d.cs)
	d.Reset()
	if d.Count() != 0 || d.Sum() != 0 || d.ReciprocalSum() != 0 || !math.IsNaN(d.Quantile(0.5)) {
		t.Fatal("Reset did not empty the digest")
	}
	if cap(d.cs) != c {
		t.Errorf("Reset dropped the buffer: cap %d, was %d", cap(d.cs), c)
	}
	d.Add(7, 1)
	if d.Quantile(0.3) != 7 || d.Min() != 7 || d.Max() != 7 {
		t.Error("digest unusable after Reset")
	}
}

func TestCentroidsIsCopy(t *testing.T) {
	d := New(DefaultCompression)
	d.Add(1, 1)
	d.Add(2, 1)
	cs := d.Centroids()
	cs[0].Mean = 100
	if d.Quantile(0) != 1 || d.Centroids()[0].Mean != 1 {
		t.Error("modifying the result of Centroids changed the digest")
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	d := New(DefaultCompression)
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		d.Add(r.ExpFloat64(), 1)
	}
	allocs := testing.AllocsPerRun(100000, func() {
		d.Add(r.ExpFloat64(), 1)
	})
	if allocs != 0 {
		t.Errorf("Add allocates %v times per call in steady state", allocs)
	}
	// Reading and resetting between intervals does not allocate either.
	allocs = testing.AllocsPerRun(20, func() {
		d.Reset()
		for range 5000 {
			d.Add(r.ExpFloat64(), 10)
		}
		_ = d.Quantile(0.99)
	})
	if allocs != 0 {
		t.Errorf("an interval of Add/Quantile/Reset allocates %v times", allocs)
	}
}

// TestMemory reports the live heap per digest; the daemon may hold 100,000.
func TestMemory(t *testing.T) {
	const n = 5000
	measure := func(values int) float64 {
		ds := make([]*Merging, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range ds {
			ds[i] = New(DefaultCompression)
			for j := range values {
				ds[i].Add(float64(j%97), 1)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(ds)
		return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	}
	for _, c := range []struct {
		values int
		max    float64
	}{{0, 128}, {5, 256}, {100, 2300}, {1000, 8500}} {
		got := measure(c.values)
		t.Logf("%d values: %.0f bytes per digest", c.values, got)
		if got > c.max {
			t.Errorf("%d values: %.0f bytes per digest, want <= %.0f", c.values, got, c.max)
		}
	}
}

// TestQuantileAcrossTheWholeRange adds values near both ends of float64's
// range: every quantile between them is finite, ordered and within them,
// where interpolating by their difference (about 2e308) would overflow.
func TestQuantileAcrossTheWholeRange(t *testing.T) {
	d := New(DefaultCompression)
	for _, v := range []float64{-1.5e308, -1e308, 1e308, 1.5e308} {
		d.Add(v, 1)
	}
	prev := math.Inf(-1)
	for q := 0.0; q <= 1; q += 0.01 {
		got := d.Quantile(q)
		if math.IsInf(got, 0) || math.IsNaN(got) || got < -1.5e308 || got > 1.5e308 || got < prev {
			t.Fatalf("Quantile(%v) = %v after %v", q, got, prev)
		}
		prev = got
	}
	if got := d.Quantile(0.5); got != 0 {
		t.Errorf("Quantile(0.5) = %v, want 0, halfway between -1e308 and 1e308", got)
	}
}
