package tdigest

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var (
	_ encoding.BinaryAppender    = (*Merging)(nil)
	_ encoding.BinaryMarshaler   = (*Merging)(nil)
	_ encoding.BinaryUnmarshaler = (*Merging)(nil)
)

// sampleDigest returns a digest of n exponential samples with mixed weights.
func sampleDigest(seed uint64, n int) *Merging {
	r := rand.New(rand.NewPCG(seed, seed+1))
	d := New(DefaultCompression)
	for range n {
		d.Add(r.ExpFloat64()*100, float64(1+r.IntN(3)))
	}
	return d
}

func encode(t testing.TB, d *Merging) []byte {
	t.Helper()
	b, err := d.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2, 10, 100000} {
		d := sampleDigest(uint64(n), n)
		b := encode(t, d)
		if want := headerSize + centroidSize*len(d.Centroids()); len(b) != want {
			t.Errorf("n=%d: encoding is %d bytes, want %d", n, len(b), want)
		}
		var got Merging // a zero value is a valid target
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got.Count() != d.Count() || got.Sum() != d.Sum() || got.ReciprocalSum() != d.ReciprocalSum() ||
			got.Min() != d.Min() || got.Max() != d.Max() || got.Compression() != d.Compression() {
			t.Errorf("n=%d: statistics differ after round trip", n)
		}
		for i := 0; i <= 100; i++ {
			q := float64(i) / 100
			if a, b := d.Quantile(q), got.Quantile(q); math.Float64bits(a) != math.Float64bits(b) {
				t.Errorf("n=%d: Quantile(%v) = %v after round trip, want %v", n, q, b, a)
			}
		}
		if b2 := encode(t, &got); !bytes.Equal(b, b2) {
			t.Errorf("n=%d: re-encoding differs", n)
		}
		// A decoded digest keeps working, and appending preserves b.
		prefix := []byte("xyz")
		b3, _ := got.AppendBinary(prefix)
		if !bytes.Equal(b3[:3], prefix) || !bytes.Equal(b3[3:], b) {
			t.Errorf("n=%d: AppendBinary does not append", n)
		}
		got.Add(5, 1)
		got.Merge(d)
		if got.Count() != 2*d.Count()+1 {
			t.Errorf("n=%d: count %v after add and merge", n, got.Count())
		}
	}

	// Merging a decoded digest equals merging the original once the
	// original's buffer has been merged (as AppendBinary does).
	parts := []*Merging{sampleDigest(1, 5000), sampleDigest(2, 7000)}
	for _, p := range parts {
		_ = p.Centroids()
	}
	direct, viaWire := New(DefaultCompression), New(DefaultCompression)
	for _, p := range parts {
		direct.Merge(p)
		var q Merging
		if err := q.UnmarshalBinary(encode(t, p)); err != nil {
			t.Fatal(err)
		}
		viaWire.Merge(&q)
	}
	if !bytes.Equal(encode(t, direct), encode(t, viaWire)) {
		t.Error("merging decoded digests differs from merging the originals")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	valid := encode(t, sampleDigest(3, 1000))
	n := int(binary.LittleEndian.Uint32(valid[headerSize-4:]))
	putF := func(b []byte, off int, f float64) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint64(b[off:], math.Float64bits(f))
		return b
	}
	field := func(i int) int { return 1 + 8*i }
	cent := func(i int) int { return headerSize + centroidSize*i }
	cases := map[string][]byte{
		"nil":              nil,
		"version":          append([]byte{2}, valid[1:]...),
		"trailing":         append(bytes.Clone(valid), 0),
		"compression low":  putF(valid, field(0), 5),
		"compression high": putF(valid, field(0), 1e6),
		"compression NaN":  putF(valid, field(0), math.NaN()),
		"min NaN":          putF(valid, field(1), math.NaN()),
		"min above max":    putF(valid, field(1), 1e9),
		"max inf":          putF(valid, field(2), math.Inf(1)),
		"count":            putF(valid, field(5), 3),
		"count zero":       putF(valid, field(5), 0),
		"mean NaN":         putF(valid, cent(1), math.NaN()),
		"mean unsorted":    putF(valid, cent(n-2), -1),
		"mean above max":   putF(valid, cent(n-1), 1e12),
		"weight zero":      putF(valid, cent(2)+8, 0),
		"weight negative":  putF(valid, cent(2)+8, -1),
		"weight inf":       putF(valid, cent(2)+8, math.Inf(1)),
		"too many centroids": func() []byte {
			b := bytes.Clone(valid)
			binary.LittleEndian.PutUint32(b[headerSize-4:], 1<<31)
			return b
		}(),
		"empty with count": func() []byte {
			b := encode(t, New(DefaultCompression))
			return putF(b, field(5), 1)
		}(),
	}
	for i := range len(valid) {
		cases["truncated "+strconv.Itoa(i)] = valid[:i]
	}
	d := sampleDigest(4, 100)
	before := encode(t, d)
	for name, b := range cases {
		err := d.UnmarshalBinary(b)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrInvalidEncoding) {
			t.Errorf("%s: error %v does not wrap ErrInvalidEncoding", name, err)
		}
	}
	if !bytes.Equal(before, encode(t, d)) {
		t.Error("failed UnmarshalBinary modified the digest")
	}
}

func TestUnmarshalGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	valid := encode(t, sampleDigest(5, 3000))
	for range 20000 {
		var b []byte
		if r.IntN(2) == 0 {
			b = make([]byte, r.IntN(200))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		} else {
			b = bytes.Clone(valid)
			for range 1 + r.IntN(4) {
				b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
			}
		}
		checkDecode(t, b)
	}
}

// checkDecode decodes b and, if it is accepted, checks that the digest is
// usable and re-encodes to b.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var d Merging
	if err := d.UnmarshalBinary(b); err != nil {
		return
	}
	if enc := encode(t, &d); !bytes.Equal(enc, b) {
		t.Fatalf("accepted input re-encodes differently:\n%x\n%x", b, enc)
	}
	for _, q := range []float64{0, 0.01, 0.5, 0.99, 1} {
		v := d.Quantile(q)
		if d.Count() > 0 && !(v >= d.Min() && v <= d.Max()) {
			t.Fatalf("Quantile(%v) = %v outside [%v, %v]", q, v, d.Min(), d.Max())
		}
	}
	m := New(DefaultCompression)
	m.Add(1, 1)
	m.Merge(&d)
	d.Add(2, 1)
	d.Merge(m)
	_ = d.Quantile(0.5)
	_ = m.Quantile(0.5)
}

func FuzzUnmarshalBinary(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{encodingVersion})
	f.Add(encode(f, New(DefaultCompression)))
	f.Add(encode(f, sampleDigest(6, 3)))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
	})
}

// TestWriteFuzzCorpus regenerates the seed corpus in testdata when run with
// TDIGEST_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TDIGEST_WRITE_CORPUS") == "" {
		t.Skip("set TDIGEST_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	valid := encode(t, sampleDigest(7, 50))
	seeds := map[string][]byte{
		"empty_digest":     encode(t, New(DefaultCompression)),
		"single_value":     encode(t, sampleDigest(8, 1)),
		"small_digest":     encode(t, sampleDigest(9, 20)),
		"medium_digest":    valid,
		"truncated_header": valid[:headerSize-1],
		"truncated_body":   valid[:len(valid)-5],
		"bad_version":      append([]byte{0xff}, valid[1:]...),
		"garbage":          []byte("\x01not a t-digest at all, just some bytes\x00\xff"),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshalBinary")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnmarshalIntoUsedDigest(t *testing.T) {
	enc := encode(t, sampleDigest(10, 20000))
	parts := []*Merging{sampleDigest(11, 3000), sampleDigest(12, 9000)}

	used := New(1000)
	for i := range 50000 {
		used.Add(float64(i), 1)
	}
	var fresh Merging
	for _, d := range []*Merging{used, &fresh} {
		if err := d.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			d.Merge(p)
		}
	}
	if !bytes.Equal(encode(t, used), encode(t, &fresh)) {
		t.Error("decoding into a used digest changes later merges")
	}
}
