package otlp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Every listener serves OTLP/gRPC and OTLP/HTTP on one port: the first
// bytes of each connection say which. A gRPC client opens with HTTP/2's
// client preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sent before anything
// else on a cleartext HTTP/2 connection); an OTLP/HTTP client opens with an
// HTTP/1.1 request line ("POST /v1/metrics HTTP/1.1"), which differs from
// the preface by its first byte. The connection, with what was read of it
// put back, goes to the grpc.Server or to the http.Server through a
// listener of its own that hands over connections in memory. Both servers
// then run as they would on a socket of their own, with their own
// transports: gRPC's HTTP/2 is grpc-go's, not net/http's slower
// ServeHTTP bridge.

// h2Preface is what every HTTP/2 client sends first.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffTimeout bounds the wait for a connection's first bytes.
const sniffTimeout = 10 * time.Second

// mux accepts a listener's connections and routes each to gRPC or HTTP.
type mux struct {
	ln         net.Listener
	grpc, http *memListener
	max        int64
	open       atomic.Int64
	refused    func() // counts a connection refused for max_connections
	// handshakeFailed counts a TLS connection whose handshake failed.
	handshakeFailed func(error)
	mu              sync.Mutex
	sniffing        map[net.Conn]struct{}
	stopped         bool
	wg              sync.WaitGroup
}

// serve accepts connections until the listener is closed.
func (m *mux) serve() error {
	var delay time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as
				// net/http does, rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			m.wg.Wait()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		delay = 0
		if m.open.Add(1) > m.max {
			m.open.Add(-1)
			c.Close()
			m.refused()
			continue
		}
		m.mu.Lock()
		if m.stopped {
			m.mu.Unlock()
			m.open.Add(-1)
			c.Close()
			continue
		}
		m.sniffing[c] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.route(c)
	}
}

// stop closes the listener and wakes connections still being sniffed.
func (m *mux) stop() {
	m.ln.Close()
	m.mu.Lock()
	m.stopped = true
	for c := range m.sniffing {
		c.SetReadDeadline(time.Unix(1, 0))
	}
	m.mu.Unlock()
}

// route reads a connection's first bytes and hands it over.
func (m *mux) route(c net.Conn) {
	defer m.wg.Done()
	pc := &prefixConn{Conn: c, done: func() { m.open.Add(-1) }}
	if tc, ok := c.(*tls.Conn); ok {
		// Handshake first, within the sniff's time, so that a refused
		// client is counted as such.
		tc.SetDeadline(time.Now().Add(sniffTimeout))
		if err := tc.Handshake(); err != nil {
			m.mu.Lock()
			stopped := m.stopped
			delete(m.sniffing, c)
			m.mu.Unlock()
			if !stopped {
				m.handshakeFailed(err)
			}
			pc.Close()
			return
		}
		tc.SetWriteDeadline(time.Time{})
	}
	h2, err := sniff(c, &pc.prefix)
	m.mu.Lock()
	delete(m.sniffing, c)
	stopped := m.stopped
	m.mu.Unlock()
	if err != nil || stopped {
		pc.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	to := m.http
	if h2 {
		to = m.grpc
	}
	if !to.deliver(pc) {
		pc.Close()
	}
}

// sniff reads until the bytes read stop matching the HTTP/2 preface, or
// match it whole, and keeps them in prefix.
func sniff(c net.Conn, prefix *[]byte) (h2 bool, err error) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var buf [len(h2Preface)]byte
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if !bytes.Equal(buf[:n], []byte(h2Preface[:n])) {
			*prefix = append([]byte(nil), buf[:n]...)
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	*prefix = append([]byte(nil), buf[:n]...)
	return true, nil
}

// prefixConn is a connection whose first bytes were read already: Read
// returns them first.
type prefixConn struct {
	net.Conn
	prefix []byte
	once   sync.Once
	done   func()
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// Close closes the connection and counts it closed, once.
func (c *prefixConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// memListener is a net.Listener whose connections are handed over in
// memory, by a mux.
type memListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newMemListener(addr net.Addr) *memListener {
	return &memListener{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// deliver hands c to the server accepting on l; false if l is closed.
func (l *memListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}
