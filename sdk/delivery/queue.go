package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// Payload is one request body and what it holds.
type Payload struct {
	Dest   *Dest  // where it goes; nil for transports with one destination
	Body   []byte // as sent: compressed when Dest says so; owned by the Queue
	Points int    // points it holds, counted when it is dropped

	seq     uint64 // order of arrival
	dropped bool   // made room for newer payloads while in flight
}

// Transport sends one payload once. Its error says what to do next: a
// *RetryError is retried, any other error drops the payload as rejected.
// Send must give up when ctx ends.
type Transport interface {
	Send(ctx context.Context, p *Payload) error
}

// RetryError is a failure worth retrying: the receiver was unreachable, timed
// out, or asked to be called again later.
type RetryError struct {
	Err   error
	After time.Duration // the receiver's Retry-After, 0 if none
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// Retry marks err as worth retrying after the backoff, or after after when
// the receiver said so.
func Retry(err error, after time.Duration) error { return &RetryError{Err: err, After: after} }

// QueueConfig is what a Queue needs besides its transport.
type QueueConfig struct {
	Settings
	Stats *sdk.Stats
	Log   hclog.Logger
	// Secrets are scrubbed from every error the Queue logs.
	Secrets []string
}

// firstBackoff is the wait before the first retry; each failure in a row
// doubles it, up to MaxRetryBackoff, and each wait is jittered by up to a
// half so that sinks that failed together do not retry together.
const firstBackoff = 100 * time.Millisecond

// Queue delivers payloads in order, MaxInFlight at a time, holding up to
// MaxBufferedPoints points. Safe for concurrent use.
type Queue struct {
	t       Transport
	cfg     QueueConfig
	dropped map[string]*sdk.Count // by reason
	retries *sdk.Count

	mu       sync.Mutex
	waiting  []*Payload // oldest first
	inFlight map[*Payload]bool
	buffered int       // points waiting or in flight, less those marked dropped
	seq      uint64    // of the last payload added
	failures int       // in a row
	pause    time.Time // no request starts before it
	wake     chan struct{}
	stopping bool
	logged   bool // a rejection was logged since the last Tick
	warned   bool // an outage was logged since the last Tick

	ctx    context.Context // ends when the Queue has stopped
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// NewQueue returns a Queue sending through t, and starts its senders.
func NewQueue(t Transport, cfg QueueConfig) *Queue {
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxBufferedPoints <= 0 {
		cfg.MaxBufferedPoints = DefaultMaxBufferedPoints
	}
	if cfg.MaxRetryBackoff <= 0 {
		cfg.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	q := &Queue{t: t, cfg: cfg, inFlight: map[*Payload]bool{}, wake: make(chan struct{}),
		retries: cfg.Stats.Counter(Retries), dropped: map[string]*sdk.Count{}}
	for _, r := range []string{ReasonBufferFull, ReasonRejected, ReasonInvalid, ReasonShutdown} {
		q.dropped[r] = cfg.Stats.Counter(MetricsDropped, "reason:"+r)
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	for range cfg.MaxInFlight {
		q.done.Go(q.send)
	}
	return q
}

// Drop counts n points dropped for reason without sending them, such as
// points the protocol cannot hold (ReasonInvalid).
func (q *Queue) Drop(reason string, n int) {
	if n > 0 {
		q.dropped[reason].Add(uint64(n))
	}
}

// Send compresses body as dest says (none for a nil dest) and queues it
// holding points points. body may be reused once Send returns.
func (q *Queue) Send(dest *Dest, body []byte, points int) {
	c := None
	if dest != nil {
		c = dest.Compression
	}
	q.Add(&Payload{Dest: dest, Body: c.Compress(body), Points: points})
}

// Add queues p, taking ownership of its Body. When the buffer would then
// hold more than MaxBufferedPoints, the oldest payloads are dropped, and
// counted, until it does not.
func (q *Queue) Add(p *Payload) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopping {
		q.Drop(ReasonShutdown, p.Points)
		return
	}
	q.seq++
	p.seq = q.seq
	q.waiting = append(q.waiting, p)
	q.buffered += p.Points
	var lost int
	for q.buffered > q.cfg.MaxBufferedPoints {
		// The oldest that waits goes first; then the oldest in flight,
		// which is dropped if its request fails; p itself last, when it
		// alone is larger than the buffer.
		old := p
		if q.waiting[0] != p {
			old = q.waiting[0]
		} else if f := q.oldestInFlight(); f != nil {
			f.dropped = true
			q.buffered -= f.Points
			continue
		}
		q.waiting = slices.DeleteFunc(q.waiting, func(w *Payload) bool { return w == old })
		q.buffered -= old.Points
		lost += old.Points
	}
	if lost > 0 {
		q.Drop(ReasonBufferFull, lost)
		q.cfg.Log.Error("receiver down or slow for longer than the buffer holds: dropped the oldest points",
			"points", lost, "max_buffered_points", q.cfg.MaxBufferedPoints)
	}
	q.signal()
}

func (q *Queue) oldestInFlight() *Payload {
	var old *Payload
	for p := range q.inFlight {
		if !p.dropped && (old == nil || p.seq < old.seq) {
			old = p
		}
	}
	return old
}

// signal wakes the senders; q.mu is held.
func (q *Queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// Buffered returns the points waiting or in flight.
func (q *Queue) Buffered() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.buffered
}

// Tick starts a new period for the Queue's logs: a rejection and an outage
// are each logged once per period. Sinks call it at each flush, so that a
// receiver failing every request logs once per interval.
func (q *Queue) Tick() {
	q.mu.Lock()
	q.logged, q.warned = false, false
	q.mu.Unlock()
}

// send is one sender: it takes the oldest waiting payload whenever no
// backoff is in force, and sends it.
func (q *Queue) send() {
	for {
		p := q.next()
		if p == nil {
			return
		}
		q.finish(p, q.t.Send(q.ctx, p))
	}
}

// next waits for a payload to send and for any backoff to pass; nil once
// the Queue has stopped, or is stopping with nothing left.
func (q *Queue) next() *Payload {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.ctx.Err() != nil || (q.stopping && len(q.waiting) == 0) {
			return nil
		}
		wait := time.Until(q.pause)
		if len(q.waiting) > 0 && wait <= 0 {
			p := q.waiting[0]
			q.waiting = q.waiting[1:]
			q.inFlight[p] = true
			return p
		}
		wake := q.wake
		q.mu.Unlock()
		var timer <-chan time.Time
		if len(q.waiting) > 0 && wait > 0 {
			t := time.NewTimer(wait)
			timer = t.C
			select {
			case <-wake:
			case <-timer:
			case <-q.ctx.Done():
			}
			t.Stop()
		} else {
			select {
			case <-wake:
			case <-q.ctx.Done():
			}
		}
		q.mu.Lock()
	}
}

// finish records how sending p went.
func (q *Queue) finish(p *Payload, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, p)
	var retry *RetryError
	switch {
	case err == nil:
		if !p.dropped {
			q.buffered -= p.Points
		}
		if q.failures > 0 {
			q.cfg.Log.Info("receiver back: delivering", "failures", q.failures, "buffered_points", q.buffered)
		}
		q.failures = 0
	case errors.As(err, &retry) && q.ctx.Err() == nil:
		q.retries.Add(1)
		q.failures++
		backoff := retry.After
		if backoff <= 0 {
			backoff = min(firstBackoff<<min(q.failures-1, 20), q.cfg.MaxRetryBackoff)
			backoff += rand.N(backoff/2 + 1)
		}
		if until := time.Now().Add(backoff); until.After(q.pause) {
			q.pause = until
		}
		if p.dropped {
			q.Drop(ReasonBufferFull, p.Points)
			break
		}
		if !q.warned {
			q.warned = true
			q.cfg.Log.Warn("receiver unavailable: retrying, later requests wait behind this one",
				"error", q.scrub(err.Error()), "retry_in", backoff.Round(time.Millisecond), "buffered_points", q.buffered)
		}
		// Back to its place in line: first, unless an older one failed too.
		i, _ := slices.BinarySearchFunc(q.waiting, p.seq, func(w *Payload, seq uint64) int {
			return cmp.Compare(w.seq, seq)
		})
		q.waiting = slices.Insert(q.waiting, i, p)
	case q.ctx.Err() != nil:
		if !p.dropped {
			q.buffered -= p.Points
		}
		q.Drop(ReasonShutdown, p.Points)
	default:
		if !p.dropped {
			q.buffered -= p.Points
		}
		q.Drop(ReasonRejected, p.Points)
		if !q.logged {
			q.logged = true
			q.cfg.Log.Error("receiver rejected a request: its points are dropped, not retried",
				"points", p.Points, "error", q.scrub(err.Error()))
		}
	}
	q.signal()
}

// scrub removes the secrets from s.
func (q *Queue) scrub(s string) string { return Scrub(s, q.cfg.Secrets) }

// Scrub replaces each of secrets in s.
func Scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "(sensitive)")
		}
	}
	return s
}

// Stop delivers what is buffered until ctx ends, then gives up on the rest,
// counting it as dropped at shutdown. Nothing may be added after Stop.
func (q *Queue) Stop(ctx context.Context) {
	q.mu.Lock()
	q.stopping = true
	q.signal()
	q.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		q.done.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		q.cancel()
		<-idle
	}
	q.cancel()
	q.mu.Lock()
	defer q.mu.Unlock()
	var lost int
	for _, p := range q.waiting {
		lost += p.Points
	}
	q.waiting = nil
	if lost > 0 {
		q.Drop(ReasonShutdown, lost)
		q.cfg.Log.Error("stopped before the receiver took everything: dropped", "points", lost)
	}
}

// String describes the Queue's state, for logs and tests.
func (q *Queue) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Sprintf("%d points buffered in %d waiting and %d in flight", q.buffered, len(q.waiting), len(q.inFlight))
}
