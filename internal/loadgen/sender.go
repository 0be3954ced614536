package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/veneurd/veneurd/sdk"
)

// Target is where the load goes: a UDP address or a unixgram socket path.
type Target struct {
	Network string // "udp" or "unixgram"
	Address string // host:port, or the socket's path
}

// ParseTarget reads udp://host:port, unixgram:///path, or a bare host:port
// (UDP), as sdk.ParseAddress does; an empty host is 127.0.0.1.
func ParseTarget(s string) (Target, error) {
	in := s
	if !strings.Contains(s, "://") {
		s = "udp://" + s
	}
	a, err := sdk.ParseAddress(s)
	if err != nil {
		return Target{}, fmt.Errorf("target: %v", err)
	}
	switch a.Network {
	case "udp":
		if a.Host == "" {
			a.Host = "127.0.0.1"
		}
	case "unixgram":
	default:
		return Target{}, fmt.Errorf("target %q: bench sends datagrams; use udp://host:port or unixgram:///path", in)
	}
	return Target{Network: a.Network, Address: a.Addr()}, nil
}

// String returns the target as ParseTarget reads it.
func (t Target) String() string { return t.Network + "://" + t.Address }

// Port returns a UDP target's port, 0 for others.
func (t Target) Port() int {
	if t.Network != "udp" {
		return 0
	}
	_, p, _ := net.SplitHostPort(t.Address)
	n, _ := strconv.Atoi(p)
	return n
}

// IsLocal tells whether the target is on this machine: a unixgram socket, or
// a host whose every address is a loopback one.
func (t Target) IsLocal() bool {
	if t.Network == "unixgram" {
		return true
	}
	host, _, _ := net.SplitHostPort(t.Address)
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// Sender writes a Ring to a Target at a paced rate.
type Sender struct {
	Target Target
	Ring   *Ring
	// Senders is the number of goroutines, each with its own socket; the
	// rate is shared evenly among them.
	Senders int
	// Batch is the most datagrams handed to one sendmmsg; 0 means 64.
	Batch int
	// NoBatch writes datagrams one at a time even where sendmmsg is
	// available.
	NoBatch bool
}

// SendResult is what one run of a Sender wrote.
type SendResult struct {
	Lines     uint64
	Datagrams uint64
	Bytes     uint64
	// Errors counts datagrams the kernel refused (such as ECONNREFUSED when
	// nothing listens); they are not in Lines or Datagrams.
	Errors  uint64
	Elapsed time.Duration
	// Batched tells whether sendmmsg was used.
	Batched bool
}

// batchWriter is ipv4.PacketConn or ipv6.PacketConn.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type worker struct {
	conn  net.Conn
	batch batchWriter // nil: write one datagram at a time
	msgs  []ipv4.Message
	res   SendResult
}

// dial opens one socket per sender.
func (s *Sender) dial() ([]*worker, error) {
	n := max(s.Senders, 1)
	ws := make([]*worker, 0, n)
	fail := func(err error) ([]*worker, error) {
		for _, w := range ws {
			w.conn.Close()
		}
		return nil, err
	}
	for range n {
		c, err := net.Dial(s.Target.Network, s.Target.Address)
		if err != nil {
			return fail(err)
		}
		w := &worker{conn: c}
		ws = append(ws, w)
		if uc, ok := c.(*net.UDPConn); ok && !s.NoBatch {
			if ra, _ := uc.RemoteAddr().(*net.UDPAddr); ra != nil && ra.IP.To4() == nil {
				w.batch = ipv6.NewPacketConn(uc)
			} else {
				w.batch = ipv4.NewPacketConn(uc)
			}
			// Each worker has its own messages: WriteBatch writes their N.
			w.msgs = make([]ipv4.Message, len(s.Ring.Datagrams))
			for i, d := range s.Ring.Datagrams {
				w.msgs[i].Buffers = [][]byte{d}
			}
		}
	}
	return ws, nil
}

