package delivery

import (
	"context"
	"errors"
	"sync"

	"github.com/veneurd/veneurd/sdk"
)

// Encoder builds request bodies of one protocol, reusing its buffer.
type Encoder interface {
	Reset()       // empties it
	Len() int     // items appended since Reset
	Size() int    // bytes of the body so far
	Body() []byte // the complete body, valid until the next Reset or append
}

// Limits bound a body: it is sent once it holds Items items (0: no
// bound) or Bytes bytes.
type Limits struct {
	Bytes int
	Items int
}

// Encode appends each point to e with add and sends a body to dest through
// q whenever it reaches a limit, and the last one at the end. add reports
// false for a point the protocol cannot hold; it returns true without
// appending a point it leaves to another body (a service check among
// series). Encode counts the points add refused as dropped (ReasonInvalid)
// and returns their number.
func Encode[E Encoder](q *Queue, dest *Dest, e E, points []sdk.Point, l Limits, add func(E, *sdk.Point) bool) int {
	e.Reset()
	var invalid int
	for i := range points {
		if !add(e, &points[i]) {
			invalid++
			continue
		}
		if e.Size() >= l.Bytes || (l.Items > 0 && e.Len() >= l.Items) {
			q.Send(dest, e.Body(), e.Len())
			e.Reset()
		}
	}
	if e.Len() > 0 {
		q.Send(dest, e.Body(), e.Len())
		e.Reset()
	}
	q.Drop(ReasonInvalid, invalid)
	return invalid
}

// Running is a network sink's delivery between Start and Stop, for a sink
// to embed: Begin in Start, Do in each Flush, End in Stop.
type Running struct {
	mu     sync.Mutex // one flush at a time: its encoders are the sink's
	queue  *Queue
	closer func()
}

// Begin starts delivering through t; End calls closer (nil: nothing) after
// the queue stopped.
func (r *Running) Begin(t Transport, cfg QueueConfig, closer func()) {
	q := NewQueue(t, cfg)
	r.mu.Lock()
	r.queue, r.closer = q, closer
	r.mu.Unlock()
}

// BeginHTTP begins delivering over HTTP with h, as checked into s, for the
// plugin env describes, with agent as the User-Agent. secrets are scrubbed
// from every error and log line (the configured headers' values always
// are).
func (r *Running) BeginHTTP(h HTTP, s Settings, env sdk.Env, agent string, secrets ...string) error {
	c, err := NewClient(h, s, agent, secrets...)
	if err != nil {
		return err
	}
	r.Begin(c, QueueConfig{Settings: s, Stats: env.Stats, Log: env.Logger, Secrets: c.secrets}, c.Close)
	return nil
}

// Do runs fn with the queue, one flush at a time, each a new period of the
// queue's logs (Queue.Tick); it fails when the sink is not started.
func (r *Running) Do(fn func(q *Queue)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queue == nil {
		return errors.New("the sink is not started")
	}
	r.queue.Tick()
	fn(r.queue)
	return nil
}

// End delivers what is buffered until ctx ends (see Queue.Stop), then
// closes the transport.
func (r *Running) End(ctx context.Context) {
	r.mu.Lock()
	q, closer := r.queue, r.closer
	r.queue, r.closer = nil, nil
	r.mu.Unlock()
	if q == nil {
		return
	}
	q.Stop(ctx)
	if closer != nil {
		closer()
	}
}
