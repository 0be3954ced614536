package listen

import (
	"os"
	"syscall"

	"github.com/veneurd/veneurd/internal/proc"
)

// Drops returns, for each datagram address in the pool, how many datagrams
// the kernel dropped on its sockets because their receive queue was full
// (the drops column of /proc/net/udp and /proc/net/udp6, counted since each
// socket was created). Addresses whose sockets are not UDP are left out.
func (p *Pool) Drops() map[string]uint64 {
	p.mu.Lock()
	inodes := map[uint64]string{}
	for k, s := range p.socks {
		if ino, ok := inode(s.file); ok {
			inodes[ino] = k.Address
		}
	}
	p.mu.Unlock()
	out := map[string]uint64{}
	if len(inodes) == 0 {
		return out
	}
	socks, _ := proc.UDPSockets(0)
	for _, s := range socks {
		if addr, ok := inodes[s.Inode]; ok {
			out[addr] += s.Drops
		}
	}
	return out
}

// inode returns a socket's inode number. It must not call File.Fd: that
// would put the socket, whose open file description the source processes
// share, into blocking mode, and their read deadlines would stop working.
func inode(f *os.File) (uint64, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		return 0, false
	}
	return st.Ino, true
}
