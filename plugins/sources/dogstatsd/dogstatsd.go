// Package dogstatsd is the source plugin for the DogStatsD protocol (and
// plain StatsD): metrics, events and service checks over UDP, TCP and UNIX
// sockets that veneurd opened and handed over.
package dogstatsd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/dgryski/go-metro"
	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// flushAfter bounds how long a parsed sample may wait in a reader's batch
// before it is sent to the host.
const flushAfter = 20 * time.Millisecond

// handshakeTimeout bounds a TLS handshake.
const handshakeTimeout = 10 * time.Second

// idleWake is how often an idle reader wakes to send what it holds and to
// notice that it must stop.
const idleWake = 100 * time.Millisecond

// Source reads DogStatsD traffic.
type Source struct {
	cfg Config
	log hclog.Logger
}

// New returns a dogstatsd source.
func New() *Source { return &Source{log: hclog.NewNullLogger()} }

// Config returns the defaults.
// ReadsSockets implements sdk.SocketReader: the source reads nothing but
// its listen sockets, so a block of it without one is refused.
func (s *Source) ReadsSockets() bool { return true }

func (s *Source) Config() any { return defaultConfig() }

// Configure checks and stores cfg.
func (s *Source) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := cfg.(*Config)
	if err := c.validate(); err != nil {
		return err
	}
	s.cfg = *c
	if env.Logger != nil {
		s.log = env.Logger
	}
	return nil
}

