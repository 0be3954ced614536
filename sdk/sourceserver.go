package sdk

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/plugins/routers/match"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// A source process aggregates what it reads for the interval in progress and
// hands the state over when veneurd cuts the interval (Source.Cut, a stream
// of packed records, a few per series rather than one per sample): streaming
// samples across the process boundary costs more than aggregating them. The
// Run stream carries the rest: counts (lines received, samples processed,
// errors) every reportEvery, so the daemon's self-metrics stay current
// between flushes, events and service checks, and a request to be cut early
// when the state outgrows its budget.
//
// A Writer packs samples into a frame. A frame that fills up, which happens
// only under heavy traffic, goes to the output's aggregating goroutine, so
// that reading and parsing go on on one core while another aggregates; what
// a Writer holds when the source calls Flush is aggregated on the spot,
// which at ordinary rates costs no hand-over and no wake-up.
const (
	// A frame is full at frameSamples samples or frameBytes bytes. Frame
	// buffers start at an eighth of that, grow as they must, and go back to
	// the output to be reused once aggregated: a Writer holds one only
	// while it has samples.
	frameSamples = 8192
	frameBytes   = 1 << 19
	// queuedFrames is how many full frames may wait for the aggregating
	// goroutine; past that a Writer aggregates its frame itself.
	queuedFrames = 8
	// maxStateBytes bounds a State message, well under gRPC's 4 MiB.
	maxStateBytes = 1 << 20
	// cutAbove is the state a source holds before it asks to be cut within
	// the interval: a source that sees a million series keeps a few tens of
	// megabytes of them, not all.
	cutAbove = 24 << 20
	// reportEvery is how often counts are sent when there are any.
	reportEvery = 200 * time.Millisecond
)

type sourceServer struct {
	pb.UnimplementedSourceServer
	impl Source

	mu   sync.Mutex
	stop context.CancelFunc // of the Run in progress
	// out is the latest Run's output. It outlives its Run: the host cuts
	// once more after Run ends, to collect the state the source still holds.
	out *output
	// tap is the tap in effect, which each Run's output starts with.
	tap *tapFilter
	// stats is the plugin's Env.Stats, whose counts each Run's reports
	// carry.
	stats *Stats
}

