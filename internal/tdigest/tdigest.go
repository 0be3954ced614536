// Package tdigest implements the merging t-digest of Dunning and Ertl
// ("Computing Extremely Accurate Quantiles Using t-Digests"), in the manner
// of the MergingDigest of the reference Java implementation.
//
// It is not Stripe's Veneur's port, and its quantiles may differ from Veneur's
// for the same samples. What it shares with Veneur is the k1 (arcsine) scale
// function, exact minimum and maximum, and the reciprocal sum behind
// Veneur's harmonic mean. Unlike Veneur's port it keeps one buffer rather
// than separate merged and unmerged lists, keeps the first and last
// centroids singletons, interpolates a quantile between centroid centres
// (Veneur spreads each centroid uniformly between the midpoints to its
// neighbours), tracks the sum exactly (Veneur sums the centroids), merges
// digests deterministically (Veneur re-adds the other digest's centroids in
// a random order), ignores NaN and infinite values (Veneur panics), and has
// its own binary encoding.
//
// A digest keeps a short sorted list of weighted centroids plus a buffer of
// points that have not been merged into that list yet. When the buffer is
// full, or when the digest is read, buffer and centroids are sorted together
// and compressed in one left-to-right pass. The pass closes a centroid when
// it would otherwise span more than one unit of the k1 (arcsine) scale
// function, so centroids are small near the tails and larger near the
// median. Count, sum, reciprocal sum, minimum and maximum are tracked exactly
// alongside the centroids.
//
// A digest of compression 100 (the daemon's default) holds at most a few
// hundred centroids; its state can be forwarded to another tier with
// AppendBinary and UnmarshalBinary and combined there with Merge.
package tdigest

import (
	"math"
	"slices"
)

const (
	// DefaultCompression is the compression used by the daemon.
	DefaultCompression = 100

	// MinCompression and MaxCompression bound the compression parameter.
	// New clamps its argument into this range and UnmarshalBinary rejects
	// encodings outside it.
	MinCompression = 10
	MaxCompression = 10000

	// bufferFactor sizes the storage of a digest (merged centroids plus
	// unmerged points) as a multiple of the compression. At compression 100
	// this is 500 entries (8000 bytes), of which the merged centroids take
	// at most centroidBound (204) and typically about 125.
	bufferFactor = 5

	// initialCap is the capacity allocated by the first Add.
	initialCap = 8
)

// Centroid is a cluster of nearby samples summarised by their weighted mean
// and total weight.
type Centroid struct {
	Mean   float64
	Weight float64
}

// Merging is a merging t-digest. Not safe for concurrent use: every method,
// including the read-only looking Quantile, Centroids and AppendBinary, may
// reorganise internal state. The zero value is not usable; use New (a zero
// value is only a valid target for UnmarshalBinary).
type Merging struct {
	compression float64
	// The k1 scale function is k(q) = kScale*asin(2q-1) with
	// kScale = compression/pi, so k spans [-compression/2, compression/2].
	// cosH and sinH are cos(1/kScale) and sin(1/kScale).
	cosH, sinH float64
	// maxCap is the capacity at which cs stops growing and the buffered
	// points are merged instead.
	maxCap int

	// cs[:nMain] are the merged centroids, sorted by mean.
	// cs[nMain:] are the buffered, unmerged points in arrival order.
	cs    []Centroid
	nMain int

	mainWeight float64 // total weight of cs[:nMain]
	bufWeight  float64 // total weight of cs[nMain:]

	min, max      float64
	sum           float64
	reciprocalSum float64
}

// New returns an empty digest with the given compression. Larger values keep
// more centroids and give more accurate quantiles; DefaultCompression (100)
// is the daemon's default. Values are clamped to [MinCompression,
// MaxCompression]; NaN selects DefaultCompression. New allocates no centroid
// storage: it grows on demand up to 5*compression entries of 16 bytes
// (8000 bytes at compression 100) and is then reused for the life of the
// digest, including across Reset.
func New(compression float64) *Merging {
	d := &Merging{}
	d.init(clampCompression(compression))
	d.Reset()
	return d
}

func clampCompression(c float64) float64 {
	switch {
	case math.IsNaN(c):
		return DefaultCompression
	case c < MinCompression:
		return MinCompression
	case c > MaxCompression:
		return MaxCompression
	}
	return c
}

// init sets the parameters derived from the compression.
func (d *Merging) init(compression float64) {
	d.compression = compression
	h := math.Pi / compression
	d.cosH, d.sinH = math.Cos(h), math.Sin(h)
	d.maxCap = maxCapFor(compression)
}

