package delivery

import (
	"context"

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

// HTTPSender is what an HTTP sink's Start builds: a Client and the Queue
// that sends through it.
type HTTPSender struct {
	*Queue
	client *Client
}

// StartHTTP starts delivering over HTTP with h, as checked into s, for the
// plugin env describes. secrets are scrubbed from every error and log line
// (the configured headers' values always are).
func StartHTTP(h HTTP, s Settings, env sdk.Env, agent string, secrets ...string) (*HTTPSender, error) {
	c, err := NewClient(h, s, agent, secrets...)
	if err != nil {
		return nil, err
	}
	q := NewQueue(c, QueueConfig{Settings: s, Stats: env.Stats, Log: env.Logger, Secrets: c.secrets})
	return &HTTPSender{Queue: q, client: c}, nil
}

// Stop delivers what is buffered until ctx ends (see Queue.Stop), and
// closes the connections.
func (s *HTTPSender) Stop(ctx context.Context) {
	s.Queue.Stop(ctx)
	s.client.Close()
}
