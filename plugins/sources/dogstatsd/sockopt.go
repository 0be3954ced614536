package dogstatsd

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setReadBuffer sets SO_RCVBUF on a datagram socket. The kernel caps
// SO_RCVBUF at net.core.rmem_max; a privileged process may go past it with
// SO_RCVBUFFORCE, which is tried first. A grant smaller than asked is logged
// as a warning, because it means bursts will be dropped.
func (s *Source) setReadBuffer(conn net.PacketConn, address string) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	want := s.cfg.ReadBufferBytes
	var got int
	raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
		// Linux reports twice the size asked for: half is bookkeeping.
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err == nil {
			got = v / 2
		}
	})
	if got < want {
		s.log.Warn("the kernel granted a smaller socket receive buffer than configured; raise net.core.rmem_max",
			"listener", address, "read_buffer_bytes", want, "granted", got)
	}
}
