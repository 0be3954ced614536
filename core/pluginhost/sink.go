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

// Sink is a supervised sink plugin process. Flush and Stop may be called
// concurrently with the process being restarted.
type Sink struct {
	*supervisor
}

// StartSink launches, configures and starts a sink plugin.
func StartSink(l *Launcher, spec Spec, req *pb.ConfigureRequest) (*Sink, error) {
	spec.Kind = sdk.KindSink
	sv, err := startSupervisor(l, spec, req, func(ctx context.Context, p *Process) error {
		_, err := p.Sink.Start(ctx, &pb.Empty{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Sink{sv}, nil
}

// FlushBatch is one flush encoded for the wire once and shared by every sink.
type FlushBatch struct {
	Chunks []*pb.FlushChunk
	Points int
}

// maxChunkBytes keeps chunks well under gRPC's 4 MiB message limit.
const maxChunkBytes = 2 << 20

// EncodeFlush splits f into chunks for the wire.
func EncodeFlush(f *sdk.Flush) *FlushBatch {
	b := &FlushBatch{Points: len(f.Points)}
	chunk := &pb.FlushChunk{Timestamp: f.Timestamp}
	size := 0
	cut := func() {
		b.Chunks = append(b.Chunks, chunk)
		chunk, size = &pb.FlushChunk{}, 0
	}
	for i := range f.Points {
		p := sdk.PointToProto(&f.Points[i])
		n := len(p.Name) + len(p.Hostname) + len(p.Message) + 32
		for _, t := range p.Tags {
			n += len(t) + 2
		}
		if size+n > maxChunkBytes && size > 0 {
			cut()
		}
		chunk.Points = append(chunk.Points, p)
		size += n
	}
	for i := range f.Events {
		e := sdk.EventToProto(&f.Events[i])
		if n := proto.Size(e); size+n > maxChunkBytes && size > 0 {
			cut()
		}
		chunk.Events = append(chunk.Events, e)
		size += proto.Size(e)
	}
	b.Chunks = append(b.Chunks, chunk)
	return b
}

// Flush sends one flush. If it fails because the process died, it is retried
// once on the restarted process, within ctx.
func (s *Sink) Flush(ctx context.Context, b *FlushBatch) error {
	proc, _ := s.current()
	if proc == nil {
		if proc = s.await(ctx, nil); proc == nil {
			return fmt.Errorf("%s: plugin is restarting: %w", s.Address(), ctx.Err())
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
		return fmt.Errorf("%s: plugin died during flush and did not return in time: %w", s.Address(), err)
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
func (s *Sink) Stop(ctx context.Context) {
	if p, _ := s.current(); p != nil && !p.Exited() {
		if _, err := p.Sink.Stop(ctx, &pb.Empty{}); err != nil {
			s.log.Warn("sink stop failed", "error", err)
		}
	}
	s.stop()
}
