package otlp

import (
	"math"
	"slices"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/veneurd/veneurd/sdk"
)

// A histogram point goes into the interval's digest, Veneur's histogram, as
// weighted samples: each bucket's count as one sample of that weight, at a
// value that stands for the bucket's values.
//
//   - The value is the bucket's midpoint, arithmetic for explicit buckets,
//     geometric for exponential ones (their width grows with the value, so
//     the geometric midpoint is the one with the same relative error on
//     both sides). A bucket open on one side (the first and last explicit
//     buckets) is first closed by the point's min or max when it has them,
//     or else stands at its one finite bound.
//   - Every bucket is clamped to [min, max] when the point has them.
//   - For a delta point, min and max are the interval's (and so they are
//     for the first point of a cumulative stream that began while the
//     source was listening, or the first after a reset): one count of the
//     first bucket is written at min and one of the last at max, so the
//     digest's min and max are exact.
//   - When the point has a sum, the samples are moved within their buckets
//     (all by the same fraction of the way to their bucket's upper bound,
//     or to its lower one) until their weighted sum is the point's sum, so
//     the digest's sum and average are exact too. Values stay in their
//     buckets, so percentiles keep the buckets' resolution.
//
// The count is always exact: the weights are the counts.

// maxBuckets bounds the buckets of a point (the OpenTelemetry SDKs default
// to 160 exponential buckets, and explicit layouts have tens).
const maxBuckets = 16384

// bucket is n values in [lo, hi], written at v.
type bucket struct {
	lo, hi, v, n float64
	s            float64 // the sum of its samples, before they are moved
	geo          bool    // the geometric midpoint stands for it
}

// histPoint is what is known of a point's values besides the buckets.
type histPoint struct {
	count                  float64
	sum, min, max          float64
	hasSum, hasMin, hasMax bool
	exact                  bool // min and max are this interval's (a delta point)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func optional(p *float64) (float64, bool, bool) {
	if p == nil {
		return 0, false, true
	}
	return *p, true, finite(*p)
}

// histogram writes an explicit-bucket histogram point.
func (c *converter) histogram(p *metricspb.HistogramDataPoint, cumulative bool) {
	var hp histPoint
	var okSum, okMin, okMax bool
	hp.sum, hp.hasSum, okSum = optional(p.Sum)
	hp.min, hp.hasMin, okMin = optional(p.Min)
	hp.max, hp.hasMax, okMax = optional(p.Max)
	counts, bounds := p.BucketCounts, p.ExplicitBounds
	if !okSum || !okMin || !okMax || !validBuckets(counts, bounds, p.Count) {
		c.reject(string(c.name), ReasonBadHistogram, 1)
		return
	}
	if len(counts) == 0 { // no buckets: one, holding every value
		c.deltas2 = append(c.deltas2[:0], p.Count)
		counts = c.deltas2
	}
	tags := c.tags.point(p.Attributes)
	count := p.Count
	if cumulative {
		st, sh, fresh := c.stream(streamHistogram, tags)
		if st == nil {
			return
		}
		hs := st.hist
		if hs == nil {
			hs = &histState{}
			st.hist = hs
		}
		m := c.advance(st, fresh, p.StartTimeUnixNano, p.TimeUnixNano)
		if m == modeDiff && !slices.Equal(hs.bounds, bounds) {
			m = modeRemember // another layout: start again from this point
		}
		if m == modeDiff && (count < st.count || !covers(counts, hs.counts)) {
			m = modeFull // a reset
		}
		switch m {
		case modeOutOfOrder:
			sh.mu.Unlock()
			c.reject(string(c.name), ReasonOutOfOrder, 1)
			return
		case modeDiff:
			c.deltas = c.deltas[:0]
			for i, n := range counts {
				c.deltas = append(c.deltas, n-hs.counts[i])
			}
			prevSum := st.sum
			hp.hasSum = hp.hasSum && !math.IsNaN(prevSum)
			hp.sum -= prevSum
			count -= st.count
		}
		st.count = p.Count
		st.sum = math.NaN()
		if p.Sum != nil {
			st.sum = *p.Sum
		}
		hs.bounds = append(hs.bounds[:0], bounds...)
		hs.counts = append(hs.counts[:0], counts...)
		sh.mu.Unlock()
		switch m {
		case modeRemember:
			return
		case modeDiff:
			counts = c.deltas
		case modeFull:
			// All of the stream is in this point: its min and max are
			// the interval's.
			hp.exact = true
		}
	} else {
		hp.exact = true
	}
	if count == 0 {
		return
	}
	hp.count = float64(count)
	bs := c.buckets[:0]
	for i, n := range counts {
		if n == 0 {
			continue
		}
		lo, hi := math.Inf(-1), math.Inf(1)
		if i > 0 {
			lo = bounds[i-1]
		}
		if i < len(bounds) {
			hi = bounds[i]
		}
		bs = append(bs, bucket{lo: lo, hi: hi, n: float64(n)})
	}
	c.buckets = bs
	c.emitHistogram(tags, &hp)
}

