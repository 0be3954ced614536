package forward

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// localFrames is what one local forwards for an interval of timers timer
// series (each of 10 samples) and counters veneurglobalonly counters: the
// frames its aggregator hands over.
func localFrames(b *testing.B, timers, counters int) [][]byte {
	b.Helper()
	a := aggregate.New(aggConfig)
	var frames [][]byte
	var mu sync.Mutex
	a.SetForward(func(f []byte) { mu.Lock(); frames = append(frames, f); mu.Unlock() })
	var w state.Samples
	for i := range timers {
		name := fmt.Appendf(nil, "svc.request.latency.%d", i%500)
		tags := fmt.Appendf(nil, "env:prod,route:/r%d", i/500)
		for j := range 10 {
			w.Append(uint8(sdk.Timer), uint8(sdk.ScopeDefault), name, tags, float64(10+j*i%97), 1)
		}
	}
	for i := range counters {
		w.Append(uint8(sdk.Counter), uint8(sdk.ScopeGlobal), fmt.Appendf(nil, "svc.requests.%d", i%500),
			fmt.Appendf(nil, "env:prod,route:/r%d", i/500), 1, 1)
	}
	src := state.New(state.Params{}, 4)
	src.AddSamples(&w)
	src.Ship(1<<20, func(f []byte) {
		if _, err := a.MergeState(f); err != nil {
			b.Fatal(err)
		}
	})
	a.Flush(1)
	return frames
}

// BenchmarkGlobalMerge measures what one global does with an interval of 8
// locals, each forwarding 50,000 timer series and 50,000 global counters:
// merging every batch (as the Receiver does, without the network) and
// flushing the union. It reports forwarded series merged per second.
func BenchmarkGlobalMerge(b *testing.B) {
	const locals, timers, counters = 8, 50_000, 50_000
	frames := localFrames(b, timers, counters)
	b.ReportAllocs()
	var series int
	for b.Loop() {
		g := aggregate.New(aggConfig)
		r := NewReceiver(g.Import, telemetry.New())
		seq := 0
		for l := range locals {
			for _, f := range frames {
				seq++
				if _, err := r.Send(context.Background(), &forwardpb.Batch{Sender: fmt.Sprint("local-", l), Seq: uint64(seq), Records: f}); err != nil {
					b.Fatal(err)
				}
			}
		}
		g.FlushTo(discard{})
		series += locals * (timers + counters)
	}
	b.ReportMetric(float64(series)/b.Elapsed().Seconds(), "series/s")
}

type discard struct{}

func (discard) Point(string, string, string, sdk.PointType, float64, string, string) {}
