// Package proc reads what veneurd and its tools need from Linux's /proc,
// through github.com/prometheus/procfs: processes (parent, state, CPU time,
// resident memory, command line, the sockets they hold) and the kernel's
// UDP socket tables and drop counters. Every /proc file veneurd reads is
// read here, and parsed by procfs.
package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// root is where proc is mounted; tests point it at fixtures.
var root = procfs.DefaultMountPoint

// userHZ is USER_HZ, the unit of the times in /proc/<pid>/stat. The kernel
// reports them in this unit whatever its internal HZ: it is 100 on every
// Linux architecture Go runs on (procfs assumes the same).
const userHZ = 100

// ErrUnavailable is returned where /proc is missing.
var ErrUnavailable = errors.New("/proc is not available: CPU, memory and drop figures need Linux")

// Available reports ErrUnavailable when there is no /proc.
func Available() error {
	if _, err := os.Stat(filepath.Join(root, "self", "stat")); err != nil {
		return ErrUnavailable
	}
	return nil
}

func fs() (procfs.FS, error) { return procfs.NewFS(root) }

// process opens /proc/<pid>.
func process(pid int) (procfs.Proc, error) {
	f, err := fs()
	if err != nil {
		return procfs.Proc{}, err
	}
	return f.Proc(pid)
}

// namespace returns the proc filesystem whose net/ is pid's network
// namespace: /proc/<pid>, or /proc/self for pid 0.
func namespace(pid int) (procfs.FS, error) {
	if pid <= 0 {
		return procfs.NewFS(filepath.Join(root, "self"))
	}
	return procfs.NewFS(filepath.Join(root, strconv.Itoa(pid)))
}

// Process is what /proc/<pid>/stat says of a process.
type Process struct {
	Pid, PPid int
	// Dead is set for a zombie or a process being reaped.
	Dead bool
	// CPU is the user and system time of the process (all its threads) and
	// of the children it has waited for.
	CPU time.Duration
}

// Stat reads one process.
func Stat(pid int) (Process, error) {
	p, err := process(pid)
	if err != nil {
		return Process{}, err
	}
	return stat(p)
}

func stat(p procfs.Proc) (Process, error) {
	s, err := p.Stat()
	if err != nil {
		return Process{}, err
	}
	// cutime and cstime are signed in the kernel's format; they are never
	// negative in practice.
	ticks := uint64(s.UTime) + uint64(s.STime) + uint64(max(s.CUTime, 0)) + uint64(max(s.CSTime, 0))
	return Process{
		Pid:  s.PID,
		PPid: s.PPID,
		Dead: s.State == "Z" || s.State == "X",
		CPU:  time.Duration(ticks) * (time.Second / userHZ),
	}, nil
}

// Processes reads every process; those that exit meanwhile are left out.
func Processes() ([]Process, error) {
	f, err := fs()
	if err != nil {
		return nil, err
	}
	procs, err := f.AllProcs()
	if err != nil {
		return nil, err
	}
	out := make([]Process, 0, len(procs))
	for _, p := range procs {
		if s, err := stat(p); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Cmdline returns a process's arguments.
func Cmdline(pid int) ([]string, error) {
	p, err := process(pid)
	if err != nil {
		return nil, err
	}
	return p.CmdLine()
}

// RSS returns the resident set size of a process (VmRSS) in bytes, 0 for
// one that has none (a kernel thread or a zombie).
func RSS(pid int) (uint64, error) {
	p, err := process(pid)
	if err != nil {
		return 0, err
	}
	s, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return s.VmRSS, nil
}

// SocketInodes returns the inodes of the sockets a process holds open.
func SocketInodes(pid int) ([]uint64, error) {
	p, err := process(pid)
	if err != nil {
		return nil, err
	}
	targets, err := p.FileDescriptorTargets()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, t := range targets {
		if ino, ok := socketInode(t); ok {
			out = append(out, ino)
		}
	}
	return out, nil
}

// socketInode reads the target of a socket's descriptor, "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
	return n, err == nil
}

// UDPSocket is a row of /proc/net/udp or udp6.
type UDPSocket struct {
	LocalPort  int
	RemotePort int
	RxQueue    uint64 // bytes waiting to be read
	Inode      uint64
	// Drops counts the datagrams the kernel dropped because the socket's
	// receive queue was full, since the socket was created.
	Drops uint64
}

// UDPSockets reads the UDP socket tables (IPv4 and IPv6) of pid's network
// namespace; pid 0 is our own. A table that cannot be read is left out; an
// error only when neither can be.
func UDPSockets(pid int) ([]UDPSocket, error) {
	f, err := namespace(pid)
	if err != nil {
		return nil, err
	}
	var out []UDPSocket
	var firstErr error
	read := 0
	for _, table := range []func() (procfs.NetUDP, error){f.NetUDP, f.NetUDP6} {
		rows, err := table()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		read++
		for _, r := range rows {
			s := UDPSocket{LocalPort: int(r.LocalPort), RemotePort: int(r.RemPort), RxQueue: r.RxQueue, Inode: r.Inode}
			if r.Drops != nil {
				s.Drops = *r.Drops
			}
			out = append(out, s)
		}
	}
	if read == 0 {
		return nil, firstErr
	}
	return out, nil
}

// UDPRcvbufErrors returns the UDP RcvbufErrors counters of pid's network
// namespace (pid 0: our own): datagrams dropped because a socket's receive
// buffer was full, over every socket, IPv4 (net/snmp) plus IPv6 (net/snmp6)
// when present.
func UDPRcvbufErrors(pid int) (uint64, error) {
	f, err := fs()
	if err != nil {
		return 0, err
	}
	var p procfs.Proc
	if pid <= 0 {
		p, err = f.Self()
	} else {
		p, err = f.Proc(pid)
	}
	if err != nil {
		return 0, err
	}
	snmp, err := p.Snmp()
	if err != nil {
		return 0, err
	}
	if snmp.Udp.RcvbufErrors == nil {
		return 0, fmt.Errorf("no Udp RcvbufErrors in net/snmp of process %d", p.PID)
	}
	n := uint64(*snmp.Udp.RcvbufErrors)
	if snmp6, err := p.Snmp6(); err == nil && snmp6.Udp6.RcvbufErrors != nil {
		n += uint64(*snmp6.Udp6.RcvbufErrors)
	}
	return n, nil
}

// UnixSocketInodes returns the inodes of the unix sockets bound to path,
// from our network namespace's /proc/net/unix.
func UnixSocketInodes(path string) (map[uint64]bool, error) {
	f, err := namespace(0)
	if err != nil {
		return nil, err
	}
	nu, err := f.NetUNIX()
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, r := range nu.Rows {
		if r.Path == path {
			out[r.Inode] = true
		}
	}
	return out, nil
}
