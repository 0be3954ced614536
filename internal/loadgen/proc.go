package loadgen

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/veneurd/veneurd/internal/proc"
)

// This file measures process trees, their CPU time and memory, the sockets
// they hold, and the kernel's UDP drop counters, from what internal/proc
// reads of Linux's /proc.

// allStats reads every process.
func allStats() []proc.Process {
	ps, _ := proc.Processes()
	return ps
}

// ProcessTree returns root and every live descendant of it, root first.
func ProcessTree(root int) ([]int, error) {
	stats := allStats()
	return tree(root, stats)
}

func tree(root int, stats []proc.Process) ([]int, error) {
	children := map[int][]int{}
	found := false
	for _, s := range stats {
		if s.Pid == root {
			found = !s.Dead
			continue
		}
		children[s.PPid] = append(children[s.PPid], s.Pid)
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

func treeCPU(pids []int, stats []proc.Process) time.Duration {
	in := make(map[int]bool, len(pids))
	for _, p := range pids {
		in[p] = true
	}
	var cpu time.Duration
	for _, s := range stats {
		if in[s.Pid] {
			cpu += s.CPU
		}
	}
	return cpu
}

// RSS returns the resident set size of a process (VmRSS), 0 for one that
// has none (a kernel thread or a zombie).
func RSS(pid int) (uint64, error) { return proc.RSS(pid) }

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
		inodes, _ := proc.SocketInodes(p)
		for _, ino := range inodes {
			out[ino] = true
		}
	}
	return out
}

// SocketDrops returns the kernel's drop count of each UDP socket in inodes,
// read from the socket tables of pid's network namespace. Sockets not found
// (not UDP, or closed) are left out.
func SocketDrops(pid int, inodes map[uint64]bool) (map[uint64]uint64, error) {
	socks, err := proc.UDPSockets(pid)
	if err != nil {
		return nil, err
	}
	out := map[uint64]uint64{}
	for _, s := range socks {
		if inodes[s.Inode] {
			out[s.Inode] = s.Drops
		}
	}
	return out, nil
}

// RcvbufErrors returns the UDP RcvbufErrors counters of pid's network
// namespace (pid 0: our own): datagrams dropped because a socket's receive
// buffer was full, over every socket, IPv4 (/proc/net/snmp) plus IPv6
// (/proc/net/snmp6) when present.
func RcvbufErrors(pid int) (uint64, error) { return proc.UDPRcvbufErrors(pid) }

// FindListener returns the process that listens on t: the one holding the
// socket bound to t's port (or path) whose parent does not hold it too. In a
// veneurd, the daemon opens the sockets and its source plugin holds them as
// well; the daemon is the answer.
func FindListener(t Target) (int, error) {
	var inodes map[uint64]bool
	switch t.Network {
	case "udp":
		socks, err := proc.UDPSockets(0)
		if err != nil {
			return 0, err
		}
		inodes = map[uint64]bool{}
		port := t.Port()
		for _, s := range socks {
			// An unconnected socket bound to the port; a client connected
			// to it has the port as its remote one.
			if s.LocalPort == port && s.RemotePort == 0 && s.Inode != 0 {
				inodes[s.Inode] = true
			}
		}
	case "unixgram":
		abs, err := filepath.Abs(t.Address)
		if err != nil {
			return 0, err
		}
		if inodes, err = proc.UnixSocketInodes(abs); err != nil {
			return 0, err
		}
		if len(inodes) == 0 && abs != t.Address {
			inodes, _ = proc.UnixSocketInodes(t.Address)
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
		for ino := range SocketInodes([]int{s.Pid}) {
			if inodes[ino] {
				holders[s.Pid] = true
				break
			}
		}
	}
	if len(holders) == 0 {
		return 0, fmt.Errorf("a socket is bound to %s but no process of this user holds it (give -pid)", t)
	}
	parent := map[int]int{}
	for _, s := range stats {
		parent[s.Pid] = s.PPid
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

func haveProc() error { return proc.Available() }