// Run writes the ring for d at rate lines per second in total (0: as fast as
// the sockets take them) and returns what was written. It stops early when
// ctx ends.
//
// Pacing is a token bucket per sender, refilled from the clock: a sender
// writes as many whole datagrams as its tokens pay for, in one sendmmsg,
// then sleeps about a millisecond. The bucket holds at most 5 ms of tokens,
// so a stalled sender does not catch up in one burst. The rate is open-loop:
// it does not slow down when the target falls behind.
func (s *Sender) Run(ctx context.Context, rate float64, d time.Duration) (SendResult, error) {
	if s.Ring == nil || len(s.Ring.Datagrams) == 0 {
		return SendResult{}, errors.New("nothing to send: empty ring")
	}
	ws, err := s.dial()
	if err != nil {
		return SendResult{}, err
	}
	defer func() {
		for _, w := range ws {
			w.conn.Close()
		}
	}()
	batch := s.Batch
	if batch <= 0 {
		batch = 64
	}
	perSender := rate / float64(len(ws))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, s.Ring, i*len(s.Ring.Datagrams)/len(ws), batch, perSender, start, deadline)
		}()
	}
	wg.Wait()
	out := SendResult{Elapsed: time.Since(start), Batched: ws[0].batch != nil}
	for _, w := range ws {
		out.Lines += w.res.Lines
		out.Datagrams += w.res.Datagrams
		out.Bytes += w.res.Bytes
		out.Errors += w.res.Errors
		out.Batched = out.Batched && w.batch != nil
	}
	return out, nil
}

// run is one sender's loop, starting at ring position pos.
func (w *worker) run(ctx context.Context, r *Ring, pos, batch int, rate float64, start, deadline time.Time) {
	done := ctx.Done()
	burst := max(rate*0.005, float64(r.MaxLines()))
	tokens := float64(r.Lines[pos]) // the first datagram leaves at once
	last := start
	for {
		select {
		case <-done:
			return
		default:
		}
		now := time.Now()
		if !now.Before(deadline) {
			return
		}
		// How many datagrams, from pos to at most the ring's end, to write.
		k := min(batch, len(r.Datagrams)-pos)
		if rate > 0 {
			tokens = min(tokens+now.Sub(last).Seconds()*rate, burst)
			last = now
			afford, lines := 0, 0
			for afford < k && float64(lines+r.Lines[pos+afford]) <= tokens {
				lines += r.Lines[pos+afford]
				afford++
			}
			if afford == 0 {
				wait := time.Duration((float64(r.Lines[pos]) - tokens) / rate * float64(time.Second))
				time.Sleep(min(max(wait, time.Millisecond), deadline.Sub(now)))
				continue
			}
			k = afford
		}
		sent, failed := w.write(r, pos, k)
		for i := pos; i < pos+sent+failed; i++ {
			if i < pos+sent {
				w.res.Lines += uint64(r.Lines[i])
				w.res.Bytes += uint64(len(r.Datagrams[i]))
			}
			tokens -= float64(r.Lines[i])
		}
		w.res.Datagrams += uint64(sent)
		w.res.Errors += uint64(failed)
		pos += sent + failed
		if pos >= len(r.Datagrams) {
			pos = 0
		}
	}
}

// write writes datagrams pos..pos+k-1 and returns how many were written and
// how many were refused (at most one: the one the error came with).
func (w *worker) write(r *Ring, pos, k int) (sent, failed int) {
	if w.batch != nil {
		n, err := w.batch.WriteBatch(w.msgs[pos:pos+k], 0)
		if err == nil {
			return n, 0
		}
		if n == 0 && errors.Is(err, syscall.ENOSYS) {
			w.batch = nil // no sendmmsg here: write one at a time from now on
			return 0, 0
		}
		n = max(n, 0)
		if n < k {
			return n, 1
		}
		return n, 0
	}
	for i := pos; i < pos+k; i++ {
		if _, err := w.conn.Write(r.Datagrams[i]); err != nil {
			return i - pos, 1
		}
	}
	return k, 0
}
