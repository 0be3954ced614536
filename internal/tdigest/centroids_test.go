package tdigest

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFromCentroidsRoundTrip rebuilds digests from what Centroids, Min, Max
// and ReciprocalSum give: the same quantiles, count, extremes and
// reciprocal sum, a sum within rounding, and an encoding that decodes.
func TestFromCentroidsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 1000, 100000} {
		for _, compression := range []float64{MinCompression, DefaultCompression, 500} {
			d := New(compression)
			for range n {
				d.Add(math.Exp(r.NormFloat64()), 1+float64(r.IntN(3)))
			}
			cs := d.Centroids()
			got, err := FromCentroids(d.Compression(), cs, d.Min(), d.Max(), d.ReciprocalSum())
			if err != nil {
				t.Fatalf("n=%d c=%v: %v", n, compression, err)
			}
			if !slices.Equal(got.Centroids(), cs) {
				t.Errorf("n=%d c=%v: the centroids changed", n, compression)
			}
			if got.Count() != d.Count() || got.Min() != d.Min() || got.Max() != d.Max() ||
				got.ReciprocalSum() != d.ReciprocalSum() || got.Compression() != d.Compression() {
				t.Errorf("n=%d c=%v: count %v/%v min %v/%v max %v/%v rsum %v/%v compression %v/%v", n, compression,
					got.Count(), d.Count(), got.Min(), d.Min(), got.Max(), d.Max(),
					got.ReciprocalSum(), d.ReciprocalSum(), got.Compression(), d.Compression())
			}
			if math.Abs(got.Sum()-d.Sum()) > 1e-9*math.Abs(d.Sum()) {
				t.Errorf("n=%d c=%v: sum %v, want %v", n, compression, got.Sum(), d.Sum())
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 1} {
				if a, b := got.Quantile(q), d.Quantile(q); a != b {
					t.Errorf("n=%d c=%v: q%v = %v, want %v", n, compression, q, a, b)
				}
			}
			b, _ := got.AppendBinary(nil)
			if err := new(Merging).UnmarshalBinary(b); err != nil {
				t.Errorf("n=%d c=%v: the encoding does not decode: %v", n, compression, err)
			}
			// It goes on as a digest: adding and merging work.
			got.Add(1, 1)
			got.Merge(d)
			if got.Count() != 2*d.Count()+1 {
				t.Errorf("n=%d c=%v: count after more %v", n, compression, got.Count())
			}
		}
	}
}

func TestFromCentroidsEmpty(t *testing.T) {
	for _, cs := range [][]Centroid{nil, {}} {
		d, err := FromCentroids(DefaultCompression, cs, 3, 1, 7)
		if err != nil {
			t.Fatal(err)
		}
		if d.Count() != 0 || d.ReciprocalSum() != 0 || !math.IsInf(d.Min(), 1) || !math.IsInf(d.Max(), -1) {
			t.Errorf("empty: count %v rsum %v min %v max %v", d.Count(), d.ReciprocalSum(), d.Min(), d.Max())
		}
		b, _ := d.AppendBinary(nil)
		if err := new(Merging).UnmarshalBinary(b); err != nil {
			t.Errorf("the empty encoding does not decode: %v", err)
		}
	}
}

func TestFromCentroidsInvalid(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, cs := range [][]Centroid{
		{{Mean: nan, Weight: 1}},
		{{Mean: inf, Weight: 1}},
		{{Mean: 1, Weight: -inf}},
		{{Mean: 1, Weight: 0}},
		{{Mean: 1, Weight: -1}},
		{{Mean: 1, Weight: nan}},
		{{Mean: 1, Weight: inf}},
		{{Mean: 1, Weight: math.MaxFloat64}, {Mean: 2, Weight: math.MaxFloat64}},
	} {
		if _, err := FromCentroids(DefaultCompression, cs, 0, 2, 0); !errors.Is(err, ErrInvalidCentroids) {
			t.Errorf("%v: error %v, want ErrInvalidCentroids", cs, err)
		}
	}
}

// TestFromCentroidsRepairs: out of order centroids are sorted, extremes
// that do not cover the means are widened, non-finite ones replaced, a
// compression out of range clamped; the input is left alone.
func TestFromCentroidsRepairs(t *testing.T) {
	in := []Centroid{{Mean: 3, Weight: 1}, {Mean: 1, Weight: 2}, {Mean: 2, Weight: 1}}
	orig := slices.Clone(in)
	for _, tc := range []struct {
		min, max, wantMin, wantMax float64
	}{
		{0, 4, 0, 4},
		{1.5, 2.5, 1, 3},
		{math.NaN(), math.NaN(), 1, 3},
		{math.Inf(1), math.Inf(-1), 1, 3},
		{math.Inf(-1), math.Inf(1), 1, 3},
	} {
		d, err := FromCentroids(0, in, tc.min, tc.max, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Min() != tc.wantMin || d.Max() != tc.wantMax {
			t.Errorf("min %v max %v: got %v %v, want %v %v", tc.min, tc.max, d.Min(), d.Max(), tc.wantMin, tc.wantMax)
		}
		if d.Compression() != MinCompression {
			t.Errorf("compression %v, want %v", d.Compression(), MinCompression)
		}
		if !slices.IsSortedFunc(d.Centroids(), compareMean) || d.Count() != 4 || d.Sum() != 3+2+2 {
			t.Errorf("centroids %v count %v sum %v", d.Centroids(), d.Count(), d.Sum())
		}
		b, _ := d.AppendBinary(nil)
		if err := new(Merging).UnmarshalBinary(b); err != nil {
			t.Errorf("the encoding does not decode: %v", err)
		}
	}
	if !slices.Equal(in, orig) {
		t.Errorf("the input changed: %v", in)
	}
}

// TestFromCentroidsTooMany: more centroids than the compression allows are
// merged into a digest that encodes, with the same count and extremes and
// quantiles close to the input's.
func TestFromCentroidsTooMany(t *testing.T) {
	var cs []Centroid
	for i := range 5000 {
		cs = append(cs, Centroid{Mean: float64(i), Weight: 1})
	}
	d, err := FromCentroids(DefaultCompression, cs, 0, 4999, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Centroids()); n > centroidBound(DefaultCompression) {
		t.Fatalf("%d centroids, more than the bound %d", n, centroidBound(DefaultCompression))
	}
	if d.Count() != 5000 || d.Min() != 0 || d.Max() != 4999 {
		t.Errorf("count %v min %v max %v", d.Count(), d.Min(), d.Max())
	}
	for _, q := range []float64{0.01, 0.5, 0.99} {
		if got, want := d.Quantile(q), q*4999; math.Abs(got-want) > 0.01*4999 {
			t.Errorf("q%v = %v, want %v within 1%% of the range", q, got, want)
		}
	}
	b, _ := d.AppendBinary(nil)
	if err := new(Merging).UnmarshalBinary(b); err != nil {
		t.Errorf("the encoding does not decode: %v", err)
	}
}
