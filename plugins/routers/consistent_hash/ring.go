// Package consistenthash spreads series over the members of a tier: every
// instance that forwards a series to a tier of several members must send it
// to the same one, so that the member aggregates the whole fleet's share of
// it, and a member that joins or leaves must move as few series as possible.
//
// It uses rendezvous (highest random weight) hashing: each member's weight
// for a series is a hash of the series' key mixed with a hash of the
// member's name, and the series goes to the member of highest weight. A
// member that leaves moves only its own series, each to the member of next
// highest weight, and the ranking of the others is that fallback order: if
// a member fails while a batch is sent, each of its series goes to its next
// choice, which every other sender picks too. Membership is a plain list of
// names (addresses), which a static configuration or a discovery (Consul)
// gives; there are no virtual nodes to tune.
//
// Choosing costs one hash of the key and one mix per member: a tier of tens
// of members costs tens of nanoseconds a series, nothing allocated.
package consistenthash

import (
	"slices"

	metro "github.com/dgryski/go-metro"
)

// Ring is a set of members. It is immutable: a membership change makes a new
// Ring. Safe for concurrent use.
type Ring struct {
	names []string // sorted
	seeds []uint64 // hash of each name
}

// New returns the ring of members, in any order; duplicates count once.
func New(members []string) *Ring {
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	r := &Ring{names: names, seeds: make([]uint64, len(names))}
	for i, n := range names {
		r.seeds[i] = metro.Hash64Str(n, 0x5eed)
	}
	return r
}

// Members returns the members, sorted. The caller must not change them.
func (r *Ring) Members() []string { return r.names }

// Len is the number of members.
func (r *Ring) Len() int { return len(r.names) }

// Equal reports whether r and o have the same members.
func (r *Ring) Equal(o *Ring) bool { return slices.Equal(r.names, o.names) }

// weight is member i's weight for a key hashed to h: splitmix64's finalizer
// of the two hashes mixed, so that every bit of both decides.
func (r *Ring) weight(h uint64, i int) uint64 {
	x := h ^ r.seeds[i]
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Hash is the hash of a series key that Choose and Order take: compute it
// once per series and keep it.
func Hash(key []byte) uint64 { return metro.Hash64(key, 0) }

// Choose returns the index (in Members) of the member a series whose key
// hashes to h goes to; -1 for an empty ring.
func (r *Ring) Choose(h uint64) int {
	best, bestW := -1, uint64(0)
	for i := range r.names {
		if w := r.weight(h, i); best < 0 || w > bestW {
			best, bestW = i, w
		}
	}
	return best
}

// Order appends to dst the indexes of every member, the series' choice first
// and then its fallbacks, in the order every sender agrees on; it returns
// the extended dst.
func (r *Ring) Order(h uint64, dst []int) []int {
	start := len(dst)
	for i := range r.names {
		dst = append(dst, i)
	}
	part := dst[start:]
	slices.SortFunc(part, func(a, b int) int {
		wa, wb := r.weight(h, a), r.weight(h, b)
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return a - b
	})
	return dst
}

// ChooseAmong returns the member of highest weight among those up reports
// true for, -1 when none is: the next choice when the first has failed.
func (r *Ring) ChooseAmong(h uint64, up func(i int) bool) int {
	best, bestW := -1, uint64(0)
	for i := range r.names {
		if !up(i) {
			continue
		}
		if w := r.weight(h, i); best < 0 || w > bestW {
			best, bestW = i, w
		}
	}
	return best
}
