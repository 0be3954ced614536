package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// SinkProcess is a supervised sink plugin process. Flush and Stop may be
// called concurrently with the process being restarted.
type SinkProcess struct {
	*supervisor
}

// StartSink launches, configures and starts a sink plugin.
func StartSink(l *Launcher, spec Spec, req *pb.ConfigureRequest) (*SinkProcess, error) {
	spec.Kind = sdk.KindSink
	sv, err := startSupervisor(l, spec, req, func(ctx context.Context, p *Process) error {
		_, err := p.Sink.Start(ctx, &pb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SinkProcess{sv}, nil
}

// FlushBatch is one sink's part of a flush, encoded for the wire. Its
// chunks may be shared with other sinks: those that receive the same points.
// A batch grows while the flush is emitted, and its sink's delivery streams
// each chunk as it comes, so that delivering overlaps emitting rather than
// following it; it is complete once closed. Safe for concurrent use.
type FlushBatch struct {
	mu     sync.Mutex
	chunks []*pb.FlushChunk
	points int
	closed bool
	grew   chan struct{} // closed, and replaced, when the batch grows or closes
}

// NewFlushBatch returns an empty batch, open to Add.
func NewFlushBatch() *FlushBatch { return &FlushBatch{grew: make(chan struct{})} }

// Add appends a chunk holding points points.
func (b *FlushBatch) Add(c *pb.FlushChunk, points int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.chunks = append(b.chunks, c)
	b.points += points
	close(b.grew)
	b.grew = make(chan struct{})
}

// Close marks the batch complete: nothing more is added.
func (b *FlushBatch) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.grew)
	}
}

