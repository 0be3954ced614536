// Package ssf is the source plugin for SSF, the spans of Stripe's Veneur:
// it reads SSF spans over UDP and UNIX datagrams, framed UNIX streams and
// Veneur's gRPC service, and writes the metrics Veneur makes of them: the
// samples a span carries, and timers of indicator spans' durations.
package ssf

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// flushAfter bounds how long a sample may wait in a Writer before it is
// flushed, whether spans keep coming or not.
const flushAfter = 20 * time.Millisecond

// Protocols, as the Writers are taken for them and
// veneur.listen.received_per_protocol_total counts them: Veneur's names,
// and ssf-unixgram, which Veneur does not have.
const (
	protoUDP      = "ssf-udp"
	protoUnixgram = "ssf-unixgram"
	protoUnix     = "ssf-unix"
	protoGRPC     = "ssf-grpc"
)

// Source reads SSF spans.
type Source struct {
	cfg Config
	log hclog.Logger
}

// New returns an ssf source.
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

// Run reads every listener until ctx ends.
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
			switch a.Network {
			case "udp", "udp4", "udp6":
				err = s.serveDatagrams(ctx, l, out.Writer(protoUDP))
			case "unixgram":
				err = s.serveDatagrams(ctx, l, out.Writer(protoUnixgram))
			case "unix":
				err = s.serveFramed(ctx, l, out)
			default: // tcp, tcp4, tcp6
				err = s.serveGRPC(ctx, l, out)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", l.Address, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// serveDatagrams reads one span per datagram.
func (s *Source) serveDatagrams(ctx context.Context, l sdk.Listener, w sdk.Writer) error {
	pc, err := net.FilePacketConn(l.File)
	if err != nil {
		return err
	}
	defer pc.Close()
	// Read, unlike ReadFrom, allocates no address per datagram.
	conn, ok := pc.(interface {
		net.PacketConn
		Read([]byte) (int, error)
		SetReadBuffer(int) error
	})
	if !ok {
		return fmt.Errorf("not a datagram socket: %T", pc)
	}
	if want := s.cfg.ReadBufferBytes; want > 0 {
		if err := conn.SetReadBuffer(want); err != nil {
			s.log.Warn("cannot set the socket receive buffer", "listener", l.Address, "error", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	h := newHandler(&s.cfg, w, s.log)
	// One byte more than the largest datagram accepted, so that a longer
	// one is seen to be longer, not read cut.
	buf := make([]byte, s.cfg.MaxPacketSize+1)
	pending := false    // the Writer holds what it has not flushed
	var since time.Time // when it started to
	defer w.Flush()
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && pending {
				// The socket stayed quiet until flushAfter had passed.
				w.Flush()
				pending = false
				conn.SetReadDeadline(time.Time{})
				if ctx.Err() != nil { // the stop's deadline must not be undone
					return nil
				}
				continue
			}
			return err
		}
		if n > s.cfg.MaxPacketSize {
			w.Error(PacketSpan, ReasonTooLong)
		} else {
			h.packet(buf[:n])
		}
		now := time.Now()
		if !pending {
			pending, since = true, now
			conn.SetReadDeadline(now.Add(flushAfter))
			if ctx.Err() != nil {
				return nil
			}
		} else if now.Sub(since) >= flushAfter {
			w.Flush()
			pending = false
			conn.SetReadDeadline(time.Time{})
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// serveFramed accepts UNIX stream connections that send spans in Veneur's
// framing (protocol/wire.go).
func (s *Source) serveFramed(ctx context.Context, l sdk.Listener, out sdk.Output) error {
	ln, err := net.FileListener(l.File)
	if err != nil {
		return err
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
			c.Close()
			w := out.Writer(protoUnix)
			w.Error("connection", "too_many_connections")
			w.Flush()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c, out.Writer(protoUnix))
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

// Veneur's framing: a version byte (0, the only one), the length of the
// span as a big-endian uint32, the span.
const (
	frameHeader  = 5
	frameVersion = 0
)

// connBuffer is a stream connection's read buffer: a frame that fits is
// decoded where it lies, without a copy.
const connBuffer = 64 << 10

// serveConn reads framed spans from one connection until it ends, fails to
// frame, idles past idle_timeout or the source stops. A frame longer than
// max_span_size is skipped, and counted; a frame of another version ends the
// connection, as in Veneur, since nothing tells where the next one starts.
func (s *Source) serveConn(ctx context.Context, c net.Conn, w sdk.Writer) {
	defer w.Flush()
	h := newHandler(&s.cfg, w, s.log)
	r := bufio.NewReaderSize(c, connBuffer)
	var big []byte // frames longer than the buffer
	for {
		if r.Buffered() == 0 {
			w.Flush()
			c.SetReadDeadline(time.Now().Add(s.cfg.idleTimeout))
			if ctx.Err() != nil {
				return
			}
		}
		hdr, err := r.Peek(frameHeader)
		if err != nil {
			if len(hdr) > 0 && errors.Is(err, io.EOF) {
				w.Error(PacketSpan, ReasonFraming) // cut in its header
			}
			return
		}
		if hdr[0] != frameVersion {
			w.Error(PacketSpan, ReasonFraming)
			s.log.Debug("closing an SSF stream connection: unknown frame version", "version", hdr[0])
			return
		}
		size := int(binary.BigEndian.Uint32(hdr[1:]))
		r.Discard(frameHeader)
		if size > s.cfg.MaxSpanSize {
			w.Error(PacketSpan, ReasonTooLong)
			if _, err := r.Discard(size); err != nil {
				return
			}
			continue
		}
		var frame []byte
		if size <= connBuffer {
			frame, err = r.Peek(size)
		} else {
			if cap(big) < size {
				big = make([]byte, size)
			}
			frame = big[:size]
			_, err = io.ReadFull(r, frame)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				w.Error(PacketSpan, ReasonFraming) // cut in its span
			}
			return
		}
		h.packet(frame)
		if size <= connBuffer {
			r.Discard(size)
		} else if size > 1<<20 {
			big = nil // not kept for the connection's life
		}
	}
}