// maxCapFor returns the full storage size of a digest. For any compression >=
// MinCompression it leaves room for at least compression unmerged points
// after a merge.
func maxCapFor(compression float64) int {
	return int(math.Ceil(bufferFactor * compression))
}

// centroidBound is an upper bound on the number of merged centroids. Of two
// adjacent centroids, the first plus the first point of the second spans more
// than one unit of k, and k spans compression units in total; the first and
// last centroid are always singletons.
func centroidBound(compression float64) int {
	return 2*int(math.Ceil(compression)) + 4
}

// Add adds value with the given weight, which must be positive and finite
// (the daemon passes 1/sampleRate). Values that are NaN or infinite, and
// weights that are not positive and finite, are ignored. Once the internal
// buffer has reached its full size Add does not allocate.
func (d *Merging) Add(value, weight float64) {
	if math.IsNaN(value) || math.IsInf(value, 0) || !(weight > 0) || math.IsInf(weight, 1) {
		return
	}
	if len(d.cs) == cap(d.cs) {
		d.makeRoom()
	}
	d.cs = append(d.cs, Centroid{Mean: value, Weight: weight})
	d.bufWeight += weight
	if value < d.min {
		d.min = value
	}
	if value > d.max {
		d.max = value
	}
	d.sum += value * weight
	d.reciprocalSum += (1 / value) * weight
}

// Pending returns the weight of the points added since the last merge and
// reads the slot the next Add writes, so that a caller adding to many
// digests can bring each one's memory into the cache ahead of time.
func (d *Merging) Pending() float64 {
	if n := len(d.cs); n < cap(d.cs) {
		return d.bufWeight + d.cs[:n+1][n].Weight
	}
	return d.bufWeight
}

// makeRoom ensures len(d.cs) < cap(d.cs), growing the buffer while it is below
// its full size and merging the buffered points once it has reached it.
func (d *Merging) makeRoom() {
	if c := cap(d.cs); c < d.maxCap {
		d.grow(min(max(2*c, initialCap), d.maxCap))
		return
	}
	d.flush()
	if len(d.cs) == cap(d.cs) {
		// Unreachable while centroidBound holds; kept as a safety net.
		d.grow(2 * cap(d.cs))
	}
}

func (d *Merging) grow(n int) {
	cs := make([]Centroid, len(d.cs), n)
	copy(cs, d.cs)
	d.cs = cs
}

// Merge adds the contents of other to d: its centroids and unmerged points,
// as well as its exact count, sum, reciprocal sum, minimum and maximum. other
// is not modified; d and other may be the same digest. The compression of d
// is kept.
//
// Merge is deterministic: the same sequence of calls gives bit-identical
// results. Note that the result depends on whether other's buffered points
// have been merged yet, which reading other (Quantile, Centroids,
// AppendBinary) does; merging a digest and merging its decoded encoding give
// identical results.
func (d *Merging) Merge(other *Merging) {
	if other == nil || other.Count() == 0 {
		return
	}
	if other == d {
		// Doubling every weight is exactly merging a copy of d into d.
		d.flush()
		for i := range d.cs {
			d.cs[i].Weight *= 2
		}
		d.mainWeight *= 2
		d.sum *= 2
		d.reciprocalSum *= 2
		return
	}
	for _, c := range other.cs {
		if len(d.cs) == cap(d.cs) {
			d.makeRoom()
		}
		d.cs = append(d.cs, c)
		d.bufWeight += c.Weight
	}
	d.min = min(d.min, other.min)
	d.max = max(d.max, other.max)
	d.sum += other.sum
	d.reciprocalSum += other.reciprocalSum
}

func compareMean(a, b Centroid) int {
	switch {
	case a.Mean < b.Mean:
		return -1
	case a.Mean > b.Mean:
		return 1
	}
	return 0
}

// flush merges the buffered points into the centroid list.
func (d *Merging) flush() {
	n := len(d.cs)
	if n == d.nMain {
		return
	}
	cs := d.cs
	// The centroid prefix is already sorted; sorting the whole slice lets
	// the compression pass below run in place without a scratch buffer.
	sortByMean(cs)

	total := d.mainWeight + d.bufWeight
	wSoFar := 0.0 // weight of the closed centroids
	limit := total * d.qLimit(0)
	cur := cs[0]
	out := 0
	for i := 1; i < n; i++ {
		x := cs[i]
		// The first and last point always stay singletons, which keeps the
		// tails (and Min/Max interpolation) sharp.
		if i != 1 && i != n-1 && wSoFar+cur.Weight+x.Weight <= limit {
			cur.Weight += x.Weight
			m := cur.Mean + (x.Mean-cur.Mean)*x.Weight/cur.Weight
			// Rounding must not move the mean past the largest point
			// absorbed so far; this also maps NaN (from overflow) to x.
			if !(m <= x.Mean) {
				m = x.Mean
			}
			cur.Mean = m
			continue
		}
		cs[out] = cur
		out++
		wSoFar += cur.Weight
		limit = total * d.qLimit(wSoFar/total)
		cur = x
	}
	cs[out] = cur
	out++
	d.cs = cs[:out]
	d.nMain = out
	d.mainWeight = total
	d.bufWeight = 0
}

