package tdigest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// encodingVersion is the first byte of every encoding.
const encodingVersion = 1

// headerSize is the size of the fixed part of an encoding: version byte,
// six float64 fields and the uint32 centroid count.
const headerSize = 1 + 6*8 + 4

// centroidSize is the encoded size of one centroid.
const centroidSize = 16

// ErrInvalidEncoding is wrapped by every error returned by UnmarshalBinary.
var ErrInvalidEncoding = errors.New("tdigest: invalid encoding")

// AppendBinary merges any buffered points and appends the encoding of d to b.
// The encoding is little-endian: a version byte (1), then compression, min,
// max, sum, reciprocal sum and count as float64, then the number of centroids
// as uint32, then each centroid's mean and weight as float64, in ascending
// order of mean. Its size is 53 + 16*len(Centroids()) bytes. The error is
// always nil; it exists to satisfy encoding.BinaryAppender.
func (d *Merging) AppendBinary(b []byte) ([]byte, error) {
	d.flush()
	cs := d.cs[:d.nMain]
	b = slices.Grow(b, headerSize+centroidSize*len(cs))
	b = append(b, encodingVersion)
	b = appendFloat(b, d.compression)
	b = appendFloat(b, d.min)
	b = appendFloat(b, d.max)
	b = appendFloat(b, d.sum)
	b = appendFloat(b, d.reciprocalSum)
	b = appendFloat(b, d.mainWeight)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(cs)))
	for _, c := range cs {
		b = appendFloat(b, c.Mean)
		b = appendFloat(b, c.Weight)
	}
	return b, nil
}

// MarshalBinary returns the encoding described at AppendBinary.
func (d *Merging) MarshalBinary() ([]byte, error) {
	return d.AppendBinary(nil)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEncoding}, args...)...)
}

// UnmarshalBinary replaces the contents of d with the digest encoded in b by
// AppendBinary. It validates the whole input and returns an error wrapping
// ErrInvalidEncoding, leaving d unchanged, if b is truncated, has trailing
// bytes, an unknown version, a compression outside [MinCompression,
// MaxCompression], more centroids than that compression allows, centroids
// that are unsorted, outside [min, max] or of non-positive or non-finite
// weight, or a count that disagrees with the centroid weights. It never
// panics and allocates at most in proportion to len(b). d may be a zero
// Merging.
func (d *Merging) UnmarshalBinary(b []byte) error {
	if len(b) < headerSize {
		return invalid("%d bytes, want at least %d", len(b), headerSize)
	}
	if b[0] != encodingVersion {
		return invalid("unknown version %d", b[0])
	}
	f := func(i int) float64 {
		return math.Float64frombits(binary.LittleEndian.Uint64(b[1+8*i:]))
	}
	compression, lo, hi, sum, rsum, count := f(0), f(1), f(2), f(3), f(4), f(5)
	n := binary.LittleEndian.Uint32(b[headerSize-4:])
	if !(compression >= MinCompression && compression <= MaxCompression) {
		return invalid("compression %v out of range", compression)
	}
	if uint64(n) > uint64(centroidBound(compression)) {
		return invalid("%d centroids exceed the bound for compression %v", n, compression)
	}
	if want := headerSize + centroidSize*int(n); len(b) != want {
		return invalid("%d bytes, want %d for %d centroids", len(b), want, n)
	}
	if n == 0 {
		if count != 0 || sum != 0 || rsum != 0 || !math.IsInf(lo, 1) || !math.IsInf(hi, -1) {
			return invalid("empty digest with non-empty statistics")
		}
	} else {
		if math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsNaN(hi) || math.IsInf(hi, 0) || lo > hi {
			return invalid("bad min %v / max %v", lo, hi)
		}
		if !(count > 0) || math.IsInf(count, 1) {
			return invalid("bad count %v", count)
		}
	}

	prev := lo
	total := 0.0
	for i := range int(n) {
		off := headerSize + centroidSize*i
		mean := math.Float64frombits(binary.LittleEndian.Uint64(b[off:]))
		weight := math.Float64frombits(binary.LittleEndian.Uint64(b[off+8:]))
		if !(mean >= prev && mean <= hi) {
			return invalid("centroid %d mean %v unsorted or outside [%v, %v]", i, mean, lo, hi)
		}
		if !(weight > 0) || math.IsInf(weight, 1) {
			return invalid("centroid %d weight %v", i, weight)
		}
		prev = mean
		total += weight
	}
	if n > 0 && !(math.Abs(total-count) <= 1e-6*count) {
		return invalid("count %v disagrees with centroid weights %v", count, total)
	}

	// Reuse d's storage, but never beyond the capacity a digest of this
	// compression would have, so that later merges happen at the same points
	// as in a freshly decoded digest.
	var cs []Centroid
	if c := min(cap(d.cs), maxCapFor(compression)); c >= int(n) {
		cs = d.cs[:n:c]
	} else {
		cs = make([]Centroid, n)
	}
	for i := range cs {
		off := headerSize + centroidSize*i
		cs[i] = Centroid{
			Mean:   math.Float64frombits(binary.LittleEndian.Uint64(b[off:])),
			Weight: math.Float64frombits(binary.LittleEndian.Uint64(b[off+8:])),
		}
	}
	d.init(compression)
	d.cs = cs
	d.nMain = int(n)
	d.mainWeight = count
	d.bufWeight = 0
	d.min, d.max = lo, hi
	d.sum = sum
	d.reciprocalSum = rsum
	return nil
}
