package core

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// A tap copies what flows through one block to a reader: the samples a
// source reads (its process copies them, see sdk's tap) or the points a
// sink receives, after routing and its tag policy (decoded from the chunks
// the sink is sent). It never holds up delivery: the copies go into a
// bounded buffer, and what does not fit is lost, and counted. With no tap,
// the pipeline checks one counter per flush and sink, and the source
// processes one pointer per sample.

// tapBuffer is how many lines a tap holds for its reader.
const tapBuffer = 8192

// TapLinesDropped counts the lines taps lost to a slow reader.
const TapLinesDropped = "veneur.tap.lines_dropped_total" // block

// Tap is a live copy of what flows through a block.
type Tap struct {
	s       *Server
	block   string
	source  bool
	name    match.Matcher
	points  chan status.TapPoint
	lost    atomic.Uint64
	counted telemetry.Counter
	once    sync.Once
}

// Points are the tapped points, as they flow.
func (t *Tap) Points() <-chan status.TapPoint { return t.points }

// TakeLost returns how many points the tap lost since the last call.
func (t *Tap) TakeLost() uint64 { return t.lost.Swap(0) }

// Close ends the tap.
func (t *Tap) Close() {
	t.once.Do(func() {
		s := t.s
		s.tapSet.Lock()
		defer s.tapSet.Unlock()
		s.tapMu.Lock()
		var kept []*Tap
		for _, o := range s.taps {
			if o != t {
				kept = append(kept, o)
			}
		}
		s.taps = kept
		s.tapMu.Unlock()
		s.tapping.Add(-1)
		if t.source {
			s.retap(t.block)
		}
	})
}

func (t *Tap) offer(p status.TapPoint) {
	select {
	case t.points <- p:
	default:
		t.loseOne()
	}
}

// full reports whether the tap's reader has left its buffer full.
func (t *Tap) full() bool { return len(t.points) == cap(t.points) }

func (t *Tap) loseOne() {
	t.lost.Add(1)
	t.counted.Inc()
}

// Tap starts tapping the block at address (a source or a sink of the
// running pipeline) for the names name matches.
func (s *Server) Tap(address string, name match.Matcher) (*Tap, error) {
	s.mu.Lock()
	found := false
	for _, src := range s.sources {
		found = found || src.Address() == address
	}
	for _, k := range s.sinks {
		found = found || k.Address() == address
	}
	s.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("the pipeline has no source or sink %q", address)
	}
	isSource := strings.HasPrefix(address, "source.")
	t := &Tap{s: s, block: address, source: isSource, name: name, points: make(chan status.TapPoint, tapBuffer),
		counted: s.tel.Counter(TapLinesDropped, "block:"+address)}
	// A source's process copies samples from the time it has the request:
	// the tap is in effect, and listed, once it has.
	s.tapSet.Lock()
	defer s.tapSet.Unlock()
	if isSource {
		if err := s.retap(address, t); err != nil {
			return nil, err
		}
	}
	s.tapMu.Lock()
	s.taps = append(s.taps, t)
	s.tapMu.Unlock()
	s.tapping.Add(1)
	return t, nil
}

// tapsOn returns the taps of a block.
func (s *Server) tapsOn(address string) []*Tap {
	s.tapMu.Lock()
	defer s.tapMu.Unlock()
	var out []*Tap
	for _, t := range s.taps {
		if t.block == address {
			out = append(out, t)
		}
	}
	return out
}

// tapRequest is what the source at address is asked to copy: the names of
// every tap on it, and of more.
func (s *Server) tapRequest(address string, more ...*Tap) *pb.TapRequest {
	s.tapMu.Lock()
	req := &pb.TapRequest{Paused: s.tapPaused[address]}
	s.tapMu.Unlock()
	for _, t := range append(s.tapsOn(address), more...) {
		req.Names = append(req.Names, sdk.MatcherToProto(t.name))
	}
	return req
}

// tappable is a source process that can be tapped.
type tappable interface {
	Tap(ctx context.Context, req *pb.TapRequest) error
}

