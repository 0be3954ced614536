package aggregate

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/dgryski/go-metro"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// BenchmarkBytesPerSeries measures the heap an interval's state takes per
// active series of each type, reported as bytes/series (the 1M-counter
// case takes a few seconds and a gigabyte):
//
//	go test -run '^$' -bench BytesPerSeries ./core/aggregate/
func BenchmarkBytesPerSeries(b *testing.B) {
	for _, c := range []struct {
		typ     sdk.MetricType
		series  int
		samples int
	}{{sdk.Counter, 1_000_000, 1}, {sdk.Timer, 100_000, 5}, {sdk.Timer, 100_000, 200}, {sdk.Set, 100_000, 5}} {
		b.Run(fmt.Sprintf("%s/%dx%d", c.typ, c.series, c.samples), func(b *testing.B) {
			var perSeries uint64
			for b.Loop() {
				perSeries = bytesPerSeries(c.typ, c.series, c.samples)
			}
			b.ReportMetric(float64(perSeries), "bytes/series")
		})
	}
}

// bytesPerSeries fills an Aggregator with series of typ, each with samples
// samples, and returns the heap it holds per series.
func bytesPerSeries(typ sdk.MetricType, series, samples int) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	a := New(Config{})
	var w state.Samples
	for s := range samples {
		for i := range series {
			v := float64(s)
			if typ == sdk.Set {
				v = sdk.SetValue(metro.Hash64(fmt.Appendf(nil, "m%d", s), 1337))
			}
			w.Append(uint8(typ), 0, []byte("bench.metric.name"), fmt.Appendf(nil, "env:prod,host:h%d,route:r%d", i%100, i), v, 1)
			if w.Len() == 4096 {
				a.table.AddSamples(&w)
				w.Reset()
			}
		}
	}
	a.table.AddSamples(&w)
	w = state.Samples{}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(a)
	return (after.HeapInuse - before.HeapInuse) / uint64(series)
}