func (s *sourceServer) Tap(_ context.Context, req *pb.TapRequest) (*pb.Empty, error) {
	f, err := newTapFilter(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	s.tap = f
	if s.out != nil {
		s.out.tap.Store(f)
	}
	s.mu.Unlock()
	return &pb.Empty{}, nil
}

func (s *sourceServer) Stop(context.Context, *pb.Empty) (*pb.Empty, error) {
	s.mu.Lock()
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	return &pb.Empty{}, nil
}

func (s *sourceServer) Cut(req *pb.CutRequest, stream pb.Source_CutServer) error {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out == nil {
		return status.Error(codes.FailedPrecondition, "the source has not run")
	}
	return out.cut(paramsFromProto(req.Params), req.IntervalEnd, func(records []byte) error {
		return stream.Send(&pb.State{Records: records})
	})
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
	drops, err := DropRulesFromProto(req.DropRules)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	out := newOutput(paramsFromProto(req.Params))
	out.setAdmit(drops, newLimiter(req.Limits))
	out.stats = s.stats
	if len(drops) > 0 {
		out.batches <- &pb.Batch{DropRulesApplied: true}
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	s.mu.Lock()
	s.stop, s.out = cancel, out
	out.tap.Store(s.tap)
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		reports := time.NewTicker(reportEvery)
		defer reports.Stop()
		ran := make(chan error, 1)
		go func() { ran <- s.impl.Run(ctx, listeners, out) }()
		for {
			select {
			case now := <-reports.C:
				out.report()
				out.procs.narrow(now)
			case err := <-ran:
				out.close() // aggregates what is left and ends the loop below
				done <- err
				return
			}
		}
	}()
	var sendErr error
	for b := range out.batches {
		if sendErr == nil {
			sendErr = stream.Send(b)
		}
	}
	if err := <-done; err != nil && ctx.Err() == nil {
		return err
	}
	return sendErr
}

// output aggregates what its Writers write into one state.Table, hands the
// table's state to each cut, and sends everything else to one Run stream.
type output struct {
	batches  chan *pb.Batch // to the Run stream
	table    *state.Table
	cutAbove int64
	work     chan work           // to the aggregating goroutine
	free     chan *state.Samples // frame buffers to reuse
	idle     chan struct{}       // closed when the aggregating goroutine has ended
	procs    *procs
	drops    match.Drops     // set before any Writer is made
	dropped  []atomic.Uint64 // by drop rule, since the last report
	limits   *limiter        // nil when the source has no series limits
	tap      atomic.Pointer[tapFilter]
	stats    *Stats // the plugin's own counts, sent with each report; may be nil

	// workMu guards workClosed: a cut must not hand a barrier to the
	// aggregating goroutine once close has ended it.
	workMu     sync.Mutex
	workClosed bool
	// sendMu guards closed: nothing is sent once batches is closed.
	sendMu sync.Mutex
	closed bool
	// cutMu makes cuts one at a time; askedCut is set once the state has
	// outgrown its budget, until the next cut. shipping is closed when the
	// cut under way has handed its state over (nil when none is).
	cutMu    sync.Mutex
	askedCut atomic.Bool
	shipping atomic.Pointer[chan struct{}]

	processed atomic.Uint64
	mu        sync.Mutex // guards received and errs
	received  map[string]*atomic.Uint64
	errs      map[errKey]uint64
}

type errKey struct{ packetType, reason string }

// work is a full frame to aggregate, or a barrier to close once the frames
// before it are aggregated.
type work struct {
	frame   *state.Samples
	barrier chan struct{}
}

func newOutput(p state.Params) *output {
	o := &output{
		batches:  make(chan *pb.Batch, 64),
		table:    state.New(p, 16),
		cutAbove: cutAbove,
		work:     make(chan work, queuedFrames),
		free:     make(chan *state.Samples, queuedFrames+2),
		idle:     make(chan struct{}),
		procs:    newProcs(),
		received: map[string]*atomic.Uint64{},
		errs:     map[errKey]uint64{},
	}
	go o.aggregate()
	return o
}

// setAdmit has the output discard the samples of the series that drop
// rules take, and of the new series past the series limits. The table asks
// only for series it does not hold, so the series kept cost nothing per
// sample for either. A sample a rule drops does not count against the
// limits.
func (o *output) setAdmit(drops match.Drops, limits *limiter) {
	if len(drops) == 0 && limits == nil {
		return
	}
	o.drops, o.dropped, o.limits = drops, make([]atomic.Uint64, len(drops)), limits
	o.table.SetAdmit(func(h uint64, name, tags []byte) bool {
		if len(drops) > 0 {
			if i := drops.Take(name, tags); i >= 0 {
				o.dropped[i].Add(1)
				return false
			}
		}
		return limits == nil || limits.admit(h, name)
	})
}

// aggregate aggregates the full frames Writers hand over.
func (o *output) aggregate() {
	defer close(o.idle)
	for w := range o.work {
		if w.barrier != nil {
			close(w.barrier)
			continue
		}
		o.add(w.frame)
	}
}

// add aggregates a frame and keeps its buffer for reuse. Samples the table
// refuses are counted as rejected metrics, under the table's reason.
func (o *output) add(b *state.Samples) {
	n, refused := o.table.AddSamples(b)
	o.recycle(b)
	o.processed.Add(uint64(n))
	if refused != (state.Refused{}) {
		o.mu.Lock()
		refused.Each(func(reason string, n int) { o.errs[errKey{"metric", reason}] += uint64(n) })
		o.mu.Unlock()
	}
	if o.table.Size() > o.cutAbove {
		if o.askedCut.CompareAndSwap(false, true) {
			o.send(&pb.Batch{CutNow: true})
		} else {
			o.awaitShipped()
		}
	}
}

// awaitShipped holds a writer that has filled the budget again while a cut
// hands the state over, so that reading waits for the host to take what
// the source holds (the kernel then queues what clients send) rather than
// the source's memory growing with the host's delay. It waits a second at
// most, and not at all while no cut is shipping: a cut's first step waits
// for the frames handed over before it, which may be this writer's.
func (o *output) awaitShipped() {
	if ch := o.shipping.Load(); ch != nil {
		select {
		case <-*ch:
		case <-time.After(time.Second):
		}
	}
}

// handOver gives a full frame to the aggregating goroutine, or aggregates
// it here when that one is behind.
func (o *output) handOver(b *state.Samples) {
	o.procs.busy()
	select {
	case o.work <- work{frame: b}:
	default:
		o.add(b)
	}
}

// recycle keeps a frame buffer for reuse, unless enough are kept.
func (o *output) recycle(b *state.Samples) {
	b.Reset()
	select {
	case o.free <- b:
	default:
	}
}

// buffer returns a frame buffer, reused if one is free.
func (o *output) buffer() *state.Samples {
	select {
	case b := <-o.free:
		return b
	default:
		return state.NewSamples(frameBytes / 8)
	}
}

func (o *output) Writer(protocol string) Writer {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.received[protocol]
	if !ok {
		r = new(atomic.Uint64)
		o.received[protocol] = r
	}
	return &stateWriter{out: o, received: r}
}

// cut hands the interval's state to send, a part at a time, and starts the
// next interval with settings next; intervalEnd says the cut ends the
// interval rather than empties the source early. A part send fails to
// deliver is lost with the cut's caller; the rest is still taken, so that
// the next cut starts empty.
func (o *output) cut(next state.Params, intervalEnd bool, send func(records []byte) error) error {
	o.cutMu.Lock()
	defer o.cutMu.Unlock()
	o.settle()
	shipped := make(chan struct{})
	o.shipping.Store(&shipped)
	defer func() {
		o.shipping.Store(nil)
		close(shipped)
	}()
	var err error
	o.table.Ship(maxStateBytes, func(records []byte) {
		if err == nil {
			err = send(records)
		}
	})
	o.table.SetParams(next)
	if intervalEnd && o.limits != nil {
		o.limits.endInterval()
	}
	o.askedCut.Store(false)
	return err
}

// settle returns once the frames handed over so far are aggregated.
func (o *output) settle() {
	o.workMu.Lock()
	if o.workClosed { // close has aggregated every frame
		o.workMu.Unlock()
		return
	}
	aggregated := make(chan struct{})
	o.work <- work{barrier: aggregated}
	o.workMu.Unlock()
	<-aggregated
}

// send sends b on the Run stream, unless it has closed.
func (o *output) send(b *pb.Batch) {
	o.sendMu.Lock()
	if !o.closed {
		o.batches <- b
	}
	o.sendMu.Unlock()
}

// report sends the counts gathered since the last report, if any.
func (o *output) report() {
	o.sendMu.Lock()
	defer o.sendMu.Unlock()
	if !o.closed {
		o.sendReport()
	}
}

// sendReport sends the counts; sendMu is held. Received lines are counted
// by protocol, one Batch each; the first also carries the other counts.
func (o *output) sendReport() {
	b := &pb.Batch{Processed: o.processed.Swap(0)}
	o.mu.Lock()
	for k, n := range o.errs {
		b.Errors = append(b.Errors, &pb.ErrorCount{PacketType: k.packetType, Reason: k.reason, Count: n})
		delete(o.errs, k)
	}
	for i := range o.dropped {
		if n := o.dropped[i].Swap(0); n > 0 {
			b.Dropped = append(b.Dropped, &pb.RuleCount{Rule: o.drops[i].Name, Count: n})
		}
	}
	if o.limits != nil {
		o.limits.report(b)
	}
	if f := o.tap.Load(); f != nil {
		f.report(b)
	}
	b.Counts = o.stats.Take()
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
	if b.Processed > 0 || b.Received > 0 || len(b.Errors) > 0 || len(b.Dropped) > 0 || b.SeriesLimited > 0 ||
		len(b.Tapped) > 0 || b.TapLost > 0 || len(b.Counts) > 0 {
		o.batches <- b
	}
	for _, m := range more {
		o.batches <- m
	}
}

// close aggregates what is left, sends the last counts and closes the Run
// stream. Run has returned, so no Writer writes any more. The state stays
// in the table for the host's last cut.
func (o *output) close() {
	o.workMu.Lock()
	o.workClosed = true
	close(o.work)
	o.workMu.Unlock()
	<-o.idle
	o.procs.restore()
	o.sendMu.Lock()
	o.sendReport()
	o.closed = true
	close(o.batches)
	o.sendMu.Unlock()
}

// stateWriter is one goroutine's Writer: samples go into a frame, counts,
// events and service checks wait for Flush.
type stateWriter struct {
	out       *output
	received  *atomic.Uint64
	fw        *state.Samples // nil while the Writer holds no sample
	nreceived uint64
	events    []*pb.Event
	checks    []*pb.ServiceCheck
	errs      map[errKey]uint64
}

func (w *stateWriter) Metric(typ MetricType, scope Scope, name, tags []byte, value, rate float64) {
	w.nreceived++
	if f := w.out.tap.Load(); f != nil {
		f.offer(typ, name, tags, value, rate)
	}
	if w.fw == nil {
		w.fw = w.out.buffer()
	}
	if err := w.fw.Append(uint8(typ), uint8(scope), name, tags, value, rate); err != nil {
		w.error("metric", "too_long")
		return
	}
	if w.fw.Len() >= frameSamples || w.fw.Size() >= frameBytes {
		w.out.handOver(w.fw)
		w.fw = nil
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

// Flush aggregates the samples the Writer holds, hands the counts to the
// output, to go with its next report, and sends events and service checks
// at once.
func (w *stateWriter) Flush() {
	if w.nreceived == 0 {
		return
	}
	if w.fw != nil && w.fw.Len() > 0 {
		w.out.add(w.fw)
		w.fw = nil
	}
	w.received.Add(w.nreceived)
	w.nreceived = 0
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
		w.out.send(b)
	}
}
