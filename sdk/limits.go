package sdk

import (
	"sync"
	"sync/atomic"

	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Series limits travel to every source process in its RunRequest, like drop
// rules, and are enforced where series are made: a flood of new names or
// tag values costs the source a lookup per sample, never memory. The limits
// count the series of an interval, which outlive the early cuts that empty
// the source's table within it, so the limiter remembers each series it
// admitted by a hash of its identity until the cut that ends the interval.

// maxLimitedNames is how many names that hit a limit a source reports per
// interval: enough to find who blew up the series count, bounded for a
// flood of unique names.
const maxLimitedNames = 10

// limiter admits the series of an interval up to its limits.
type limiter struct {
	maxSeries, maxPerName int

	mu      sync.Mutex
	series  map[uint64]struct{} // admitted this interval, by identity hash
	perName map[string]int      // series admitted this interval, by name
	hit     map[string]struct{} // names that hit a limit this interval
	fresh   []string            // of hit, those not yet reported

	limited atomic.Uint64 // samples refused since the last report
}

// newLimiter returns a limiter for l, nil when l limits nothing.
func newLimiter(l *pb.Limits) *limiter {
	if l == nil || (l.MaxSeries == 0 && l.MaxSeriesPerName == 0) {
		return nil
	}
	return &limiter{
		maxSeries: int(l.MaxSeries), maxPerName: int(l.MaxSeriesPerName),
		series: map[uint64]struct{}{}, perName: map[string]int{}, hit: map[string]struct{}{},
	}
}

// admit reports whether a sample of the series hashed h, of name, may make
// it: it may if the series was admitted this interval, or if admitting it
// keeps within the limits. It allocates only for a series admitted (its
// name's first) and a name's first refusal.
func (l *limiter) admit(h uint64, name []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.series[h]; ok {
		return true
	}
	full := l.maxSeries > 0 && len(l.series) >= l.maxSeries
	n := l.perName[string(name)]
	if !full && (l.maxPerName == 0 || n < l.maxPerName) {
		l.series[h] = struct{}{}
		if l.maxPerName > 0 {
			l.perName[string(name)] = n + 1
		}
		return true
	}
	l.limited.Add(1)
	if len(l.hit) < maxLimitedNames {
		if _, ok := l.hit[string(name)]; !ok {
			l.hit[string(name)] = struct{}{}
			l.fresh = append(l.fresh, string(name))
		}
	}
	return false
}

// report moves the counts since the last report into b.
func (l *limiter) report(b *pb.Batch) {
	b.SeriesLimited = l.limited.Swap(0)
	l.mu.Lock()
	b.LimitedNames, l.fresh = l.fresh, nil
	l.mu.Unlock()
}

// endInterval counts anew: the interval's series have been handed over.
func (l *limiter) endInterval() {
	l.mu.Lock()
	clear(l.series)
	clear(l.perName)
	clear(l.hit)
	l.mu.Unlock()
}
