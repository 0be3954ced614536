package sdk

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/veneurd/veneurd/plugins/routers/match"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// A tap (`veneurd tap -source ...`) copies the samples a source reads, as
// it reads them (before drop rules and limits), to its Run stream. Nobody
// taps almost always: a Writer then checks one pointer per sample. A tap
// takes at most maxTapped samples per report (a few thousand a second) and
// counts the rest as lost: a tap shows what flows, it does not carry it.
// While the taps' readers are behind, the daemon pauses the copies: the
// samples are only matched and counted.
const maxTapped = 2000

// tapFilter is a tap in effect: the names it asks for and the samples
// copied since the last report.
type tapFilter struct {
	names  []match.Matcher
	paused bool // count what names match as lost, copy nothing

	mu      sync.Mutex
	samples []*pb.TappedSample
	held    atomic.Int64 // len(samples), read without the lock
	lost    atomic.Uint64
}

// newTapFilter compiles a TapRequest; nil when it asks for nothing.
func newTapFilter(req *pb.TapRequest) (*tapFilter, error) {
	if req == nil || len(req.Names) == 0 {
		return nil, nil
	}
	f := &tapFilter{paused: req.Paused}
	for _, m := range req.Names {
		c, err := matcherFromProto(m)
		if err != nil {
			return nil, err
		}
		f.names = append(f.names, c)
	}
	return f, nil
}

// offer copies a sample if the tap asks for its name and has room.
func (f *tapFilter) offer(typ MetricType, name, tags []byte, value, rate float64) {
	n := unsafe.String(unsafe.SliceData(name), len(name)) // only read here
	found := false
	for i := range f.names {
		if f.names[i].MatchesName(n) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	if f.paused || f.held.Load() >= maxTapped { // full until the next report: no lock
		f.lost.Add(1)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.samples) >= maxTapped {
		f.lost.Add(1)
		return
	}
	f.samples = append(f.samples, &pb.TappedSample{Name: string(name), Tags: string(tags), Type: int32(typ), Value: value, Rate: rate})
	f.held.Store(int64(len(f.samples)))
}

// report moves the samples copied since the last report into b.
func (f *tapFilter) report(b *pb.Batch) {
	f.mu.Lock()
	b.Tapped, f.samples = f.samples, nil
	f.held.Store(0)
	f.mu.Unlock()
	b.TapLost = f.lost.Swap(0)
}
