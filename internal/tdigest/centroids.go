package tdigest

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrInvalidCentroids is wrapped by the errors of FromCentroids.
var ErrInvalidCentroids = errors.New("tdigest: invalid centroids")

// FromCentroids returns a digest holding the centroids cs, the state that
// another merging t-digest describes by its centroids, minimum, maximum and
// reciprocal sum (Veneur's MergingDigestData): it is the inverse of
// Centroids, Min, Max and ReciprocalSum. Its count is the centroids' total
// weight and its sum their sum of mean*weight, as such a digest defines
// them; its compression is clamped as New clamps it.
//
// Every centroid's mean must be finite and its weight positive and finite,
// and the total weight finite; otherwise the error wraps
// ErrInvalidCentroids. Centroids out of order are sorted. min and max are
// widened to the extreme means, which another implementation's rounding may
// put a little outside them, and replaced by those means when not finite.
// No centroid is an empty digest, whatever min, max and reciprocalSum are.
//
// The centroids are kept as they are, unless there are more than the
// compression allows a digest to hold (another implementation's scale
// differs from this one's); they are then merged, in the one compression
// pass a digest runs on its buffered points. cs is not modified.
func FromCentroids(compression float64, cs []Centroid, min, max, reciprocalSum float64) (*Merging, error) {
	d := New(compression)
	if len(cs) == 0 {
		return d, nil
	}
	total := 0.0
	for i, c := range cs {
		if math.IsNaN(c.Mean) || math.IsInf(c.Mean, 0) {
			return nil, invalidCentroids("centroid %d: mean %v", i, c.Mean)
		}
		if !(c.Weight > 0) || math.IsInf(c.Weight, 1) {
			return nil, invalidCentroids("centroid %d: weight %v", i, c.Weight)
		}
		total += c.Weight
	}
	if math.IsInf(total, 1) {
		return nil, invalidCentroids("total weight overflows")
	}
	own := slices.Clone(cs)
	if !slices.IsSortedFunc(own, compareMean) {
		slices.SortStableFunc(own, compareMean)
	}
	lo, hi := own[0].Mean, own[len(own)-1].Mean
	if min < lo && !math.IsInf(min, -1) { // NaN fails the comparison
		lo = min
	}
	if max > hi && !math.IsInf(max, 1) {
		hi = max
	}
	sum := 0.0
	for _, c := range own {
		sum += c.Mean * c.Weight
	}
	d.min, d.max = lo, hi
	d.sum = sum
	d.reciprocalSum = reciprocalSum
	d.cs = own
	if len(own) > centroidBound(d.compression) {
		d.bufWeight = total
		d.flush()
		d.cs = slices.Clone(d.cs) // its storage then grows as a new digest's does
		return d, nil
	}
	d.nMain = len(own)
	d.mainWeight = total
	return d, nil
}

func invalidCentroids(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidCentroids}, args...)...)
}
