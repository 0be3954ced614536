package proc

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"
)

// fixture builds a /proc holding process 42 (also "self") and process 43,
// its child, a zombie, and points the package at it.
func fixture(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The command name holds spaces and parentheses; utime 11, stime 22,
	// cutime 33, cstime 44.
	write("42/stat", "42 (a (weird) name) S 7 42 42 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 1 0 5 100 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	write("43/stat", "43 (child) Z 42 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	write("not-a-pid/stat", "")
	write("42/status", "Name:\tx\nVmHWM:\t  999 kB\nVmRSS:\t    1234 kB\n")
	write("42/cmdline", "veneurd\x00run\x00-config\x00a b.hcl\x00")
	write("42/net/udp", `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1234: 0100007F:1FBE 00000000:0000 07 00000000:00001A00 00:00000000 00000000  1000        0 55501 2 0000000000000000 17
 1235: 0100007F:9C40 0100007F:1FBE 01 00000000:00000000 00:00000000 00000000  1000        0 55502 2 0000000000000000 0
`)
	write("42/net/udp6", `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000000000000000000001000000:1FBE 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 55503 2 0000000000000000 5
`)
	write("42/net/snmp", "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdp: 10 2 5 9 4 0 0 0 0\nUdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdpLite: 0 0 0 0 99 0 0 0 0\n")
	write("42/net/snmp6", "Udp6InErrors                    \t3\nUdp6RcvbufErrors                \t5\n")
	write("42/net/unix", `Num       RefCount Protocol Flags    Type St Inode Path
00000000bd6cfd28: 00000002 00000000 00000000 0002 01 60001 /run/veneurd/dsd.sock
00000000eaa9ea01: 00000003 00000000 00000000 0001 03 60002
00000000eaa9ea02: 00000002 00000000 00000000 0002 01 60003 /run/veneurd/other.sock
`)
	if err := os.MkdirAll(filepath.Join(dir, "42/fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for fd, target := range map[string]string{"0": "/dev/null", "3": "socket:[55501]", "4": "socket:[60001]", "5": "pipe:[7]"} {
		if err := os.Symlink(target, filepath.Join(dir, "42/fd", fd)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("42", filepath.Join(dir, "self")); err != nil {
		t.Fatal(err)
	}
	saved := root
	root = dir
	t.Cleanup(func() { root = saved })
}

func TestFixture(t *testing.T) {
	fixture(t)
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	p, err := Stat(42)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Process{Pid: 42, PPid: 7, CPU: (11 + 22 + 33 + 44) * 10 * time.Millisecond}); p != want {
		t.Errorf("Stat(42) = %+v, want %+v", p, want)
	}
	ps, err := Processes()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ps, func(a, b Process) int { return a.Pid - b.Pid })
	want := []Process{{Pid: 42, PPid: 7, CPU: 1100 * time.Millisecond}, {Pid: 43, PPid: 42, Dead: true, CPU: 30 * time.Millisecond}}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("Processes() = %+v, want %+v", ps, want)
	}
	if rss, err := RSS(42); err != nil || rss != 1234*1024 {
		t.Errorf("RSS(42) = %d, %v", rss, err)
	}
	if args, err := Cmdline(42); err != nil || !slices.Equal(args, []string{"veneurd", "run", "-config", "a b.hcl"}) {
		t.Errorf("Cmdline(42) = %q, %v", args, err)
	}
	inodes, err := SocketInodes(42)
	slices.Sort(inodes)
	if err != nil || !slices.Equal(inodes, []uint64{55501, 60001}) {
		t.Errorf("SocketInodes(42) = %v, %v", inodes, err)
	}
	wantUDP := []UDPSocket{
		{LocalPort: 8126, RxQueue: 0x1a00, Inode: 55501, Drops: 17},
		{LocalPort: 40000, RemotePort: 8126, Inode: 55502},
		{LocalPort: 8126, Inode: 55503, Drops: 5},
	}
	for _, pid := range []int{0, 42} {
		socks, err := UDPSockets(pid)
		if err != nil || !slices.Equal(socks, wantUDP) {
			t.Errorf("UDPSockets(%d) = %+v, %v\nwant %+v", pid, socks, err, wantUDP)
		}
		if n, err := UDPRcvbufErrors(pid); err != nil || n != 4+5 {
			t.Errorf("UDPRcvbufErrors(%d) = %d, %v; want 9", pid, n, err)
		}
	}
	if got, err := UnixSocketInodes("/run/veneurd/dsd.sock"); err != nil || !reflect.DeepEqual(got, map[uint64]bool{60001: true}) {
		t.Errorf("UnixSocketInodes = %v, %v", got, err)
	}
	if _, err := Stat(44); err == nil {
		t.Error("Stat of a missing process succeeded")
	}
}

// TestWithoutIPv6 reads a namespace whose kernel has no IPv6: the IPv4
// figures alone.
func TestWithoutIPv6(t *testing.T) {
	fixture(t)
	for _, f := range []string{"42/net/udp6", "42/net/snmp6"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	if socks, err := UDPSockets(0); err != nil || len(socks) != 2 {
		t.Errorf("UDPSockets = %+v, %v", socks, err)
	}
	if n, err := UDPRcvbufErrors(0); err != nil || n != 4 {
		t.Errorf("UDPRcvbufErrors = %d, %v; want 4", n, err)
	}
}

// TestLive reads this process in the real /proc.
func TestLive(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	p, err := Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.PPid != os.Getppid() || p.Dead {
		t.Errorf("Stat(self) = %+v, parent %d", p, os.Getppid())
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss == 0 {
		t.Errorf("RSS(self) = %d, %v", rss, err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var st syscall.Stat_t
	rc, _ := conn.(*net.UDPConn).SyscallConn()
	rc.Control(func(fd uintptr) { err = syscall.Fstat(int(fd), &st) })
	if err != nil {
		t.Fatal(err)
	}
	held, err := SocketInodes(os.Getpid())
	if err != nil || !slices.Contains(held, st.Ino) {
		t.Fatalf("SocketInodes(self) = %v, %v; lacks %d", held, err, st.Ino)
	}
	socks, err := UDPSockets(0)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(socks, func(s UDPSocket) bool { return s.Inode == st.Ino })
	if i < 0 || socks[i].LocalPort != conn.LocalAddr().(*net.UDPAddr).Port || socks[i].RemotePort != 0 {
		t.Fatalf("the socket %d on %s is not in the UDP table: %+v", st.Ino, conn.LocalAddr(), socks)
	}
	if _, err := UDPRcvbufErrors(0); err != nil {
		t.Fatal(err)
	}
}
