package core

import (
	"math/bits"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// routedFlush splits one flush among the sinks (an aggregate.Emitter). Each
// point is packed once, into the chunks of the set of sinks its routes
// choose, and those chunks are shared by every sink of the set: a sink gets
// only its points, and no point is copied per sink. A sink with a tag policy
// gets chunks of its own, with the points as its policy leaves them, less
// those the policy drops (counted by reason). With no routing rule every
// point goes to one set, every sink: the flush is packed once for all. Each
// chunk goes to its sinks' batches as soon as it is full, and several
// routedFlushes may feed the same batches, each emitting a share of the
// series.
type routedFlush struct {
	ts        int64
	interval  time.Duration
	routing   *match.Routing
	rewritten match.Set // sinks with a tag policy
	groups    map[match.Set]*pluginhost.Chunker
	lastSet   match.Set
	last      *pluginhost.Chunker
	policies  []match.Policy
	rewrites  []*match.Rewrite         // by sink, for those with a policy
	own       []*pluginhost.Chunker    // by sink, for those with a policy
	dropped   [][match.Reasons]uint64  // by sink and reason
	batches   []*pluginhost.FlushBatch // by sink
	ByType    [4]uint64                // points emitted, by sdk.PointType
}

// newBatches returns a batch for each of sinks sinks.
func newBatches(sinks int) []*pluginhost.FlushBatch {
	batches := make([]*pluginhost.FlushBatch, sinks)
	for i := range batches {
		batches[i] = pluginhost.NewFlushBatch()
	}
	return batches
}

// newRoutedFlush starts a flush stamped ts into batches, one per sink,
// routed by r (nil: every sink gets every point).
func newRoutedFlush(ts int64, interval time.Duration, r *match.Router, batches []*pluginhost.FlushBatch) *routedFlush {
	sinks := len(batches)
	if r == nil { // a config not loaded from files: no routing
		r = &match.Router{Sinks: make([]string, sinks)}
	}
	f := &routedFlush{
		ts: ts, interval: interval, routing: r.Routing(), rewritten: r.Rewritten(), policies: r.Policies,
		groups:   map[match.Set]*pluginhost.Chunker{},
		rewrites: make([]*match.Rewrite, sinks),
		own:      make([]*pluginhost.Chunker, sinks),
		dropped:  make([][match.Reasons]uint64, sinks),
		batches:  batches,
	}
	for i := range sinks {
		if f.rewritten.Has(i) {
			f.rewrites[i] = r.Policies[i].Rewrite()
			f.own[i] = pluginhost.NewChunker(ts, interval, batches[i].Add)
		}
	}
	return f
}

// group returns the chunker of the points that go to set.
func (f *routedFlush) group(set match.Set) *pluginhost.Chunker {
	if set == f.lastSet && f.last != nil {
		return f.last
	}
	c, ok := f.groups[set]
	if !ok {
		c = pluginhost.NewChunker(f.ts, f.interval, func(chunk *pb.FlushChunk, points int) {
			for rest := set; rest != 0; rest &= rest - 1 {
				f.batches[bits.TrailingZeros64(uint64(rest))].Add(chunk, points)
			}
		})
		f.groups[set] = c
	}
	f.lastSet, f.last = set, c
	return c
}

// Point routes and packs one point (see aggregate.Emitter).
func (f *routedFlush) Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string) {
	if int(typ) < len(f.ByType) {
		f.ByType[typ]++
	}
	set := f.routing.Route(name, suffix, tags)
	if shared := set &^ f.rewritten; shared != 0 {
		f.group(shared).Point(name, suffix, tags, typ, value, hostname, message)
	}
	for rw := set & f.rewritten; rw != 0; rw &= rw - 1 {
		i := bits.TrailingZeros64(uint64(rw))
		t, why := f.rewrites[i].Point(name, suffix, tags)
		if why != match.Kept {
			f.dropped[i][why]++
			continue
		}
		f.own[i].Point(name, suffix, t, typ, value, hostname, message)
	}
}

// Append routes and packs a point given whole: veneurd's own metrics.
func (f *routedFlush) Append(p *sdk.Point) {
	f.Point(p.Name, "", strings.Join(p.Tags, ","), p.Type, p.Value, p.Hostname, p.Message)
}

// Event routes an event: its title is its name.
func (f *routedFlush) Event(e *pb.Event) {
	set := f.routing.Route(e.Title, "", strings.Join(e.Tags, ","))
	if shared := set &^ f.rewritten; shared != 0 {
		f.group(shared).Event(e)
	}
	for rw := set & f.rewritten; rw != 0; rw &= rw - 1 {
		i := bits.TrailingZeros64(uint64(rw))
		tags, why := f.policies[i].EventTags(e.Tags)
		if why != match.Kept {
			f.dropped[i][why]++
			continue
		}
		own := e
		if len(tags) != len(e.Tags) || (len(tags) > 0 && &tags[0] != &e.Tags[0]) {
			own = proto.Clone(e).(*pb.Event)
			own.Tags = tags
		}
		f.own[i].Event(own)
	}
}

// finish hands out the last chunks of flushes fs, which feed the same
// batches, and closes the batches: a sink that got nothing gets an empty
// chunk, and still flushes.
func finish(fs ...*routedFlush) {
	batches := fs[0].batches
	got := make([]bool, len(batches))
	for _, f := range fs {
		for i, c := range f.own {
			if c != nil && c.Finish() {
				got[i] = true
			}
		}
		for set, c := range f.groups {
			if c.Finish() {
				for i := range got {
					got[i] = got[i] || set.Has(i)
				}
			}
		}
	}
	for i, b := range batches {
		if !got[i] {
			b.Add(&pb.FlushChunk{Timestamp: fs[0].ts, IntervalMs: fs[0].interval.Milliseconds()}, 0)
		}
		b.Close()
	}
}
