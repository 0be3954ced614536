package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file reads Linux's /proc: process trees, their CPU time and memory,
// the sockets they hold, and the kernel's UDP drop counters.

// procRoot is where proc is mounted; tests do not change it.
const procRoot = "/proc"

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat. The
// kernel reports them in this unit whatever its internal HZ: it is 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// procStat is what bench reads from /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	state     byte
	// Times in clock ticks: the process's own (all its threads), and the
	// children it has waited for.
	utime, stime, cutime, cstime uint64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

// parseStat parses a /proc/<pid>/stat line. The command name is in
// parentheses and may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	s := procStat{pid: pid, state: f[0][0]}
	s.ppid, _ = strconv.Atoi(f[1])
	u := func(n int) uint64 { v, _ := strconv.ParseUint(f[n-3], 10, 64); return v }
	// cutime and cstime are signed in the kernel's format; they are never
	// negative in practice.
	s.utime, s.stime, s.cutime, s.cstime = u(14), u(15), u(16), u(17)
	return s, nil
}

// allStats reads the stat of every process.
func allStats() []procStat {
	entries, _ := os.ReadDir(procRoot)
	out := make([]procStat, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// ProcessTree returns root and every live descendant of it, root first.
func ProcessTree(root int) ([]int, error) {
	stats := allStats()
	return tree(root, stats)
}

func tree(root int, stats []procStat) ([]int, error) {
	children := map[int][]int{}
	found := false
	for _, s := range stats {
		if s.pid == root {
			found = s.state != 'Z' && s.state != 'X'
			continue
		}
		children[s.ppid] = append(children[s.ppid], s.pid)
	}
	if !found {
		return nil, fmt.Errorf("no process %d", root)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// TreeCPU returns the CPU time (user and system) used so far by root and
// its live descendants, including the children they have reaped: a plugin
// that exits and is waited for moves its time into its parent's, so the
// total keeps growing across restarts. Differences of two calls are what the
// tree used in between.
func TreeCPU(root int) (time.Duration, error) {
	stats := allStats()
	pids, err := tree(root, stats)
	if err != nil {
		return 0, err
	}
	return treeCPU(pids, stats), nil
}

func treeCPU(pids []int, stats []procStat) time.Duration {
	in := make(map[int]bool, len(pids))
	for _, p := range pids {
		in[p] = true
	}
	var ticks uint64
	for _, s := range stats {
		if in[s.pid] {
			ticks += s.utime + s.stime + s.cutime + s.cstime
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// RSS returns the resident set size of a process (VmRSS), 0 for one that
// has none (a kernel thread or a zombie).
func RSS(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b), nil
}

// parseVmRSS reads "VmRSS:    1234 kB" from a /proc/<pid>/status.
func parseVmRSS(status []byte) uint64 {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest))
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// TreeRSS sums the RSS of pids. Processes that have exited count nothing.
// Memory shared between them (such as the pages of a binary they all run)
// counts once per process, as VmRSS does.
func TreeRSS(pids []int) uint64 {
	var sum uint64
	for _, p := range pids {
		n, _ := RSS(p)
		sum += n
	}
	return sum
}

// SocketInodes returns the inodes of the sockets pids hold open. Processes
// whose descriptors cannot be read (another user's) are skipped.
func SocketInodes(pids []int) map[uint64]bool {
	out := map[uint64]bool{}
	for _, p := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(p), "fd")
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			if ino, ok := socketInode(link); ok {
				out[ino] = true
			}
		}
	}
	return out
}

// socketInode reads "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
	return n, err == nil
}

// udpSocket is one row of /proc/net/udp or udp6.
type udpSocket struct {
	localPort  int
	remotePort int
	rxQueue    uint64 // bytes waiting to be read
	inode      uint64
	drops      uint64
}

// readUDPTables reads /proc/<pid>/net/udp-style tables, the socket table of
// pid's network namespace (pid 0: our own).
func readUDPTables(pid int) ([]udpSocket, error) {
	var out []udpSocket
	var firstErr error
	ok := false
	for _, name := range []string{"udp", "udp6"} {
		b, err := os.ReadFile(netPath(pid, name))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ok = true
		out = append(out, parseUDPTable(b)...)
	}
	if !ok {
		return nil, firstErr
	}
	return out, nil
}

func netPath(pid int, name string) string {
	if pid <= 0 {
		return filepath.Join(procRoot, "net", name)
	}
	return filepath.Join(procRoot, strconv.Itoa(pid), "net", name)
}

// parseUDPTable parses the rows of /proc/net/udp:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
func parseUDPTable(b []byte) []udpSocket {
	var out []udpSocket
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 13 {
			continue
		}
		var s udpSocket
		s.localPort = hexPort(f[1])
		s.remotePort = hexPort(f[2])
		if _, rx, ok := strings.Cut(f[4], ":"); ok {
			s.rxQueue, _ = strconv.ParseUint(rx, 16, 64)
		}
		s.inode, _ = strconv.ParseUint(f[9], 10, 64)
		s.drops, _ = strconv.ParseUint(f[12], 10, 64)
		out = append(out, s)
	}
	return out
}