// Run reads every listener until ctx ends. The listeners are the sockets of
// the block's listen attribute, which veneurd opened; it has checked their
// addresses.
func (s *Source) Run(ctx context.Context, listeners []sdk.Listener, out sdk.Output) error {
	addrs := make([]sdk.Address, len(listeners))
	for i, l := range listeners {
		a, err := sdk.ParseAddress(l.Address)
		if err != nil {
			return err
		}
		addrs[i] = a
	}
	if len(listeners) == 0 {
		// Returning would end the process, which veneurd would restart
		// for nothing.
		s.log.Warn("no listen addresses: this source reads nothing")
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(listeners))
	for i, l := range listeners {
		a := addrs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if a.IsDatagram() {
				err = s.serveDatagrams(ctx, l, out.Writer(a.Network))
			} else {
				err = s.serveStream(ctx, l, a, out)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", l.Address, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(drain(errs)...)
}

func drain(ch chan error) []error {
	var out []error
	for e := range ch {
		out = append(out, e)
	}
	return out
}

func (s *Source) serveDatagrams(ctx context.Context, l sdk.Listener, w sdk.Writer) error {
	r, err := newBatchReader(l.File, s.cfg.MaxPacketSize+1)
	if err != nil {
		return err
	}
	if want := s.cfg.ReadBufferBytes; want > 0 {
		if got := r.setReadBuffer(want); got < want {
			s.log.Warn("the kernel granted a smaller socket receive buffer than configured; raise net.core.rmem_max",
				"listener", l.Address, "read_buffer_bytes", want, "granted", got)
		}
	}
	h := handler{w: w, log: s.log}
	// Batches are sent once they are flushAfter old while datagrams flow,
	// and when the socket has been idle for idleWake.
	last := time.Now()
	for ctx.Err() == nil {
		n, err := r.read()
		if err == errEmpty {
			ready, err := r.wait(idleWake)
			if err != nil {
				w.Flush()
				return err
			}
			if !ready {
				w.Flush()
				last = time.Now()
			}
			continue
		}
		if err != nil {
			w.Flush()
			return err
		}
		for i := range n {
			if p := r.datagram(i); len(p) > s.cfg.MaxPacketSize {
				w.Error("metric", "toolong")
			} else {
				h.packet(p)
			}
		}
		if now := time.Now(); now.Sub(last) >= flushAfter {
			w.Flush()
			last = now
		}
		if n < batchSize {
			// The socket is empty for now: rather than wake for every
			// datagram, let the kernel queue a few milliseconds' worth and
			// read it in one system call. At 100,000 datagrams/s this turns
			// 100,000 wake-ups a second into a few hundred; at full speed
			// reads return whole batches and never wait. The emptier the
			// last read, the longer the wait.
			if n < batchSize/4 {
				time.Sleep(coalesce)
			} else {
				time.Sleep(coalesce / 4)
			}
		}
	}
	w.Flush()
	return nil
}

func (s *Source) serveStream(ctx context.Context, l sdk.Listener, a sdk.Address, out sdk.Output) error {
	ln, err := net.FileListener(l.File)
	if err != nil {
		return err
	}
	protocol := a.Network
	if s.cfg.tlsConfig != nil && strings.HasPrefix(a.Network, "tcp") {
		ln = tls.NewListener(ln, s.cfg.tlsConfig)
		protocol = "tls"
	}
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.SetReadDeadline(time.Unix(1, 0))
		}
		mu.Unlock()
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		mu.Lock()
		full := len(conns) >= s.cfg.MaxConnections
		if !full {
			conns[c] = struct{}{}
		}
		mu.Unlock()
		if full {
			// Refused rather than left waiting: each connection holds a
			// line buffer, and the budget is max_connections of them.
			c.Close()
			w := out.Writer(protocol)
			w.Error("connection", "too_many_connections")
			w.Flush()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := out.Writer(protocol)
			if tc, ok := c.(*tls.Conn); ok {
				hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
				err := tc.HandshakeContext(hctx)
				cancel()
				if err != nil {
					s.log.Debug("tls handshake refused", "remote", c.RemoteAddr(), "error", err)
					w.Error("connection", "tls_handshake")
					w.Flush()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
					return
				}
			}
			s.serveConn(ctx, c, w)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

// serveConn reads newline-framed lines from one stream connection.
func (s *Source) serveConn(ctx context.Context, c net.Conn, w sdk.Writer) {
	defer w.Flush()
	h := handler{w: w, log: s.log}
	r := bufio.NewReaderSize(c, s.cfg.MaxLineLength)
	for {
		if r.Buffered() == 0 {
			c.SetReadDeadline(time.Now().Add(s.cfg.idleTimeout))
			if ctx.Err() != nil { // stopping: the deadline just set must not undo the stop's
				return
			}
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than max_line_length (its newline included), and
			// dropped whole: its first part would parse as a line of its
			// own, with a cut value or tag.
			w.Error("metric", "toolong")
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			h.packet(line)
		}
		if err != nil {
			return
		}
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
}

// handler parses packets into a Writer. One per reading goroutine.
type handler struct {
	p   Parser
	w   sdk.Writer
	log hclog.Logger
}

func (h *handler) packet(b []byte) { ForEachLine(b, h.line) }

func (h *handler) line(line []byte) {
	switch kind := Kind(line); kind {
	case PacketMetric:
		m, err := h.p.ParseMetric(line)
		if err != nil {
			h.reject(kind, err)
			return
		}
		if m.Type == sdk.Set {
			for _, member := range m.Members {
				h.w.Metric(sdk.Set, m.Scope, m.Name, m.Tags, MemberValue(member), 1)
			}
			return
		}
		for _, v := range m.Values {
			h.w.Metric(m.Type, m.Scope, m.Name, m.Tags, v, m.Rate)
		}
	case PacketEvent:
		e, err := h.p.ParseEvent(line)
		if err != nil {
			h.reject(kind, err)
			return
		}
		h.w.Event(e)
	case PacketServiceCheck:
		c, err := h.p.ParseServiceCheck(line)
		if err != nil {
			h.reject(kind, err)
			return
		}
		h.w.ServiceCheck(c)
	}
}

func (h *handler) reject(kind PacketType, err error) {
	reason := "invalid"
	var pe *ParseError
	if errors.As(err, &pe) {
		reason = pe.Reason
	}
	h.w.Error(kind.String(), reason)
	if h.log.IsDebug() {
		h.log.Debug("rejected line", "packet_type", kind.String(), "reason", reason, "error", err)
	}
}

// hashSeed is the seed github.com/axiomhq/hyperloglog hashes members with,
// so that sketches built from our hashes merge with sketches built by
// Sketch.Insert anywhere else.
const hashSeed = 1337

// MemberValue is the value a set member is written with: its hash.
func MemberValue(member []byte) float64 { return sdk.SetValue(metro.Hash64(member, hashSeed)) }

// coalesce is the longest a reader that emptied its socket waits before
// reading again. It bounds the latency it adds, and the kernel buffer must
// hold this long's traffic; a reader only waits this long after a read of
// fewer than 16 datagrams, and a quarter of it otherwise, so at most about
// 64 datagrams (100 KB) arrive meanwhile at rates that fill batches.
const coalesce = 4 * time.Millisecond
