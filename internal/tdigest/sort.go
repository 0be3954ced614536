package tdigest

import "math/bits"

// sortByMean sorts cs by ascending mean. It is an introsort specialised to
// Centroid (a generic sort with a comparison function costs about three
// times as much on the Add path). It is deterministic but not stable; equal
// means may be reordered, always the same way for the same input.
func sortByMean(cs []Centroid) {
	quickSort(cs, 2*bits.Len(uint(len(cs))), false, 0)
}

// quickSort sorts cs. If hasPred, pred is a mean that precedes cs in the
// final order, so it is <= every mean in cs.
func quickSort(cs []Centroid, depth int, hasPred bool, pred float64) {
	for len(cs) > 12 {
		if depth == 0 {
			heapSort(cs)
			return
		}
		depth--
		medianToFront(cs)
		if hasPred && !(pred < cs[0].Mean) {
			// The pivot equals its predecessor, so every mean <= pivot
			// equals it and is already in place. This keeps runs of equal
			// values (common for integer-valued metrics) linear.
			cs = cs[partitionLE(cs):]
			continue
		}
		p := partitionLT(cs)
		pivot := cs[p].Mean
		// Recurse into the smaller side to bound the stack depth.
		if p < len(cs)-p {
			quickSort(cs[:p], depth, hasPred, pred)
			cs = cs[p+1:]
			hasPred, pred = true, pivot
		} else {
			quickSort(cs[p+1:], depth, true, pivot)
			cs = cs[:p]
		}
	}
	insertionSort(cs)
}

// medianToFront moves the median of the first, middle and last means to
// cs[0].
func medianToFront(cs []Centroid) {
	n := len(cs)
	a, b, c := 1, n/2, n-1
	if cs[b].Mean < cs[a].Mean {
		a, b = b, a
	}
	if cs[c].Mean < cs[b].Mean {
		b = c
		if cs[b].Mean < cs[a].Mean {
			b = a
		}
	}
	cs[0], cs[b] = cs[b], cs[0]
}

// partitionLT partitions cs around the pivot cs[0]: afterwards the pivot is
// at the returned index p, means in cs[:p] are < pivot and means in cs[p+1:]
// are >= pivot. The loop is branch-free (a cyclic Lomuto partition), which
// matters because the comparisons on random data are unpredictable.
func partitionLT(cs []Centroid) int {
	pivot := cs[0].Mean
	store := 1
	for i := 1; i < len(cs); i++ {
		x := cs[i]
		cs[i] = cs[store]
		cs[store] = x
		store += b2i(x.Mean < pivot)
	}
	p := store - 1
	cs[0], cs[p] = cs[p], cs[0]
	return p
}

// partitionLE moves the means <= the pivot cs[0] to the front and returns
// their count (at least 1).
func partitionLE(cs []Centroid) int {
	pivot := cs[0].Mean
	store := 1
	for i := 1; i < len(cs); i++ {
		x := cs[i]
		cs[i] = cs[store]
		cs[store] = x
		store += b2i(!(pivot < x.Mean))
	}
	return store
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func insertionSort(cs []Centroid) {
	for i := 1; i < len(cs); i++ {
		x := cs[i]
		j := i
		for ; j > 0 && cs[j-1].Mean > x.Mean; j-- {
			cs[j] = cs[j-1]
		}
		cs[j] = x
	}
}

func heapSort(cs []Centroid) {
	n := len(cs)
	for i := n/2 - 1; i >= 0; i-- {
		siftDown(cs, i, n)
	}
	for end := n - 1; end > 0; end-- {
		cs[0], cs[end] = cs[end], cs[0]
		siftDown(cs, 0, end)
	}
}

func siftDown(cs []Centroid, root, n int) {
	for {
		child := 2*root + 1
		if child >= n {
			return
		}
		if child+1 < n && cs[child].Mean < cs[child+1].Mean {
			child++
		}
		if !(cs[root].Mean < cs[child].Mean) {
			return
		}
		cs[root], cs[child] = cs[child], cs[root]
		root = child
	}
}