// qLimit returns the quantile one unit of k above q0, where k is the k1 scale
// function k(q) = kScale*asin(2q-1), saturating at 1. With s = 2*q0-1 and
// h = 1/kScale, this is (1 + sin(asin(s)+h))/2, expanded with the angle
// addition formula so that no trigonometric function is evaluated per
// centroid.
func (d *Merging) qLimit(q0 float64) float64 {
	s := 2*q0 - 1
	if s >= d.cosH {
		return 1
	}
	if s < -1 {
		s = -1
	}
	return (1 + s*d.cosH + math.Sqrt(1-s*s)*d.sinH) / 2
}

// Quantile returns an estimate of the q-quantile, for q in [0, 1]. Each
// centroid is placed at the midpoint of the cumulative weight it covers, Min
// at cumulative weight 0 and Max at Count; the estimate interpolates linearly
// between these points and is clamped to [Min, Max]. Quantile(0) is Min and
// Quantile(1) is Max. It returns NaN for an empty digest or q outside [0, 1].
func (d *Merging) Quantile(q float64) float64 {
	if !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	d.flush()
	n := d.nMain
	if n == 0 {
		return math.NaN()
	}
	if q == 0 {
		return d.min
	}
	if q == 1 {
		return d.max
	}
	cs := d.cs[:n]
	total := d.mainWeight
	index := q * total

	first := cs[0]
	if half := first.Weight / 2; index < half {
		return d.clamp(lerp(d.min, first.Mean, index/half))
	}
	center := first.Weight / 2 // cumulative weight at the mean of cs[i]
	for i := 0; i < n-1; i++ {
		dw := (cs[i].Weight + cs[i+1].Weight) / 2
		if index < center+dw {
			t := (index - center) / dw
			return d.clamp(lerp(cs[i].Mean, cs[i+1].Mean, t))
		}
		center += dw
	}
	last := cs[n-1]
	rest := total - center
	if !(rest > 0) {
		return d.clamp(last.Mean)
	}
	t := min((index-center)/rest, 1)
	return d.clamp(lerp(last.Mean, d.max, t))
}

// lerp is the value a fraction t in [0, 1] of the way from a to b. b-a
// overflows when a and b are finite and far apart (near -1e308 and 1e308):
// then the weighted sum, which cannot overflow, is used.
func lerp(a, b, t float64) float64 {
	if d := b - a; !math.IsInf(d, 0) {
		return a + d*t
	}
	return a*(1-t) + b*t
}

func (d *Merging) clamp(v float64) float64 {
	if v < d.min {
		return d.min
	}
	if v > d.max {
		return d.max
	}
	return v
}

// Count returns the total weight added, exactly as accumulated.
func (d *Merging) Count() float64 { return d.mainWeight + d.bufWeight }

// Sum returns the exact sum of value*weight over all added points.
func (d *Merging) Sum() float64 { return d.sum }

// Min returns the smallest value added, or +Inf for an empty digest.
func (d *Merging) Min() float64 { return d.min }

// Max returns the largest value added, or -Inf for an empty digest.
func (d *Merging) Max() float64 { return d.max }

// ReciprocalSum returns the sum of (1/value)*weight over all added points,
// as defined by Veneur; Count()/ReciprocalSum() is the harmonic mean. A zero
// value makes it infinite.
func (d *Merging) ReciprocalSum() float64 { return d.reciprocalSum }

// Compression returns the compression parameter of d.
func (d *Merging) Compression() float64 { return d.compression }

// Reset empties d while keeping its compression and allocated storage, so a
// digest can be reused across flush intervals without allocating.
func (d *Merging) Reset() {
	d.cs = d.cs[:0]
	d.nMain = 0
	d.mainWeight = 0
	d.bufWeight = 0
	d.min = math.Inf(1)
	d.max = math.Inf(-1)
	d.sum = 0
	d.reciprocalSum = 0
}

// Centroids merges any buffered points and returns a copy of the centroids,
// sorted by mean. The result is owned by the caller.
func (d *Merging) Centroids() []Centroid {
	d.flush()
	return slices.Clone(d.cs[:d.nMain])
}