// hexPort reads the port of "0100007F:1FBE".
func hexPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(addr[i+1:], 16, 16)
	if err != nil {
		return -1
	}
	return int(p)
}

// SocketDrops returns the kernel's drop count of each UDP socket in inodes,
// read from the socket tables of pid's network namespace. Sockets not found
// (not UDP, or closed) are left out.
func SocketDrops(pid int, inodes map[uint64]bool) (map[uint64]uint64, error) {
	socks, err := readUDPTables(pid)
	if err != nil {
		return nil, err
	}
	out := map[uint64]uint64{}
	for _, s := range socks {
		if inodes[s.inode] {
			out[s.inode] = s.drops
		}
	}
	return out, nil
}

// RcvbufErrors returns the UDP RcvbufErrors counters of pid's network
// namespace (pid 0: our own): datagrams dropped because a socket's receive
// buffer was full, over every socket, IPv4 (/proc/net/snmp) plus IPv6
// (/proc/net/snmp6) when present.
func RcvbufErrors(pid int) (uint64, error) {
	b, err := os.ReadFile(netPath(pid, "snmp"))
	if err != nil {
		return 0, err
	}
	n, err := parseSNMP(b, "Udp", "RcvbufErrors")
	if err != nil {
		return 0, err
	}
	if b6, err := os.ReadFile(netPath(pid, "snmp6")); err == nil {
		n += parseSNMP6(b6, "Udp6RcvbufErrors")
	}
	return n, nil
}

// parseSNMP finds field in /proc/net/snmp, where each protocol has a line of
// names followed by a line of values, both starting with "Proto:".
func parseSNMP(b []byte, proto, field string) (uint64, error) {
	prefix := proto + ":"
	var names []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != prefix {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == field && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s in snmp", proto, field)
}

// parseSNMP6 finds "name value" in /proc/net/snmp6.
func parseSNMP6(b []byte, name string) uint64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// unixSocketInodes returns the inodes of the unix sockets bound to path,
// from /proc/net/unix:
//
//	Num RefCount Protocol Flags Type St Inode Path
func unixSocketInodes(path string) (map[uint64]bool, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "net", "unix"))
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 8 && f[7] == path {
			if ino, err := strconv.ParseUint(f[6], 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out, nil
}

// FindListener returns the process that listens on t: the one holding the
// socket bound to t's port (or path) whose parent does not hold it too. In a
// veneurd, the daemon opens the sockets and its source plugin holds them as
// well; the daemon is the answer.
func FindListener(t Target) (int, error) {
	var inodes map[uint64]bool
	switch t.Network {
	case "udp":
		socks, err := readUDPTables(0)
		if err != nil {
			return 0, err
		}
		inodes = map[uint64]bool{}
		port := t.Port()
		for _, s := range socks {
			// An unconnected socket bound to the port; a client connected
			// to it has the port as its remote one.
			if s.localPort == port && s.remotePort == 0 && s.inode != 0 {
				inodes[s.inode] = true
			}
		}
	case "unixgram":
		abs, err := filepath.Abs(t.Address)
		if err != nil {
			return 0, err
		}
		if inodes, err = unixSocketInodes(abs); err != nil {
			return 0, err
		}
		if len(inodes) == 0 && abs != t.Address {
			inodes, _ = unixSocketInodes(t.Address)
		}
	default:
		return 0, fmt.Errorf("cannot find the listener of %s", t)
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no socket bound to %s", t)
	}
	stats := allStats()
	holders := map[int]bool{}
	for _, s := range stats {
		for ino := range SocketInodes([]int{s.pid}) {
			if inodes[ino] {
				holders[s.pid] = true
				break
			}
		}
	}
	if len(holders) == 0 {
		return 0, fmt.Errorf("a socket is bound to %s but no process of this user holds it (give -pid)", t)
	}
	parent := map[int]int{}
	for _, s := range stats {
		parent[s.pid] = s.ppid
	}
	var roots []int
	for p := range holders {
		root := true
		for q, depth := parent[p], 0; q > 1 && depth < 4096; q, depth = parent[q], depth+1 {
			if holders[q] {
				root = false
				break
			}
		}
		if root {
			roots = append(roots, p)
		}
	}
	sort.Ints(roots)
	if len(roots) > 1 {
		return 0, fmt.Errorf("several unrelated processes hold the socket of %s: %v (give -pid)", t, roots)
	}
	return roots[0], nil
}

// errNoProc is returned where /proc is missing.
var errNoProc = errors.New("/proc is not available: CPU, memory and drop figures need Linux")

func haveProc() error {
	if _, err := os.Stat(filepath.Join(procRoot, "self", "stat")); err != nil {
		return errNoProc
	}
	return nil
}
