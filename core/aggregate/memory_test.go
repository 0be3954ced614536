package aggregate

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/dgryski/go-metro"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// TestBytesPerSeries reports the heap an interval's state takes per active
// series of each type (set VENEURD_MEMORY_REPORT=1 to run it: it takes a
// few seconds and a gigabyte).
func TestBytesPerSeries(t *testing.T) {
	if os.Getenv("VENEURD_MEMORY_REPORT") == "" {
		t.Skip("set VENEURD_MEMORY_REPORT=1 to measure")
	}
	for _, c := range []struct {
		typ     sdk.MetricType
		series  int
		samples int
	}{{sdk.Counter, 1_000_000, 1}, {sdk.Timer, 100_000, 5}, {sdk.Timer, 100_000, 200}, {sdk.Set, 100_000, 5}} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		a := New(Config{})
		var w state.Samples
		for s := range c.samples {
			for i := range c.series {
				v := float64(s)
				if c.typ == sdk.Set {
					v = sdk.SetValue(metro.Hash64(fmt.Appendf(nil, "m%d", s), 1337))
				}
				w.Append(uint8(c.typ), 0, []byte("bench.metric.name"), fmt.Appendf(nil, "env:prod,host:h%d,route:r%d", i%100, i), v, 1)
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
		t.Logf("%d %s series, %d samples each: %d bytes per series", c.series, c.typ, c.samples,
			(after.HeapInuse-before.HeapInuse)/uint64(c.series))
		runtime.KeepAlive(a)
	}
}
