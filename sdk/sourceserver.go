package sdk

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk/frame"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// A source process aggregates what it reads for the interval in progress and
// ships the state when veneurd cuts the interval (Cut), a few records per
// series rather than one per sample: streaming samples across the process
// boundary costs more than aggregating them. Counts (lines received, samples
// processed, errors) travel every reportEvery, so the daemon's self-metrics
// stay current between flushes.
const (
	// maxFrameBytes bounds a Batch's state frame, well under gRPC's 4 MiB.
	maxFrameBytes = 1 << 20
	// shipAbove is the state a source holds before it ships early, within
	// the interval: a source that sees a million series keeps a few tens of
	// megabytes of them, not all.
	shipAbove = 24 << 20
	// reportEvery is how often counts are sent when there are any.
	reportEvery = 200 * time.Millisecond
)

type sourceServer struct {
	pb.UnimplementedSourceServer
	impl Source

	mu   sync.Mutex
	stop context.CancelFunc // of the Run in progress
	out  *streamOutput      // of the Run in progress
}

func (s *sourceServer) Stop(context.Context, *pb.Empty) (*pb.Empty, error) {
	s.mu.Lock()
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	return &pb.Empty{}, nil
}

func (s *sourceServer) Cut(_ context.Context, req *pb.CutRequest) (*pb.Empty, error) {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out == nil || !out.cut(req.Id, paramsFromProto(req.Params)) {
		return nil, status.Error(codes.FailedPrecondition, "the source is not running")
	}
	return &pb.Empty{}, nil
}

func paramsFromProto(p *pb.StateParams) state.Params {
	if p == nil {
		return state.Params{}
	}
	return state.Params{Compression: p.Compression, HLLPrecision: uint8(p.HllPrecision)}
}

func (s *sourceServer) Run(req *pb.RunRequest, stream pb.Source_RunServer) error {
	listeners := make([]Listener, len(req.Listeners))
	for i, l := range req.Listeners {
		listeners[i] = Listener{Address: l.Address, File: inheritedFile(int(l.Fd), l.Address)}
	}
	out := newStreamOutput(paramsFromProto(req.Params))
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	s.mu.Lock()
	s.stop, s.out = cancel, out
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		reports := time.NewTicker(reportEvery)
		ran := make(chan error, 1)
		go func() { ran <- s.impl.Run(ctx, listeners, out) }()
		for {
			select {
			case <-reports.C:
				out.report()
				continue
			case err := <-ran:
				reports.Stop()
				out.close()
				done <- err
			}
			return
		}
	}()
	var sendErr error
	for b := range out.ch {
		if sendErr == nil {
			sendErr = stream.Send(b)
		}
	}
	s.mu.Lock()
	if s.out == out {
		s.out = nil
	}
	s.mu.Unlock()
	if err := <-done; err != nil && ctx.Err() == nil {
		return err
	}
	return sendErr
}

// streamOutput aggregates what its Writers write into one state.Table and
// sends batches to one Run stream.
type streamOutput struct {
	ch    chan *pb.Batch
	table *state.Table

	// shipMu orders shipments, so that a cut's marker follows its state,
	// and guards closed: nothing is sent once ch is closed.
	shipMu sync.Mutex
	closed bool

	processed atomic.Uint64
	mu        sync.Mutex // guards received and errs
	received  map[string]*atomic.Uint64
	errs      map[errKey]uint64
}

type errKey struct{ packetType, reason string }

func newStreamOutput(p state.Params) *streamOutput {
	return &streamOutput{
		ch:       make(chan *pb.Batch, 64),
		table:    state.New(p, 16),
		received: map[string]*atomic.Uint64{},
		errs:     map[errKey]uint64{},
	}
}

func (o *streamOutput) Writer(protocol string) Writer {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.received[protocol]
	if !ok {
		r = new(atomic.Uint64)
		o.received[protocol] = r
	}
	return &stateWriter{out: o, received: r}
}

// cut ships the interval's state and marks its end with id; false once the
// stream has closed.
func (o *streamOutput) cut(id uint64, next state.Params) bool {
	o.shipMu.Lock()
	defer o.shipMu.Unlock()
	if o.closed {
		return false
	}
	o.table.Ship(maxFrameBytes, o.sendState)
	o.table.SetParams(next)
	o.sendReport()
	o.ch <- &pb.Batch{Cut: id}
	return true
}

