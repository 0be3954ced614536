package dogstatsd

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one system call may read.
const batchSize = 64

// batchReader reads datagrams from a UDP or unixgram socket 64 at a time
// with recvmmsg(2), and waits for them with poll(2). It deliberately keeps
// the socket out of the Go runtime's netpoller: the socket is shared with the
// daemon (and, during a reload, with the source process taking over), and a
// socket in the netpoller's epoll set wakes the runtime for every datagram
// that arrives, which at 100,000 datagrams a second costs more than reading
// them. Buffers are allocated once; a datagram is valid until the next read.
type batchReader struct {
	file *os.File // keeps fd open
	fd   int
	hdrs []mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// newBatchReader reads f, a datagram socket, into buffers of size bytes.
func newBatchReader(f *os.File, size int) (*batchReader, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{file: f, fd: -1}
	if err := rc.Control(func(fd uintptr) { r.fd = int(fd) }); err != nil {
		return nil, err
	}
	r.hdrs = make([]mmsghdr, batchSize)
	r.iovs = make([]unix.Iovec, batchSize)
	r.bufs = make([][]byte, batchSize)
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	return r, nil
}

// errEmpty says the socket has nothing to read now.
var errEmpty = errors.New("socket empty")

// read reads the datagrams queued now, up to batchSize, without blocking;
// errEmpty when there are none.
func (r *batchReader) read() (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, errEmpty
		}
		return 0, errno
	}
}

// wait blocks until the socket is readable or timeout passes, and reports
// which. The goroutine holds its thread meanwhile, as any blocking system
// call does.
func (r *batchReader) wait(timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		return n > 0, err
	}
}

// datagram returns the i-th datagram of the last read. A datagram longer
// than the buffer comes back cut to the buffer's size.
func (r *batchReader) datagram(i int) []byte { return r.bufs[i][:r.hdrs[i].n] }

// setReadBuffer sets SO_RCVBUF, past net.core.rmem_max where the process is
// privileged (SO_RCVBUFFORCE), and returns what the kernel granted.
func (r *batchReader) setReadBuffer(want int) int {
	if unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
		unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, want)
	}
	// Linux reports twice the size asked for: half is bookkeeping.
	v, err := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0
	}
	return v / 2
}