// validBuckets checks an explicit layout: one more count than bounds,
// bounds finite and increasing, counts adding up to count.
func validBuckets(counts []uint64, bounds []float64, count uint64) bool {
	if len(counts) == 0 {
		return len(bounds) == 0
	}
	if len(counts) != len(bounds)+1 || len(counts) > maxBuckets {
		return false
	}
	for i, b := range bounds {
		if !finite(b) || (i > 0 && !(b > bounds[i-1])) {
			return false
		}
	}
	var total uint64
	for _, n := range counts {
		total += n
		if total < n { // overflow
			return false
		}
	}
	return total == count
}

// covers reports whether every count of a cumulative point is at least
// its last point's: if not, the stream was reset.
func covers(counts, last []uint64) bool {
	for i, n := range counts {
		if n < last[i] {
			return false
		}
	}
	return true
}

// expLower is the lower bound of exponential bucket index at scale:
// base^index, base = 2^(2^-scale).
func expLower(index int64, scale int32) float64 {
	return math.Exp2(math.Ldexp(float64(index), -int(scale)))
}

// expHistogram writes an exponential histogram point.
func (c *converter) expHistogram(p *metricspb.ExponentialHistogramDataPoint, cumulative bool) {
	var hp histPoint
	var okSum, okMin, okMax bool
	hp.sum, hp.hasSum, okSum = optional(p.Sum)
	hp.min, hp.hasMin, okMin = optional(p.Min)
	hp.max, hp.hasMax, okMax = optional(p.Max)
	pos, neg := p.GetPositive(), p.GetNegative()
	if !okSum || !okMin || !okMax || p.Scale < -10 || p.Scale > 20 ||
		!(p.ZeroThreshold >= 0) || math.IsInf(p.ZeroThreshold, 0) ||
		len(pos.GetBucketCounts())+len(neg.GetBucketCounts()) > maxBuckets ||
		!expTotal(p) {
		c.reject(string(c.name), ReasonBadHistogram, 1)
		return
	}
	tags := c.tags.point(p.Attributes)
	count, zero := p.Count, p.ZeroCount
	posOff, posCounts := int64(pos.GetOffset()), pos.GetBucketCounts()
	negOff, negCounts := int64(neg.GetOffset()), neg.GetBucketCounts()
	if cumulative {
		st, sh, fresh := c.stream(streamExpHistogram, tags)
		if st == nil {
			return
		}
		hs := st.hist
		if hs == nil {
			hs = &histState{}
			st.hist = hs
		}
		m := c.advance(st, fresh, p.StartTimeUnixNano, p.TimeUnixNano)
		if m == modeDiff && (p.Scale > hs.scale || count < st.count || zero < hs.zero) {
			m = modeFull // a cumulative histogram only ever loses resolution
		}
		var okPos, okNeg bool
		if m == modeDiff {
			c.deltas, okPos = expDelta(c.deltas[:0], posOff, posCounts, int64(hs.posOff), hs.pos, hs.scale-p.Scale)
			c.deltas2, okNeg = expDelta(c.deltas2[:0], negOff, negCounts, int64(hs.negOff), hs.neg, hs.scale-p.Scale)
			if !okPos || !okNeg {
				m = modeFull
			}
		}
		switch m {
		case modeOutOfOrder:
			sh.mu.Unlock()
			c.reject(string(c.name), ReasonOutOfOrder, 1)
			return
		case modeDiff:
			prevSum := st.sum
			hp.hasSum = hp.hasSum && !math.IsNaN(prevSum)
			hp.sum -= prevSum
			count -= st.count
			zero -= hs.zero
			posCounts, negCounts = c.deltas, c.deltas2
		}
		st.count = p.Count
		st.sum = math.NaN()
		if p.Sum != nil {
			st.sum = *p.Sum
		}
		hs.scale, hs.zero = p.Scale, p.ZeroCount
		hs.posOff, hs.pos = pos.GetOffset(), append(hs.pos[:0], pos.GetBucketCounts()...)
		hs.negOff, hs.neg = neg.GetOffset(), append(hs.neg[:0], neg.GetBucketCounts()...)
		sh.mu.Unlock()
		if m == modeRemember {
			return
		}
		hp.exact = m == modeFull
	} else {
		hp.exact = true
	}
	if count == 0 {
		return
	}
	hp.count = float64(count)
	bs := c.buckets[:0]
	// In increasing order of value: the negative buckets from the highest
	// index down, the zero bucket, the positive ones.
	for k := len(negCounts) - 1; k >= 0; k-- {
		if n := negCounts[k]; n > 0 {
			i := negOff + int64(k)
			bs = append(bs, bucket{lo: -expLower(i+1, p.Scale), hi: -expLower(i, p.Scale), n: float64(n), geo: true})
		}
	}
	if zero > 0 {
		bs = append(bs, bucket{lo: -p.ZeroThreshold, hi: p.ZeroThreshold, n: float64(zero)})
	}
	for k, n := range posCounts {
		if n > 0 {
			i := posOff + int64(k)
			bs = append(bs, bucket{lo: expLower(i, p.Scale), hi: expLower(i+1, p.Scale), n: float64(n), geo: true})
		}
	}
	c.buckets = bs
	c.emitHistogram(tags, &hp)
}

