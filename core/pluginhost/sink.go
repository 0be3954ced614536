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

// FlushBatch is one flush encoded for the wire once and shared by every sink.
type FlushBatch struct {
	Chunks []*pb.FlushChunk
	Points int
}

// maxChunkBytes keeps chunks well under gRPC's 4 MiB message limit: a chunk
// is cut once it passes this size, and one point or event is far smaller
// than the rest of the limit.
const maxChunkBytes = 2 << 20

// Encoder packs one flush into chunks for the wire as its points are
// emitted (it is an aggregate.Emitter), so that a flush never exists as a
// slice of points. Not safe for concurrent use.
type Encoder struct {
	ts     int64
	pw     sdk.PointPacker
	batch  FlushBatch
	chunk  *pb.FlushChunk
	ByType [4]uint64 // points by sdk.PointType
}

// NewEncoder starts encoding a flush stamped ts.
func NewEncoder(ts int64) *Encoder {
	return &Encoder{ts: ts, chunk: &pb.FlushChunk{Timestamp: ts}}
}

func (e *Encoder) cutIfFull() {
	if e.pw.Size() >= maxChunkBytes {
		e.cut()
	}
	if e.pw.Size() == 0 && e.batch.Points > 0 {
		// A flush that filled one chunk will likely fill the next.
		e.pw.Grow(maxChunkBytes + 64<<10)
	}
}

func (e *Encoder) cut() {
	e.chunk.Points = e.pw.Bytes()
	e.batch.Chunks = append(e.batch.Chunks, e.chunk)
	e.chunk = &pb.FlushChunk{}
	e.pw.Reset()
}

func (e *Encoder) count(t sdk.PointType) {
	if int(t) < len(e.ByType) {
		e.ByType[t]++
	}
	e.batch.Points++
}

// Point packs one point (see aggregate.Emitter).
func (e *Encoder) Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string) {
	e.cutIfFull()
	e.pw.AppendJoined(name, suffix, tags, typ, value, e.ts, hostname, message)
	e.count(typ)
}

// Append packs p.
func (e *Encoder) Append(p *sdk.Point) {
	e.cutIfFull()
	e.pw.Append(p)
	e.count(p.Type)
}

// Finish adds the events and returns the encoded flush.
func (e *Encoder) Finish(events []*pb.Event) *FlushBatch {
	size := e.pw.Size()
	for _, ev := range events {
		if n := proto.Size(ev); size+n > maxChunkBytes && size > 0 {
			e.cut()
			size = 0
		}
		e.chunk.Events = append(e.chunk.Events, ev)
		size += proto.Size(ev)
	}
	e.cut()
	return &e.batch
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
