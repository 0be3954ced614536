package tdigest

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]float64, 1<<16)
	for i := range vals {
		vals[i] = r.ExpFloat64() * 100
	}
	d := New(DefaultCompression)
	for _, v := range vals {
		d.Add(v, 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Add(vals[i&(len(vals)-1)], 1)
	}
}

func BenchmarkMerge(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	parts := make([]*Merging, 16)
	for i := range parts {
		parts[i] = New(DefaultCompression)
		for range 10000 {
			parts[i].Add(r.ExpFloat64()*100, 1)
		}
		_ = parts[i].Quantile(0.5) // flush, as a decoded digest would be
	}
	d := New(DefaultCompression)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Merge(parts[i&(len(parts)-1)])
	}
}

func BenchmarkQuantile(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	d := New(DefaultCompression)
	for range 100000 {
		d.Add(r.ExpFloat64()*100, 1)
	}
	qs := []float64{0.5, 0.9, 0.99, 0.999}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = d.Quantile(qs[i&3])
	}
}
