package listen

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
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
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		readDrops(table, inodes, out)
	}
	return out
}

// readDrops adds the drops of the sockets in inodes found in a
// /proc/net/udp-style table.
func readDrops(path string, inodes map[uint64]string, out map[string]uint64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:tm retr uid timeout inode ref pointer drops
		if len(fields) < 13 {
			continue
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			continue
		}
		addr, ok := inodes[ino]
		if !ok {
			continue
		}
		drops, _ := strconv.ParseUint(fields[12], 10, 64)
		out[addr] += drops
	}
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