// Chunk returns chunk i, waiting for it until ctx ends; false once the
// batch has closed with fewer chunks.
func (b *FlushBatch) Chunk(ctx context.Context, i int) (*pb.FlushChunk, bool, error) {
	for {
		b.mu.Lock()
		switch {
		case i < len(b.chunks):
			c := b.chunks[i]
			b.mu.Unlock()
			return c, true, nil
		case b.closed:
			b.mu.Unlock()
			return nil, false, nil
		}
		grew := b.grew
		b.mu.Unlock()
		select {
		case <-grew:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Wait returns the chunks and the number of points once the batch is
// complete, or ctx's error.
func (b *FlushBatch) Wait(ctx context.Context) ([]*pb.FlushChunk, int, error) {
	for i := 0; ; i++ {
		if _, ok, err := b.Chunk(ctx, i); err != nil || !ok {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.chunks, b.points, err
		}
	}
}

// Points returns the number of points added so far: all of them once the
// batch is closed.
func (b *FlushBatch) Points() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.points
}

// maxChunkBytes keeps chunks well under gRPC's 4 MiB message limit: a chunk
// is cut once it passes this size, and one point or event is far smaller
// than the rest of the limit.
const maxChunkBytes = 2 << 20

// Chunker packs points and events into chunks for the wire as they are
// emitted, so that a flush never exists as a slice of points, and hands each
// chunk to its output as soon as it is full. Every chunk carries the flush's
// timestamp, so that chunks of several Chunkers can make up one sink's
// flush. Not safe for concurrent use.
type Chunker struct {
	ts     int64
	ivl    int64 // interval, ms
	out    func(c *pb.FlushChunk, points int)
	pw     sdk.PointPacker
	events []*pb.Event
	size   int // of events
	Points int // packed in all
	cuts   int // chunks handed out
	inCut  int // points in the chunk being packed
}

// NewChunker starts packing a flush stamped ts, ending an interval of
// length interval, handing each chunk to out.
func NewChunker(ts int64, interval time.Duration, out func(c *pb.FlushChunk, points int)) *Chunker {
	return &Chunker{ts: ts, ivl: interval.Milliseconds(), out: out}
}

func (c *Chunker) cutIfFull() {
	if c.pw.Size()+c.size >= maxChunkBytes {
		c.cut()
	}
	if c.pw.Size() == 0 && c.Points > 0 {
		// A flush that filled one chunk will likely fill the next.
		c.pw.Grow(maxChunkBytes + 64<<10)
	}
}

func (c *Chunker) cut() {
	c.out(&pb.FlushChunk{Timestamp: c.ts, IntervalMs: c.ivl, Points: c.pw.Bytes(), Events: c.events}, c.inCut)
	c.pw.Reset()
	c.events, c.size, c.inCut = nil, 0, 0
	c.cuts++
}

// Point packs one point (see aggregate.Emitter).
func (c *Chunker) Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string) {
	c.cutIfFull()
	c.pw.AppendJoined(name, suffix, tags, typ, value, c.ts, hostname, message)
	c.Points++
	c.inCut++
}

// Append packs p.
func (c *Chunker) Append(p *sdk.Point) {
	c.cutIfFull()
	c.pw.Append(p)
	c.Points++
	c.inCut++
}

// Event adds an event.
func (c *Chunker) Event(e *pb.Event) {
	n := proto.Size(e)
	if c.pw.Size()+c.size+n > maxChunkBytes && c.pw.Size()+c.size > 0 {
		c.cut()
	}
	c.events = append(c.events, e)
	c.size += n
}

// Finish hands out the last chunk, if it holds anything. It returns
// whether the Chunker handed out any chunk.
func (c *Chunker) Finish() bool {
	if c.pw.Size()+c.size > 0 {
		c.cut()
	}
	return c.cuts > 0
}

// ErrSinkDown is wrapped by Flush's error when the flush failed because the
// process was down, and was not back within ctx: the sink never saw it.
var ErrSinkDown = errors.New("sink process down")

// Flush sends one flush, and returns what the sink counted since its last
// flush. If it fails because the process died, it is retried once on the
// restarted process, within ctx.
func (s *SinkProcess) Flush(ctx context.Context, b *FlushBatch) ([]*pb.Count, error) {
	proc, _ := s.current()
	if proc == nil {
		if proc = s.await(ctx, nil); proc == nil {
			return nil, fmt.Errorf("%s: plugin is restarting: %w: %w", s.Address(), ErrSinkDown, ctx.Err())
		}
	}
	counts, err := flushTo(ctx, proc, b)
	if err == nil || ctx.Err() != nil {
		return counts, err
	}
	// Tell a dead process from a failing sink: give the exit a moment to show.
	deadline := time.Now().Add(500 * time.Millisecond)
	for !proc.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !proc.Exited() {
		return nil, err
	}
	s.log.Warn("flush failed because the plugin died; retrying on its restart", "error", err)
	next := s.await(ctx, proc)
	if next == nil {
		return nil, fmt.Errorf("%s: plugin died during flush and did not return in time: %w: %w", s.Address(), ErrSinkDown, err)
	}
	return flushTo(ctx, next, b)
}

// flushTo streams b to p, each chunk as soon as it is added, and checks
// that the sink saw every point. It returns the sink's counts.
func flushTo(ctx context.Context, p *Process, b *FlushBatch) ([]*pb.Count, error) {
	stream, err := p.Sink.Flush(ctx)
	if err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		c, ok, err := b.Chunk(ctx, i)
		if err != nil {
			return nil, err // ctx has ended, and with it the stream
		}
		if !ok {
			break
		}
		if err := stream.Send(c); err != nil {
			_, rerr := stream.CloseAndRecv()
			return nil, errors.Join(err, rerr)
		}
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	if n := b.Points(); res.Points != uint64(n) {
		return res.Counts, fmt.Errorf("sink acknowledged %d of %d points", res.Points, n)
	}
	return res.Counts, nil
}

// Stop stops the sink and ends its process.
func (s *SinkProcess) Stop(ctx context.Context) {
	if p, _ := s.current(); p != nil && !p.Exited() {
		if _, err := p.Sink.Stop(ctx, &pb.Empty{}); err != nil {
			s.log.Warn("sink stop failed", "error", err)
		}
	}
	s.stop()
}
