package listen

import (
	"net"
	"os"
	"path/filepath"
	"testing"

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
	k := Key{Address: "udp://127.0.0.1:0"}
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
	c, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := "udp://" + c.LocalAddr().String()
	c.Close()
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
	c, err = net.ListenPacket("udp", addr[len("udp://"):])
	if err != nil {
		t.Fatalf("the closed socket still holds its port: %v", err)
	}
	c.Close()
}

func TestParseAddress(t *testing.T) {
	f := func(in, network, addr string) {
		t.Helper()
		a, err := ParseAddress(in)
		if err != nil || a.Network != network || a.Addr != addr {
			t.Errorf("ParseAddress(%q) = %+v, %v", in, a, err)
		}
	}
	f("udp://127.0.0.1:8126", "udp", "127.0.0.1:8126")
	f("tcp6://[::1]:8126", "tcp6", "[::1]:8126")
	f("unixgram:///run/veneurd/dsd.sock", "unixgram", "/run/veneurd/dsd.sock")
	f("unix:///tmp/x.sock", "unix", "/tmp/x.sock")
	for _, bad := range []string{"udp://127.0.0.1", "http://x:1", "unix://", "127.0.0.1:8126"} {
		if _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
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
