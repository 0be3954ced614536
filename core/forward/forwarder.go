package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/telemetry"
)

// Config is what a Forwarder needs.
type Config struct {
	// Address is the upstream's gRPC address, host:port.
	Address string
	// Hostname goes into the sender's identity.
	Hostname string
	// MaxBufferedIntervals is how many intervals' batches are held while
	// the upstream is down; past it the oldest interval's are dropped.
	MaxBufferedIntervals int
	// Timeout bounds one Send.
	Timeout time.Duration
	// DialOptions are added to the connection's (TLS credentials).
	DialOptions []grpc.DialOption
}

// Defaults of Config.
const (
	DefaultMaxBufferedIntervals = 10
	DefaultTimeout              = 10 * time.Second
)

// Backoff between attempts at a batch: doubling from firstBackoff to
// maxBackoff.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// Forwarder sends each interval's records upstream, in order, one batch at
// a time, until each is acknowledged. Safe for concurrent use.
type Forwarder struct {
	cfg    Config
	sender string
	conn   *grpc.ClientConn
	client forwardpb.ForwardClient
	log    hclog.Logger

	errors   func(cause string) telemetry.Counter
	duration telemetry.Gauge
	buffered telemetry.Gauge

	mu      sync.Mutex
	frames  [][]byte           // of the interval being flushed
	pending []*forwardpb.Batch // made, not yet acknowledged, oldest first
	sending *forwardpb.Batch   // pending[0] while a Send of it is under way
	seq     uint64
	wake    chan struct{}
	stop    bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Forwarder sending to cfg.Address and starts its sender.
func New(cfg Config, tel *telemetry.Registry, log hclog.Logger) (*Forwarder, error) {
	if cfg.MaxBufferedIntervals <= 0 {
		cfg.MaxBufferedIntervals = DefaultMaxBufferedIntervals
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", cfg.Address, err)
	}
	var id [8]byte
	rand.Read(id[:])
	f := &Forwarder{
		cfg: cfg, sender: cfg.Hostname + "/" + hex.EncodeToString(id[:]), conn: conn,
		client: forwardpb.NewForwardClient(conn), log: log,
		errors:   func(cause string) telemetry.Counter { return tel.Counter(ForwardErrors, "cause:"+cause) },
		duration: tel.Gauge(ForwardDuration), buffered: tel.Gauge(BufferedIntervals),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	go f.run()
	return f, nil
}

// Add takes a frame of records of the interval being flushed (the
// aggregator's forward callback); it is sent at EndInterval.
func (f *Forwarder) Add(frame []byte) {
	f.mu.Lock()
	f.frames = append(f.frames, frame)
	f.mu.Unlock()
}

// EndInterval makes the frames added since the last call the batches of
// the interval that ended at ts, and queues them. When more than
// MaxBufferedIntervals intervals would then wait, the oldest interval's
// batches are dropped and counted (cause:buffer_full).
func (f *Forwarder) EndInterval(ts int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fr := range f.frames {
		f.seq++
		f.pending = append(f.pending, &forwardpb.Batch{Sender: f.sender, Seq: f.seq, Interval: ts, Records: fr})
	}
	f.frames = nil
	for intervals(f.pending) > f.cfg.MaxBufferedIntervals {
		// The oldest interval goes, but for a batch being sent, which
		// may be delivered yet: it stays, and the drop counts exactly
		// what was not.
		first := 0
		if f.sending != nil {
			first = 1
		}
		if first >= len(f.pending) {
			break
		}
		oldest := f.pending[first].Interval
		n := first
		for n < len(f.pending) && f.pending[n].Interval == oldest {
			n++
		}
		f.errors("buffer_full").Add(uint64(n - first))
		f.log.Error("upstream down for longer than the buffer holds: dropped an interval", "interval", oldest,
			"batches", n-first, "max_buffered_intervals", f.cfg.MaxBufferedIntervals)
		f.pending = append(f.pending[:first], f.pending[n:]...)
	}
	f.buffered.Set(float64(intervals(f.pending)))
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// intervals counts the distinct intervals of batches, which are in order.
func intervals(batches []*forwardpb.Batch) int {
	n := 0
	for i, b := range batches {
		if i == 0 || b.Interval != batches[i-1].Interval {
			n++
		}
	}
	return n
}

// Pending returns the batches not yet acknowledged.
func (f *Forwarder) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// run sends the oldest pending batch until it is acknowledged, then the
// next, until Stop.
func (f *Forwarder) run() {
	defer close(f.done)
	backoff := firstBackoff
	for {
		f.mu.Lock()
		var b *forwardpb.Batch
		if len(f.pending) > 0 {
			b = f.pending[0]
		}
		f.sending = b
		stop := f.stop
		f.mu.Unlock()
		if b == nil {
			if stop {
				return
			}
			select {
			case <-f.wake:
			case <-f.ctx.Done():
				return
			}
			continue
		}
		begin := time.Now()
		ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Timeout)
		_, err := f.client.Send(ctx, b)
		cancel()
		if err == nil || status.Code(err) == codes.InvalidArgument {
			// Acknowledged, or refused as broken: sending it again would
			// not mend it.
			if err != nil {
				f.errors("refused").Inc()
				f.log.Error("upstream refused a batch: dropped", "seq", b.Seq, "error", err)
			}
			f.duration.Set(float64(time.Since(begin).Nanoseconds()))
			f.mu.Lock()
			f.pending = f.pending[1:] // b: EndInterval never drops the batch being sent
			f.sending = nil
			f.buffered.Set(float64(intervals(f.pending)))
			f.mu.Unlock()
			backoff = firstBackoff
			continue
		}
		if f.ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		f.sending = nil
		f.mu.Unlock()
		f.errors(cause(err)).Inc()
		f.log.Warn("upstream unavailable: retrying", "address", f.cfg.Address, "seq", b.Seq, "error", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-f.ctx.Done():
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// cause names a send error for the cause tag.
func cause(err error) string {
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return "deadline_exceeded"
	case codes.Unavailable:
		return "unavailable"
	}
	return "send"
}

// Stop sends what is pending until ctx ends, then gives up on the rest,
// counting it (cause:shutdown), and closes the connection.
func (f *Forwarder) Stop(ctx context.Context) {
	f.mu.Lock()
	f.stop = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	select {
	case <-f.done:
	case <-ctx.Done():
	}
	f.cancel()
	<-f.done
	f.mu.Lock()
	if n := len(f.pending); n > 0 {
		f.errors("shutdown").Add(uint64(n))
		f.log.Error("stopped before the upstream took every batch: dropped", "batches", n)
	}
	f.pending = nil
	f.mu.Unlock()
	f.conn.Close()
}