// expTotal checks that an exponential point's buckets add up to its count.
func expTotal(p *metricspb.ExponentialHistogramDataPoint) bool {
	total := p.ZeroCount
	for _, b := range [2]*metricspb.ExponentialHistogramDataPoint_Buckets{p.GetPositive(), p.GetNegative()} {
		for _, n := range b.GetBucketCounts() {
			total += n
			if total < n {
				return false
			}
		}
	}
	return total == p.Count
}

// expDelta appends to out the buckets of (off, counts) less those of the
// last point (lastOff, last), which had shift more scale: it is brought
// down to the new scale first (2^shift of its buckets make one). ok is
// false if a bucket lost counts: the stream was reset.
func expDelta(out []uint64, off int64, counts []uint64, lastOff int64, last []uint64, shift int32) ([]uint64, bool) {
	out = append(out, counts...)
	for k, n := range last {
		if n == 0 {
			continue
		}
		i := (lastOff+int64(k))>>shift - off
		if i < 0 || i >= int64(len(out)) || out[i] < n {
			return out, false
		}
		out[i] -= n
	}
	return out, true
}

// emitHistogram writes c.buckets as weighted samples (see the top of this
// file).
func (c *converter) emitHistogram(tags []byte, hp *histPoint) {
	bs := c.buckets
	defer func() {
		if cap(c.buckets) > 4096 { // a rare huge point: let its memory go
			c.buckets = nil
		}
	}()
	for i := range bs {
		b := &bs[i]
		lo, hi := b.lo, b.hi
		if hp.hasMin && hp.min > lo && hp.min <= hi {
			lo = hp.min
		}
		if hp.hasMax && hp.max < hi && hp.max >= lo {
			hi = hp.max
		}
		switch {
		case math.IsInf(lo, -1) && math.IsInf(hi, 1):
			lo, hi = 0, 0
			if hp.hasSum {
				lo = hp.sum / hp.count
				hi = lo
			}
		case math.IsInf(lo, -1):
			lo = hi
		case math.IsInf(hi, 1):
			hi = lo
		}
		b.lo, b.hi = lo, hi
		switch {
		case b.geo && lo > 0:
			b.v = math.Sqrt(lo) * math.Sqrt(hi)
		case b.geo && hi < 0:
			b.v = -math.Sqrt(-lo) * math.Sqrt(-hi)
		default:
			b.v = lo + (hi-lo)/2
		}
	}
	// The interval's min and max, each as a sample of its own.
	var fixed [2]float64
	nfixed := 0
	if hp.exact && len(bs) > 0 {
		if hp.hasMin {
			fixed[nfixed] = hp.min
			nfixed++
			bs[0].n--
		}
		if last := len(bs) - 1; hp.hasMax && hp.count > float64(nfixed) && bs[last].n >= 1 {
			fixed[nfixed] = hp.max
			nfixed++
			bs[last].n--
		}
	}
	for i := range bs {
		b := &bs[i]
		if b.n > 0 && !(finite(b.lo) && finite(b.hi) && finite(b.v)) {
			c.reject(string(c.name), ReasonBadHistogram, 1)
			return
		}
		b.s = 0
		for j := range b.samples() {
			v, w := b.sample(j)
			b.s += v * w
		}
	}
	var shift float64
	if hp.hasSum {
		shift = matchSum(bs, hp.sum-fixed[0]-fixed[1])
	}
	for _, v := range fixed[:nfixed] {
		c.w.Metric(sdk.Histogram, sdk.ScopeDefault, c.name, tags, v, 1)
	}
	for _, b := range bs {
		for j := range b.samples() {
			v, w := b.sample(j)
			c.weighted(tags, moved(v, b.lo, b.hi, shift), w)
		}
	}
}

