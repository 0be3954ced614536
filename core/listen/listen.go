// Package listen owns veneurd's listening sockets. Sockets are opened by the
// daemon, not by source plugins, and handed to plugin processes as inherited
// file descriptors; a Pool counts references so that a socket outlives a
// plugin restart or a reload that keeps its address, and the kernel queues
// packets while a new process takes over.
package listen

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/veneurd/veneurd/sdk"
)

// Key names one socket: an address (sdk.ParseAddress reads it) and, for
// datagram addresses read by several SO_REUSEPORT sockets, which of them.
type Key struct {
	Address string
	Index   int
}

// Pool holds open sockets by key. Its methods may be called concurrently.
type Pool struct {
	mu    sync.Mutex
	socks map[Key]*socket
}

type socket struct {
	file *os.File
	refs int
	// bound is the socket file a unix socket was bound to, removed with
	// the last reference unless something else has taken its path since.
	path  string
	bound os.FileInfo
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{socks: map[Key]*socket{}} }

// Acquire returns the socket for k, opening it on first use. Each Acquire
// must be matched by a Release.
func (p *Pool) Acquire(k Key) (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.socks[k]; ok {
		s.refs++
		return s.file, nil
	}
	addr := k.Address
	a, err := sdk.ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	f, err := open(a)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	sock := &socket{file: f, refs: 1}
	if a.IsUnix() {
		sock.path = a.Path
		sock.bound, _ = os.Lstat(a.Path)
	}
	p.socks[k] = sock
	return f, nil
}

// Release drops one reference to k's socket and closes it with the last,
// removing a unix socket's file: closing a unix socket leaves its path
// behind, and a client sending to it would get "connection refused" from a
// socket nobody reads rather than "no such file".
func (p *Pool) Release(k Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.socks[k]
	if !ok {
		return
	}
	if s.refs--; s.refs == 0 {
		s.file.Close()
		delete(p.socks, k)
		if fi, err := os.Lstat(s.path); err == nil && s.bound != nil && os.SameFile(fi, s.bound) {
			os.Remove(s.path)
		}
	}
}

// Keys lists the open sockets.
func (p *Pool) Keys() []Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Key, 0, len(p.socks))
	for k := range p.socks {
		out = append(out, k)
	}
	return out
}

type rawConner interface {
	SyscallConn() (syscall.RawConn, error)
}

// open binds a and returns its socket as a file; the net.Conn that opened it
// is closed, the file keeps the socket alive.
func open(a sdk.Address) (*os.File, error) {
	var c rawConner
	switch a.Network {
	case "udp", "udp4", "udp6":
		// Every UDP socket allows SO_REUSEPORT, so that more readers can
		// join it later (a reload that raises readers).
		lc := net.ListenConfig{Control: reusePort}
		conn, err := lc.ListenPacket(context.Background(), a.Network, a.Addr())
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		c = conn.(*net.UDPConn)
	case "unixgram":
		removeStale(a.Path)
		conn, err := net.ListenPacket(a.Network, a.Addr())
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		c = conn.(*net.UnixConn) // closing a datagram socket does not unlink its path
	case "tcp", "tcp4", "tcp6":
		l, err := net.Listen(a.Network, a.Addr())
		if err != nil {
			return nil, err
		}
		defer l.Close()
		c = l.(*net.TCPListener)
	case "unix":
		removeStale(a.Path)
		l, err := net.Listen(a.Network, a.Addr())
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ul := l.(*net.UnixListener)
		ul.SetUnlinkOnClose(false)
		c = ul
	default:
		return nil, fmt.Errorf("unsupported network %q", a.Network)
	}
	return detach(c, a.Addr())
}

// detach returns a socket as an *os.File that veneurd's own runtime never
// polls. The socket's open file description is shared with the source
// processes, which read it non-blocking; were the file in this process's
// epoll set, every datagram arriving would wake this process for nothing
// (net.Conn.File returns exactly such a file), and File.Fd would turn the
// shared description to blocking mode under the readers' feet.
func detach(c rawConner, name string) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.Dup(int(s)) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	unix.CloseOnExec(fd)
	// os.NewFile polls a descriptor that is non-blocking; make it blocking
	// for that moment only, then non-blocking again for the readers.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removeStale deletes a socket file left behind by a process that died, but
// never a file that is not a socket.
func removeStale(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
