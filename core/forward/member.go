package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/core/forward/forwardpb"
)

// Backoff between attempts at a batch: doubling from firstBackoff to
// maxBackoff.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// outgoing is a batch waiting for its member, with the members that failed
// it before: it never fails over to one of them again.
type outgoing struct {
	*forwardpb.Batch
	tried []string
}

// member sends the batches of one member of the tier, in order, one at a
// time, each until it is acknowledged; when the member has been unreachable
// for failoverAfter attempts in a row, it hands its batches to failover
// instead, which sends each series to its next choice.
type member struct {
	addr   string
	sender string
	conn   *grpc.ClientConn
	send   func(context.Context, *forwardpb.Batch) error
	f      *Forwarder

	mu      sync.Mutex
	pending []*outgoing // made, not yet acknowledged, oldest first
	sending *outgoing   // pending[0] while a Send of it is under way
	seq     uint64
	wake    chan struct{}
	stop    bool // send what is pending, then end
	retired bool // hand what is pending to failover, then end

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// newMember dials addr and starts its sender.
func (f *Forwarder) newMember(addr string) (*member, error) {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, f.cfg.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", addr, err)
	}
	var id [8]byte
	rand.Read(id[:])
	m := &member{addr: addr, sender: f.cfg.Hostname + "/" + hex.EncodeToString(id[:]), conn: conn, f: f,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	client := forwardpb.NewForwardClient(conn)
	m.send = func(ctx context.Context, b *forwardpb.Batch) error {
		_, err := client.Send(ctx, b)
		return err
	}
	if f.cfg.Protocol == ProtocolVeneur {
		m.send = veneurSender(conn)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	go m.run()
	return m, nil
}

// enqueue queues the records of an interval as a batch of the next
// sequence number, and drops the oldest intervals past the buffer.
func (m *member) enqueue(interval int64, records []byte, tried []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	m.pending = append(m.pending, &outgoing{&forwardpb.Batch{Sender: m.sender, Seq: m.seq, Interval: interval, Records: records}, tried})
	// The oldest interval goes, but for a batch being sent, which may be
	// delivered yet: it stays, and the drop counts exactly what was not.
	spare := 0
	if m.sending != nil {
		spare = 1
	}
	m.pending = trimIntervals(m.pending, m.f.cfg.MaxBufferedIntervals, spare, func(oldest int64, n int) {
		m.f.errors("buffer_full").Add(uint64(n))
		m.f.log.Error("upstream down for longer than the buffer holds: dropped an interval", "address", m.addr,
			"interval", oldest, "batches", n, "max_buffered_intervals", m.f.cfg.MaxBufferedIntervals)
	})
	m.f.setBuffered(m, intervals(m.pending))
	m.poke()
}

func (m *member) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// trimIntervals drops the oldest intervals of batches, which are in order,
// while more than max are held, sparing the first spare batches; dropped is
// told of each interval dropped and how many batches it had.
func trimIntervals(batches []*outgoing, max, spare int, dropped func(interval int64, n int)) []*outgoing {
	for intervals(batches) > max && spare < len(batches) {
		oldest := batches[spare].Interval
		n := spare
		for n < len(batches) && batches[n].Interval == oldest {
			n++
		}
		dropped(oldest, n-spare)
		batches = append(batches[:spare], batches[n:]...)
	}
	return batches
}

// intervals counts the distinct intervals of batches, which are in order.
func intervals(batches []*outgoing) int {
	n := 0
	for i, b := range batches {
		if i == 0 || b.Interval != batches[i-1].Interval {
			n++
		}
	}
	return n
}

func (m *member) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// run sends the oldest pending batch until it is acknowledged, then the
// next, until stopped or retired.
func (m *member) run() {
	defer close(m.done)
	backoff := firstBackoff
	failures := 0 // attempts in a row that found the member unreachable
	for {
		m.mu.Lock()
		if m.retired {
			taken := m.pending
			m.pending, m.sending = nil, nil
			m.mu.Unlock()
			m.f.setBuffered(m, 0)
			m.f.failover(m, taken)
			return
		}
		var b *outgoing
		if len(m.pending) > 0 {
			b = m.pending[0]
		}
		m.sending = b
		stop := m.stop
		m.mu.Unlock()
		if b == nil {
			if stop {
				return
			}
			select {
			case <-m.wake:
			case <-m.ctx.Done():
				return
			}
			continue
		}
		begin := time.Now()
		ctx, cancel := context.WithTimeout(m.ctx, m.f.cfg.Timeout)
		err := m.send(ctx, b.Batch)
		cancel()
		if err == nil || status.Code(err) == codes.InvalidArgument {
			// Acknowledged, or refused as broken: sending it again would
			// not mend it.
			if err != nil {
				m.f.errors("refused").Inc()
				m.f.log.Error("upstream refused a batch: dropped", "address", m.addr, "seq", b.Seq, "error", err)
			}
			m.f.duration.Set(float64(time.Since(begin).Nanoseconds()))
			m.mu.Lock()
			m.pending = m.pending[1:] // b: enqueue never drops the batch being sent
			m.sending = nil
			n := intervals(m.pending)
			m.mu.Unlock()
			m.f.setBuffered(m, n)
			backoff, failures = firstBackoff, 0
			continue
		}
		if m.ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		m.sending = nil
		m.mu.Unlock()
		m.f.errors(cause(err)).Inc()
		// Unavailable: the batch did not reach the member (the connection
		// was refused or broke), so it may go to another one without being
		// counted twice. Other errors (a deadline) leave that in doubt:
		// such a batch is only ever sent again here, and the member's
		// receiver merges it once.
		if status.Code(err) == codes.Unavailable {
			failures++
			if failures >= m.f.cfg.FailoverAfter && m.f.failoverOne(m, b) {
				continue
			}
		}
		m.f.log.Warn("upstream unavailable: retrying", "address", m.addr, "seq", b.Seq, "error", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-m.wake: // retired, or stopping: no need to wait
		case <-m.ctx.Done():
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// take removes b, the oldest pending batch, once failover placed it
// elsewhere.
func (m *member) take(b *outgoing) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) > 0 && m.pending[0] == b {
		m.pending = m.pending[1:]
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

// retire makes the member hand every batch it holds to failover once its
// send under way, if any, is done; it is then closed.
func (m *member) retire() {
	m.mu.Lock()
	m.retired = true
	m.mu.Unlock()
	m.poke()
	go func() {
		<-m.done
		m.cancel()
		m.conn.Close()
	}()
}

// shutdown sends what is pending until ctx ends, then gives up on the rest
// and returns how many batches that was.
func (m *member) shutdown(ctx context.Context) int {
	m.mu.Lock()
	m.stop = true
	m.mu.Unlock()
	m.poke()
	select {
	case <-m.done:
	case <-ctx.Done():
	}
	m.cancel()
	<-m.done
	m.mu.Lock()
	n := len(m.pending)
	m.pending = nil
	m.mu.Unlock()
	m.conn.Close()
	return n
}
