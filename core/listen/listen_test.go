package listen

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nonblocking reports whether fd's open file description is non-blocking.
func nonblocking(t *testing.T, fd uintptr) bool {
	t.Helper()
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.O_NONBLOCK != 0
}

// TestSocketsStayNonBlocking guards the contract the source processes rely
// on: the pool's sockets, whose open file descriptions they share, stay
// non-blocking whatever the pool does with them (File.Fd would make them
// blocking, and every reader's deadline would stop working).
func TestSocketsStayNonBlocking(t *testing.T) {
	p := NewPool()
	k := Key{Address: freeUDP(t)}
	f, err := p.Acquire(k)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(k)
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		rc.Control(func(fd uintptr) {
			if !nonblocking(t, fd) {
				t.Fatalf("%s: the socket is blocking", when)
			}
		})
	}
	check("after Acquire")
	p.Drops()
	check("after Drops")
	if len(p.Keys()) != 1 {
		t.Fatalf("keys %v", p.Keys())
	}
}

func TestAcquireCountsReferences(t *testing.T) {
	p := NewPool()
	addr := freeUDP(t)
	k := Key{Address: addr}
	f1, err := p.Acquire(k)
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := p.Acquire(k)
	if f1 != f2 {
		t.Fatal("a second Acquire opened another socket")
	}
	p.Release(k)
	if len(p.Keys()) != 1 {
		t.Fatal("the socket closed while still held")
	}
	p.Release(k)
	if len(p.Keys()) != 0 {
		t.Fatal("the socket outlived its last reference")
	}
	// The port is free again.
	c, err := net.ListenPacket("udp", addr[len("udp://"):])
	if err != nil {
		t.Fatalf("the closed socket still holds its port: %v", err)
	}
	c.Close()
}

func TestAcquireRefusesBadAddresses(t *testing.T) {
	p := NewPool()
	for addr, want := range map[string]string{
		"udp://127.0.0.1":   `"udp://127.0.0.1" has no port: write it as udp://127.0.0.1:8126`,
		"udp://127.0.0.1:0": `"udp://127.0.0.1:0": the port 0 is out of range: a port is 1 to 65535`,
	} {
		if _, err := p.Acquire(Key{Address: addr}); err == nil || err.Error() != want {
			t.Errorf("Acquire(%q): %v, want %s", addr, err, want)
		}
	}
	if len(p.Keys()) != 0 {
		t.Errorf("keys %v", p.Keys())
	}
}

// freeUDP returns a udp:// address with a free port.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return "udp://" + c.LocalAddr().String()
}

// TestDropsCounted floods a pool socket nobody reads: every datagram sent
// over loopback is either queued or dropped, so what Drops reports plus
// what is then read is exactly what was sent.
func TestDropsCounted(t *testing.T) {
	p := NewPool()
	addr := freeUDP(t)
	k := Key{Address: addr}
	f, err := p.Acquire(k)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(k)
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel raises a tiny SO_RCVBUF to its minimum (a few KiB).
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Dial("udp", addr[len("udp://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	sent := 0
	payload := make([]byte, 500)
	for range 2000 {
		if _, err := out.Write(payload); err == nil {
			sent++
		}
	}
	drops := p.Drops()[addr]
	if drops == 0 {
		t.Fatalf("no drops reported for %s after %d datagrams: %v", addr, sent, p.Drops())
	}
	// Read what was queued, until the socket has been empty for a while.
	c, err := net.FilePacketConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	received := 0
	buf := make([]byte, 1024)
	for {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := c.ReadFrom(buf); err != nil {
			break
		}
		received++
	}
	if uint64(received)+drops != uint64(sent) {
		t.Errorf("sent %d, received %d, dropped %d: %d unaccounted for", sent, received, drops, sent-received-int(drops))
	}
}

// TestUnixSocketFileRemovedWithLastUser checks that a unix socket's file
// goes when the last source holding the socket lets go, and not before; and
// that a file put at its path since is left alone.
func TestUnixSocketFileRemovedWithLastUser(t *testing.T) {
	for _, scheme := range []string{"unixgram", "unix"} {
		path := filepath.Join(t.TempDir(), "dsd.sock")
		p := NewPool()
		k := Key{Address: scheme + "://" + path}
		for range 2 {
			if _, err := p.Acquire(k); err != nil {
				t.Fatal(err)
			}
		}
		p.Release(k)
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s: socket file gone while a user holds it: %v", scheme, err)
		}
		p.Release(k)
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s: socket file still there after its last user let go (%v)", scheme, err)
		}

		if _, err := p.Acquire(k); err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
		if err := os.WriteFile(path, []byte("not ours"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.Release(k)
		if b, err := os.ReadFile(path); err != nil || string(b) != "not ours" {
			t.Errorf("%s: a file that replaced the socket was touched: %q, %v", scheme, b, err)
		}
	}
}
