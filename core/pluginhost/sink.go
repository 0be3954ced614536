package pluginhost

import (
	"context"
	"errors"
	"fmt"
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
type FlushBatch struct {
	Chunks []*pb.FlushChunk
	Points int
}

// maxChunkBytes keeps chunks well under gRPC's 4 MiB message limit: a chunk
// is cut once it passes this size, and one point or event is far smaller
// than the rest of the limit.
const maxChunkBytes = 2 << 20

// Chunker packs points and events into chunks for the wire as they are
// emitted, so that a flush never exists as a slice of points. Every chunk
// carries the flush's timestamp, so that chunks of several Chunkers can make
// up one sink's flush. Not safe for concurrent use.
type Chunker struct {
	ts     int64
	pw     sdk.PointPacker
	chunks []*pb.FlushChunk
	events []*pb.Event
	size   int // of events
	Points int
}

// NewChunker starts packing a flush stamped ts.
func NewChunker(ts int64) *Chunker { return &Chunker{ts: ts} }

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
	c.chunks = append(c.chunks, &pb.FlushChunk{Timestamp: c.ts, Points: c.pw.Bytes(), Events: c.events})
	c.pw.Reset()
	c.events, c.size = nil, 0
}

// Point packs one point (see aggregate.Emitter).
func (c *Chunker) Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string) {
	c.cutIfFull()
	c.pw.AppendJoined(name, suffix, tags, typ, value, c.ts, hostname, message)
	c.Points++
}

// Append packs p.
func (c *Chunker) Append(p *sdk.Point) {
	c.cutIfFull()
	c.pw.Append(p)
	c.Points++
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

// Finish returns the chunks; there is at least one, which may be empty.
// Once finished, a Chunker takes nothing more.
func (c *Chunker) Finish() []*pb.FlushChunk {
	if c.pw.Size()+c.size > 0 || len(c.chunks) == 0 {
		c.cut()
	}
	return c.chunks
}

// Batch is Finish as one sink's FlushBatch.
func (c *Chunker) Batch() *FlushBatch {
	return &FlushBatch{Chunks: c.Finish(), Points: c.Points}
}

// ErrSinkDown is wrapped by Flush's error when the flush failed because the
// process was down, and was not back within ctx: the sink never saw it.
var ErrSinkDown = errors.New("sink process down")

// Flush sends one flush. If it fails because the process died, it is retried
// once on the restarted process, within ctx.
func (s *SinkProcess) Flush(ctx context.Context, b *FlushBatch) error {
	proc, _ := s.current()
	if proc == nil {
		if proc = s.await(ctx, nil); proc == nil {
			return fmt.Errorf("%s: plugin is restarting: %w: %w", s.Address(), ErrSinkDown, ctx.Err())
		}
	}
	err := flushTo(ctx, proc, b)
	if err == nil || ctx.Err() != nil {
		return err
	}
	// Tell a dead process from a failing sink: give the exit a moment to show.
	deadline := time.Now().Add(500 * time.Millisecond)
	for !proc.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !proc.Exited() {
		return err
	}
	s.log.Warn("flush failed because the plugin died; retrying on its restart", "error", err)
	next := s.await(ctx, proc)
	if next == nil {
		return fmt.Errorf("%s: plugin died during flush and did not return in time: %w: %w", s.Address(), ErrSinkDown, err)
	}
	return flushTo(ctx, next, b)
}

// flushTo streams b to p and checks that the sink saw every point.
func flushTo(ctx context.Context, p *Process, b *FlushBatch) error {
	stream, err := p.Sink.Flush(ctx)
	if err != nil {
		return err
	}
	for _, c := range b.Chunks {
		if err := stream.Send(c); err != nil {
			_, rerr := stream.CloseAndRecv()
			return errors.Join(err, rerr)
		}
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if res.Points != uint64(b.Points) {
		return fmt.Errorf("sink acknowledged %d of %d points", res.Points, b.Points)
	}
	return nil
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