// spreadSamples is how many samples an explicit bucket is written as:
// evenly spread over it, so that the digest's percentiles interpolate
// within the bucket (as Prometheus's histogram_quantile does) rather than
// between the midpoints of neighbouring buckets, which may be far apart.
// Exponential buckets are narrow enough as one sample.
const spreadSamples = 4

// samples is how many samples b is written as.
func (b *bucket) samples() int {
	if b.n <= 0 {
		return 0
	}
	if b.geo || !(b.hi > b.lo) {
		return 1
	}
	return int(min(b.n, spreadSamples))
}

// sample returns the value and weight of b's sample j: m samples evenly
// spread over the bucket weigh n/m each, the remainder on the first ones.
func (b *bucket) sample(j int) (v, w float64) {
	m := float64(b.samples())
	if m == 1 {
		return b.v, b.n
	}
	w = math.Floor(b.n / m)
	if float64(j) < math.Mod(b.n, m) {
		w++
	}
	return b.lo + (float64(j)+0.5)/m*(b.hi-b.lo), w
}

// moved is v, in [lo, hi], moved by the fraction t of the way to hi (t > 0)
// or to lo (t < 0).
func moved(v, lo, hi, t float64) float64 {
	if t > 0 {
		return v + t*(hi-v)
	}
	return v + t*(v-lo)
}

// matchSum returns how far (see moved) the samples must move within their
// buckets for their weighted sum to be sum, as far as the buckets allow.
func matchSum(bs []bucket, sum float64) float64 {
	var have float64
	for _, b := range bs {
		have += b.s
	}
	d := sum - have
	if d == 0 || !finite(d) {
		return 0
	}
	var room float64 // how far the sum can move that way
	for _, b := range bs {
		if d > 0 {
			room += b.n*b.hi - b.s
		} else {
			room += b.s - b.n*b.lo
		}
	}
	if !(room > 0) || !finite(room) {
		return 0
	}
	return math.Copysign(math.Min(1, math.Abs(d)/room), d)
}

// weighted writes value v with weight n, a whole number: as a sample of
// rate 1/n, which the digest weighs 1/rate. About one whole number in seven
// is not 1/r for any floating-point r (49 is not): such a weight is split,
// a power of two (always exact) at a time, so that the digest's count stays
// a whole number.
func (c *converter) weighted(tags []byte, v, n float64) {
	for n > 0 {
		if r, ok := rateFor(n); ok {
			c.w.Metric(sdk.Histogram, sdk.ScopeDefault, c.name, tags, v, r)
			return
		}
		_, e := math.Frexp(n)
		p := math.Ldexp(1, e-1) // the largest power of two <= n
		c.w.Metric(sdk.Histogram, sdk.ScopeDefault, c.name, tags, v, 1/p)
		n -= p
	}
}

// rateFor returns a rate r with 1/r == n exactly, if there is one near 1/n.
func rateFor(n float64) (float64, bool) {
	r := 1 / n
	if 1/r == n {
		return r, true
	}
	for _, x := range [2]float64{math.Nextafter(r, 0), math.Nextafter(r, 1)} {
		if 1/x == n {
			return x, true
		}
	}
	return r, false
}
