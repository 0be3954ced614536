package aggregate

import (
	"hash/maphash"
	"slices"
	"strings"
)

// A flush estimates how many series each name has, for the status's top
// names, in fixed memory: a count-min sketch of the names, and the few
// names whose estimate is highest so far. A flush of a million series of a
// million names costs a hash and four counter increments per series, and
// allocates nothing but the candidates; a map of names would cost that
// flush a million entries. An estimate may count a colliding name's series
// too: with cmsWidth counters a row, by about e·series/cmsWidth at worst
// (80 per million series), and by the least of four rows.
const (
	cmsDepth = 4
	cmsWidth = 1 << 15
	// topCandidates is how many names each flush worker keeps as
	// candidates for the top TopNames.
	topCandidates = 4 * TopNames
)

var nameSeed = maphash.MakeSeed()

// nameCounter is one flush worker's sketch and candidates.
type nameCounter struct {
	rows   [cmsDepth][cmsWidth]uint32
	top    []NameCount // the candidates, unordered
	min    uint64      // the least estimate among top, once it is full
	series uint64
}

func (c *nameCounter) reset() {
	clear(c.rows[:])
	c.top, c.min, c.series = c.top[:0], 0, 0
}

// nameCells returns the counter of each row for name.
func nameCells(name string) [cmsDepth]uint32 {
	h := maphash.String(nameSeed, name)
	var idx [cmsDepth]uint32
	for d := range cmsDepth {
		idx[d] = uint32(h>>(16*d)) & (cmsWidth - 1)
	}
	return idx
}

// add counts a series of name.
func (c *nameCounter) add(name string) {
	c.series++
	idx := nameCells(name)
	est := uint32(1<<32 - 1)
	for d := range cmsDepth {
		c.rows[d][idx[d]]++
		est = min(est, c.rows[d][idx[d]])
	}
	if len(c.top) == topCandidates && uint64(est) <= c.min {
		return
	}
	c.offer(name, uint64(est))
}

// offer makes name a candidate with estimate est, in place of the least
// one when there are enough.
func (c *nameCounter) offer(name string, est uint64) {
	least := -1
	for i := range c.top {
		if c.top[i].Name == name {
			c.top[i].Series = est
			c.updateMin()
			return
		}
		if least < 0 || c.top[i].Series < c.top[least].Series {
			least = i
		}
	}
	nc := NameCount{Name: strings.Clone(name), Series: est} // the name is a slice of a series' key
	if len(c.top) < topCandidates {
		c.top = append(c.top, nc)
	} else {
		c.top[least] = nc
	}
	c.updateMin()
}

func (c *nameCounter) updateMin() {
	if len(c.top) < topCandidates {
		return
	}
	c.min = c.top[0].Series
	for _, t := range c.top[1:] {
		c.min = min(c.min, t.Series)
	}
}

// estimate is name's estimate in a sketch.
func (c *nameCounter) estimate(name string) uint64 {
	idx := nameCells(name)
	est := uint32(1<<32 - 1)
	for d := range cmsDepth {
		est = min(est, c.rows[d][idx[d]])
	}
	return uint64(est)
}

// mergeNames sums the workers' sketches into the first and returns the
// TopNames names of most series among every worker's candidates, most
// first (ties by name), and the series counted.
func mergeNames(cs []*nameCounter) ([]NameCount, uint64) {
	all := cs[0]
	for _, c := range cs[1:] {
		for d := range cmsDepth {
			for i, n := range c.rows[d] {
				all.rows[d][i] += n
			}
		}
		all.series += c.series
	}
	var top []NameCount
	for _, c := range cs {
		for _, t := range c.top {
			if !slices.ContainsFunc(top, func(o NameCount) bool { return o.Name == t.Name }) {
				top = append(top, NameCount{Name: t.Name, Series: all.estimate(t.Name)})
			}
		}
	}
	slices.SortFunc(top, func(a, b NameCount) int {
		if a.Series != b.Series {
			if a.Series > b.Series {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return top[:min(len(top), TopNames)], all.series
}
