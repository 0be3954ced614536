package otlp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// sdkBounds are the OpenTelemetry SDKs' default explicit bounds.
var sdkBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// sdkScale is the scale an OpenTelemetry SDK's exponential histogram of
// at most 160 buckets settles at for values in [lo, hi].
func sdkScale(lo, hi float64) int32 {
	for s := int32(20); s > -10; s-- {
		if math.Ceil(math.Log2(hi)*math.Ldexp(1, int(s)))-math.Floor(math.Log2(lo)*math.Ldexp(1, int(s))) < 160 {
			return s
		}
	}
	return -10
}

var testQuantiles = []float64{0.5, 0.75, 0.9, 0.99, 0.999}

// TestPercentileError measures how far the digest's percentiles of a
// histogram point are from the exact percentiles of the samples the client
// recorded, for the SDKs' default explicit buckets and for an exponential
// histogram of 160 buckets, and checks the bound the README states: the
// estimate lies in the bucket holding the exact percentile or in one of its
// two neighbours (the digest interpolates between the samples that stand
// for neighbouring buckets).
func TestPercentileError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := []struct {
		name string
		f    func() float64
	}{
		{"uniform(0,1000)", func() float64 { return 1 + r.Float64()*999 }},
		{"exponential(mean 100)", func() float64 { return 0.01 + r.ExpFloat64()*100 }},
		{"lognormal(4,1)", func() float64 { return math.Exp(4 + r.NormFloat64()) }},
		{"bimodal(20,800)", func() float64 {
			if r.IntN(10) < 7 {
				return 20 + 3*r.NormFloat64()
			}
			return 800 + 50*r.NormFloat64()
		}},
	}
	var table strings.Builder
	for _, d := range dists {
		samples := make([]float64, 10000)
		for i := range samples {
			samples[i] = max(d.f(), 0.001)
		}
		sorted := slices.Sorted(slices.Values(samples))

		h := newHarness(t)
		got, _, _ := h.export(request(nil, histogram("h", deltaT, explicitPoint(samples, sdkBounds))))
		explicit := digestOf(got, "h")
		scale := sdkScale(sorted[0], sorted[len(sorted)-1])
		got, _, _ = h.export(request(nil, expHistogram("e", deltaT, exponentialPoint(samples, scale))))
		exponential := digestOf(got, "e")

		check := func(kind string, est, exact float64, index func(float64) int64, lower func(int64) float64) {
			if lo, hi := bucketBound(sorted, exact, index, lower); est < lo || est > hi {
				t.Errorf("%s %s: %g, exact %g: outside the exact percentile's bucket and its non-empty neighbours [%g, %g]", d.name, kind, est, exact, lo, hi)
			}
		}
		var total float64
		for _, v := range samples {
			total += v
		}
		for name, dg := range map[string]interface{ Sum() float64 }{"explicit": explicit, "exponential": exponential} {
			if math.Abs(dg.Sum()-total) > 1e-9*total {
				t.Errorf("%s %s: sum %g, want %g", d.name, name, dg.Sum(), total)
			}
		}
		fmt.Fprintf(&table, "\n%-22s explicit:   ", d.name)
		for _, q := range testQuantiles {
			exact, est := exactQuantile(sorted, q), explicit.Quantile(q)
			fmt.Fprintf(&table, " p%g %+6.1f%%", q*100, 100*(est-exact)/exact)
			check(fmt.Sprintf("explicit p%g", q*100), est, exact, explicitIndex(sdkBounds), explicitLower(sdkBounds))
		}
		fmt.Fprintf(&table, "\n%-22s exp. (s=%d):", d.name, scale)
		for _, q := range testQuantiles {
			exact, est := exactQuantile(sorted, q), exponential.Quantile(q)
			fmt.Fprintf(&table, " p%g %+6.1f%%", q*100, 100*(est-exact)/exact)
			check(fmt.Sprintf("exponential p%g", q*100), est, exact,
				func(v float64) int64 { return expIndex(v, scale) }, func(i int64) float64 { return expLower(i, scale) })
		}
	}
	t.Logf("percentile error (estimate - exact) / exact, 10,000 samples:%s", table.String())
}

// bucketBound is the bound a percentile estimate keeps: between the lower
// bound of the non-empty bucket before the one holding the exact percentile
// and the upper bound of the non-empty bucket after it, and within the
// samples' [min, max]. The digest interpolates between the samples that
// stand for neighbouring buckets. index maps a value to its bucket, lower
// a bucket to its lower bound.
func bucketBound(sorted []float64, exact float64, index func(float64) int64, lower func(int64) float64) (lo, hi float64) {
	i := index(exact)
	prev, next := i, i
	for _, v := range sorted {
		if j := index(v); j < i && (prev == i || j > prev) {
			prev = j
		} else if j > i && (next == i || j < next) {
			next = j
		}
	}
	return max(lower(prev), sorted[0]), min(lower(next+1), sorted[len(sorted)-1])
}

// explicitIndex and explicitLower describe explicit buckets: bucket i
// holds (bounds[i-1], bounds[i]].
func explicitIndex(bounds []float64) func(float64) int64 {
	return func(v float64) int64 { i, _ := slices.BinarySearch(bounds, v); return int64(i) }
}

func explicitLower(bounds []float64) func(int64) float64 {
	return func(i int64) float64 {
		if i <= 0 {
			return math.Inf(-1)
		}
		if i > int64(len(bounds)) {
			return math.Inf(1)
		}
		return bounds[i-1]
	}
}