// retap tells the source at address what its taps, and more, ask for.
func (s *Server) retap(address string, more ...*Tap) error {
	s.mu.Lock()
	var src *liveSource
	for _, c := range s.sources {
		if c.Address() == address {
			src = c
		}
	}
	s.mu.Unlock()
	if src == nil {
		return nil
	}
	return s.tapSource(src, more...)
}

// tapSource tells a source process what the taps on its block, and more,
// ask for.
func (s *Server) tapSource(src *liveSource, more ...*Tap) error {
	tp, ok := src.SourceProcess.(tappable)
	if !ok {
		return pluginhost.ErrNoTap
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return tp.Tap(ctx, s.tapRequest(src.Address(), more...))
}

// tapSamples hands the samples a source copied to its taps. A tap whose
// reader has fallen behind (its buffer is full) costs a match and a count
// per sample, nothing more.
func (s *Server) tapSamples(address string, b *pb.Batch) {
	taps := s.tapsOn(address)
	for _, t := range taps {
		if b.TapLost > 0 {
			t.lost.Add(b.TapLost)
			t.counted.Add(b.TapLost)
		}
	}
	for _, ts := range b.Tapped {
		var p *status.TapPoint
		for _, t := range taps {
			if !t.name.MatchesName(ts.Name) {
				continue
			}
			if t.full() {
				t.loseOne()
				continue
			}
			if p == nil {
				p = &status.TapPoint{Block: address, Name: ts.Name, Type: sdk.MetricType(ts.Type).String(),
					Value: ts.Value, Rate: ts.Rate}
				if ts.Tags != "" {
					p.Tags = strings.Split(ts.Tags, ",")
				}
			}
			t.offer(*p)
		}
	}
	if len(taps) > 0 && allFull(taps) {
		s.pauseTaps(address)
	}
}

// allFull reports whether every one of taps has its buffer full.
func allFull(taps []*Tap) bool {
	for _, t := range taps {
		if !t.full() {
			return false
		}
	}
	return true
}

// tapResumeEvery is how often a paused source's taps are checked for room.
const tapResumeEvery = 200 * time.Millisecond

// pauseTaps has the source at address count rather than copy what its taps
// ask for, while every tap's reader is behind: a tap nobody reads costs the
// source a match and a count per sample, not a copy sent to the daemon. The
// copies resume once a reader has taken half its buffer.
func (s *Server) pauseTaps(address string) {
	s.tapMu.Lock()
	if s.tapPaused[address] {
		s.tapMu.Unlock()
		return
	}
	s.tapPaused[address] = true
	s.tapMu.Unlock()
	go func() {
		s.retapLocked(address)
		t := time.NewTicker(tapResumeEvery)
		defer t.Stop()
		for range t.C {
			taps := s.tapsOn(address)
			room := len(taps) == 0
			for _, tp := range taps {
				room = room || len(tp.points) <= cap(tp.points)/2
			}
			if room {
				s.tapMu.Lock()
				delete(s.tapPaused, address)
				s.tapMu.Unlock()
				s.retapLocked(address)
				return
			}
		}
	}()
}

// retapLocked is retap, one tap change at a time.
func (s *Server) retapLocked(address string) {
	s.tapSet.Lock()
	defer s.tapSet.Unlock()
	if err := s.retap(address); err != nil {
		s.log.Warn("cannot change the source's taps", "source", address, "error", err)
	}
}

// tapFlush hands the points of a sink's flush to its taps as the chunks
// are packed; it gives up on a flush that takes longer than timeout.
func (s *Server) tapFlush(taps []*Tap, address string, b *pluginhost.FlushBatch, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var points []sdk.Point
	for i := 0; ; i++ {
		c, ok, err := b.Chunk(ctx, i)
		if !ok || err != nil {
			return
		}
		points, err = sdk.UnpackPoints(c.Points, points[:0])
		if err != nil {
			return
		}
		for j := range points {
			p := &points[j]
			for _, t := range taps {
				if !t.name.MatchesName(p.Name) {
					continue
				}
				if t.full() {
					t.loseOne()
				} else {
					t.offer(status.TapPoint{Block: address, Name: p.Name, Tags: p.Tags, Type: p.Type.String(),
						Value: p.Value, Timestamp: p.Timestamp, Hostname: p.Hostname, Message: p.Message})
				}
			}
		}
	}
}