// shipEarly ships the state within the interval, unless a shipment is under
// way (which empties the table anyway).
func (o *streamOutput) shipEarly() {
	if !o.shipMu.TryLock() {
		return
	}
	defer o.shipMu.Unlock()
	if !o.closed {
		o.table.Ship(maxFrameBytes, o.sendState)
	}
}

func (o *streamOutput) sendState(b []byte) { o.ch <- &pb.Batch{State: b} }

// report sends the counts gathered since the last report, if any.
func (o *streamOutput) report() {
	o.shipMu.Lock()
	defer o.shipMu.Unlock()
	if !o.closed {
		o.sendReport()
	}
}

// sendReport sends the counts; shipMu is held. Received lines are counted
// by protocol, one Batch each; the first also carries the other counts.
func (o *streamOutput) sendReport() {
	b := &pb.Batch{Processed: o.processed.Swap(0)}
	o.mu.Lock()
	for k, n := range o.errs {
		b.Errors = append(b.Errors, &pb.ErrorCount{PacketType: k.packetType, Reason: k.reason, Count: n})
		delete(o.errs, k)
	}
	var more []*pb.Batch
	for proto, r := range o.received {
		n := r.Swap(0)
		switch {
		case n == 0:
		case b.Protocol == "":
			b.Protocol, b.Received = proto, n
		default:
			more = append(more, &pb.Batch{Protocol: proto, Received: n})
		}
	}
	o.mu.Unlock()
	if b.Processed > 0 || b.Received > 0 || len(b.Errors) > 0 {
		o.ch <- b
	}
	for _, m := range more {
		o.ch <- m
	}
}

// close ships what is left and closes the stream; Run has returned, so no
// Writer writes any more.
func (o *streamOutput) close() {
	o.shipMu.Lock()
	defer o.shipMu.Unlock()
	o.table.Ship(maxFrameBytes, o.sendState)
	o.sendReport()
	o.closed = true
	close(o.ch)
}

// stateWriter is one goroutine's Writer: samples go straight into the
// output's table; counts, events and service checks wait for Flush.
type stateWriter struct {
	out       *streamOutput
	received  *atomic.Uint64
	key       []byte
	sample    frame.Sample
	nreceived uint64
	processed uint64
	events    []*pb.Event
	checks    []*pb.ServiceCheck
	errs      map[errKey]uint64
}

func (w *stateWriter) Metric(typ MetricType, scope Scope, name, tags []byte, value, rate float64) {
	w.nreceived++
	if len(name) > frame.MaxNameLen || len(tags) > frame.MaxTagsLen {
		w.error("metric", "too_long")
		return
	}
	k := append(w.key[:0], byte(scope), byte(typ), 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(k[2:], uint16(len(name)))
	binary.LittleEndian.PutUint16(k[4:], uint16(len(tags)))
	k = append(append(k, name...), tags...)
	w.key = k
	s := &w.sample
	s.Value, s.Rate, s.Scope, s.Type, s.Key = value, rate, uint8(scope), uint8(typ), k
	if !w.out.table.Add(s) {
		w.error("metric", "unknown_type")
		return
	}
	w.processed++
	if w.out.table.Size() > shipAbove {
		w.out.shipEarly()
	}
}

func (w *stateWriter) Event(e Event) {
	w.nreceived++
	w.events = append(w.events, EventToProto(&e))
}

func (w *stateWriter) ServiceCheck(c ServiceCheck) {
	w.nreceived++
	w.checks = append(w.checks, ServiceCheckToProto(&c))
}

func (w *stateWriter) Error(packetType, reason string) {
	w.nreceived++
	w.error(packetType, reason)
}

func (w *stateWriter) error(packetType, reason string) {
	if w.errs == nil {
		w.errs = map[errKey]uint64{}
	}
	w.errs[errKey{packetType, reason}]++
}

// Flush hands the counts to the output, to go with its next report, and
// sends events and service checks at once.
func (w *stateWriter) Flush() {
	if w.nreceived == 0 {
		return
	}
	w.received.Add(w.nreceived)
	w.out.processed.Add(w.processed)
	w.nreceived, w.processed = 0, 0
	if len(w.errs) > 0 {
		w.out.mu.Lock()
		for k, n := range w.errs {
			w.out.errs[k] += n
		}
		w.out.mu.Unlock()
		clear(w.errs)
	}
	if len(w.events) > 0 || len(w.checks) > 0 {
		b := &pb.Batch{Events: w.events, ServiceChecks: w.checks}
		w.events, w.checks = nil, nil
		w.out.shipMu.Lock()
		if !w.out.closed {
			w.out.ch <- b
		}
		w.out.shipMu.Unlock()
	}
}
