package core

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

func matcher(t testing.TB, k match.Kind, v string, unset bool) match.Matcher {
	t.Helper()
	m, err := match.Compile(k, v, unset)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// exampleRouter is routing of examples/routing.hcl's size: three sinks,
// three rules, tag policies on two sinks.
func exampleRouter(t testing.TB) *match.Router {
	return &match.Router{
		Sinks: []string{"sink.blackhole.vendor_a", "sink.blackhole.vendor_b", "sink.blackhole.archive"},
		Rules: []match.Rule{
			{Name: "counters", Match: []match.Condition{{Name: matcher(t, match.Prefix, "bench.counter.", false)}},
				Matched: 1 << 0, NotMatched: 1 << 1},
			{Name: "p99", Match: []match.Condition{
				{Name: matcher(t, match.Regex, `^bench\.timer\..*99percentile$`, false)},
				{Name: matcher(t, match.Any, "", false), Tags: []match.Matcher{matcher(t, match.Exact, "t1:v0", false)}},
			}, Matched: 1 << 2},
			{Name: "not_canary", Match: []match.Condition{{Name: matcher(t, match.Any, "", false),
				Tags: []match.Matcher{matcher(t, match.Prefix, "canary", true)}}}, Matched: 1 << 2},
		},
		Policies: []match.Policy{
			{AddTags: []string{"env:bench"}, StripTags: []string{"t3"}},
			{MaxTags: 5, MaxNameLength: 200},
			{},
		},
	}
}

// unpack decodes one sink's batch.
func unpack(t *testing.T, b *pluginhost.FlushBatch) ([]sdk.Point, []*pb.Event) {
	t.Helper()
	var points []sdk.Point
	var events []*pb.Event
	chunks, n, _ := b.Wait(context.Background())
	for _, c := range chunks {
		var err error
		if points, err = sdk.UnpackPoints(c.Points, points); err != nil {
			t.Fatal(err)
		}
		events = append(events, c.Events...)
	}
	if len(points) != n {
		t.Fatalf("batch says %d points, holds %d", n, len(points))
	}
	return points, events
}

func describe(points []sdk.Point) []string {
	var out []string
	for _, p := range points {
		out = append(out, fmt.Sprintf("%s[%s]=%g", p.Name, strings.Join(p.Tags, ","), p.Value))
	}
	slices.Sort(out)
	return out
}

// TestRoutedFlush: each sink receives exactly its points, as its policy
// leaves them; points of sinks without a policy share chunks.
func TestRoutedFlush(t *testing.T) {
	r := &match.Router{
		Sinks: []string{"a", "b", "c"},
		Rules: []match.Rule{
			{Name: "pay", Match: []match.Condition{{Name: matcher(t, match.Prefix, "pay.", false)}}, Matched: 0b011, NotMatched: 0b100},
			{Name: "max", Match: []match.Condition{{Name: matcher(t, match.Exact, "lat.max", false)}}, Matched: 0b001},
		},
		Policies: []match.Policy{{}, {}, {AddTags: []string{"env:prod"}, MaxTags: 2}},
	}
	f := newRoutedFlush(7, time.Second, r, newBatches(3))
	f.Point("pay.x", "", "env:dev", sdk.PointCounter, 1, "h", "")
	f.Point("lat", ".max", "a:1", sdk.PointGauge, 9, "h", "")
	f.Point("lat", ".min", "a:1", sdk.PointGauge, 2, "h", "")
	f.Point("web", "", "a:1,b:2", sdk.PointCounter, 3, "h", "") // three tags with env:prod: over c's limit
	f.Event(&pb.Event{Title: "pay.deploy", Tags: []string{"x:1"}})
	f.Event(&pb.Event{Title: "web.deploy", Tags: []string{"env:dev"}})
	finish(f)
	batches := f.batches

	want := [][]string{
		{"lat.max[a:1]=9", "pay.x[env:dev]=1"},
		{"pay.x[env:dev]=1"},
		{"lat.max[a:1,env:prod]=9", "lat.min[a:1,env:prod]=2"},
	}
	wantEvents := [][]string{{"pay.deploy[x:1]"}, {"pay.deploy[x:1]"}, {"web.deploy[env:prod]"}}
	for i, b := range batches {
		points, events := unpack(t, b)
		if got := describe(points); !slices.Equal(got, want[i]) {
			t.Errorf("sink %s got %v, want %v", r.Sinks[i], got, want[i])
		}
		var evs []string
		for _, e := range events {
			evs = append(evs, e.Title+"["+strings.Join(e.Tags, ",")+"]")
		}
		if !slices.Equal(evs, wantEvents[i]) {
			t.Errorf("sink %s got events %v, want %v", r.Sinks[i], evs, wantEvents[i])
		}
		chunks, _, _ := b.Wait(context.Background())
		for _, c := range chunks {
			if c.Timestamp != 7 {
				t.Errorf("a chunk of sink %d is stamped %d", i, c.Timestamp)
			}
		}
	}
	if f.dropped[2][match.TooManyTags] != 1 {
		t.Errorf("sink c's policy drops: %v", f.dropped[2])
	}
	// a and b receive pay.x from one chunk, packed once.
	shared := false
	ca0, _, _ := batches[0].Wait(context.Background())
	cb1, _, _ := batches[1].Wait(context.Background())
	for _, ca := range ca0 {
		for _, cb := range cb1 {
			shared = shared || ca == cb
		}
	}
	if !shared {
		t.Error("sinks a and b do not share the chunk of the points they both receive")
	}
	if f.ByType[sdk.PointCounter] != 2 || f.ByType[sdk.PointGauge] != 2 {
		t.Errorf("points counted by type: %v", f.ByType)
	}
}

// TestRoutedFlushNoRules: with no rule every sink gets every point, from
// the same chunks; a sink no point reaches still gets an empty flush.
func TestRoutedFlushNoRules(t *testing.T) {
	wait := func(b *pluginhost.FlushBatch) ([]*pb.FlushChunk, int) {
		chunks, n, err := b.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return chunks, n
	}
	f := newRoutedFlush(1, time.Second, nil, newBatches(2))
	f.Point("x", "", "", sdk.PointCounter, 1, "h", "")
	finish(f)
	c0, n0 := wait(f.batches[0])
	c1, n1 := wait(f.batches[1])
	if len(c0) != 1 || c0[0] != c1[0] || n0 != 1 || n1 != 1 {
		t.Errorf("unrouted flush not shared: %v %v", c0, c1)
	}
	r := &match.Router{Sinks: []string{"a", "b"}, Rules: []match.Rule{
		{Name: "r", Match: []match.Condition{{Name: matcher(t, match.Any, "", false)}}, Matched: 0b01}}}
	f = newRoutedFlush(1, time.Second, r, newBatches(2))
	f.Point("x", "", "", sdk.PointCounter, 1, "h", "")
	finish(f)
	if c, n := wait(f.batches[1]); n != 0 || len(c) != 1 || c[0].Timestamp != 1 {
		t.Errorf("a sink with nothing routed to it: %v", c)
	}
}

// TestFlushStreams: a sink's batch holds each chunk as soon as it is full,
// before the flush is finished, and the delivery waiting for the next
// returns it once it comes.
func TestFlushStreams(t *testing.T) {
	f := newRoutedFlush(1, time.Second, nil, newBatches(1))
	b := f.batches[0]
	emitted := 0
	for ; b.Points() == 0; emitted++ {
		f.Point("a.metric.with.a.long.enough.name", "", fmt.Sprintf("i:%d", emitted), sdk.PointCounter, 1, "h", "")
	}
	got := make(chan int)
	go func() {
		n := 0
		for i := 0; ; i++ {
			c, ok, err := b.Chunk(context.Background(), i)
			if err != nil || !ok {
				break
			}
			p, _ := sdk.UnpackPoints(c.Points, nil)
			n += len(p)
		}
		got <- n
	}()
	f.Point("last", "", "", sdk.PointCounter, 1, "h", "")
	finish(f)
	if n := <-got; n != emitted+1 || b.Points() != emitted+1 {
		t.Errorf("streamed %d points, batch says %d, want %d", n, b.Points(), emitted+1)
	}
}

// TestRoutingAllocatesNothing: routing a flushed point, and packing it for
// sinks without a tag policy, allocates nothing per point (the chunks' own
// growth aside, which is per megabyte).
func TestRoutingAllocatesNothing(t *testing.T) {
	x := exampleRouter(t).Routing()
	tags := "t1:v3,t2:v4,t3:v5"
	allocs := testing.AllocsPerRun(1000, func() {
		x.Route("bench.timer.17", ".99percentile", tags)
		x.Route("bench.counter.17", "", tags)
	})
	if allocs != 0 {
		t.Errorf("routing allocates %v times per point", allocs)
	}
}

// BenchmarkRoute is the routing decision for one flushed point, with
// exampleRouter's rules: reported per point.
func BenchmarkRoute(b *testing.B) {
	x := exampleRouter(b).Routing()
	names, tags := benchSeries(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i & 1023
		x.Route(names[j], "", tags[j])
	}
}

// BenchmarkRoutedFlush emits points of series as the aggregator does (a
// timer's six points, then a counter) through routing, tag policies and
// packing: reported per point.
func BenchmarkRoutedFlush(b *testing.B) {
	for _, routed := range []bool{false, true} {
		b.Run(map[bool]string{false: "unrouted", true: "routed"}[routed], func(b *testing.B) {
			r := exampleRouter(b)
			if !routed {
				r = nil
			}
			names, tags := benchSeries(1 << 16)
			suffixes := []string{".min", ".max", ".count", ".50percentile", ".75percentile", ".99percentile"}
			b.ReportAllocs()
			f := newRoutedFlush(1, time.Second, r, newBatches(3))
			n := 0
			for i := 0; b.Loop(); i++ {
				j := i & (1<<16 - 1)
				if j == 0 && i > 0 {
					f = newRoutedFlush(1, time.Second, r, newBatches(3))
				}
				if j&1 == 0 {
					f.Point(names[j], "", tags[j], sdk.PointCounter, 1, "h", "")
					n++
					continue
				}
				for _, s := range suffixes {
					f.Point(names[j], s, tags[j], sdk.PointGauge, 1, "h", "")
				}
				n += len(suffixes)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/point")
		})
	}
}

func benchSeries(n int) (names, tags []string) {
	for i := range n {
		typ := "counter"
		if i&1 == 1 {
			typ = "timer"
		}
		names = append(names, fmt.Sprintf("bench.%s.%d", typ, i))
		tags = append(tags, fmt.Sprintf("t1:v%d,t2:v%d,t3:v%d", i%10, i%100, i%1000))
	}
	return names, tags
}
