package sdktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// How long Source waits for what was sent to arrive, and for Run to return
// once its context is cancelled.
const (
	arriveTimeout = 10 * time.Second
	returnTimeout = 5 * time.Second
)

// ListenAttribute is the attribute in which veneurd finds the sockets a source
// block asks for. It is veneurd's, and a source need not declare it; Source
// fills it in for a source that does, as veneurd gives its value to one.
const ListenAttribute = "listen"

// SourceCase describes how to run one source through the kit.
type SourceCase struct {
	// Config is the source's block: attribute names to values, sent as the
	// JSON object veneurd sends (see Configure). Leave out the listen
	// attribute: Source sets it to the addresses it opened.
	Config map[string]any

	// Listen lists the sockets the kit opens and hands to Run, as veneurd
	// does: "udp://127.0.0.1:0", "tcp://127.0.0.1:0", "unixgram://" or
	// "unix://" (the last two in a new temporary directory; give a path to
	// choose one). Port 0 picks a free port.
	Listen []string

	// AfterConfigure, if set, runs after Configure succeeded and before Run.
	// It checks that Configure had no side effect.
	AfterConfigure func(t *testing.T)

	// Send, if set, sends traffic once Run has been called. addrs are the
	// Listen addresses as opened, with their ports and paths filled in, in
	// the same order; Dial connects to one.
	Send func(t *testing.T, addrs []string)

	// Want, if set, reports whether everything Send sent has arrived. It is
	// called repeatedly, while the source runs, until it returns true; Run
	// is stopped then. The kit fails the test if that takes longer than ten
	// seconds.
	Want func(t *testing.T, got *Collector) bool
}

// Source runs the source newPlugin returns through the contract: it checks the
// schema over gRPC and configures the source with c.Config, runs
// c.AfterConfigure, opens c.Listen and calls Run with those sockets and a
// Collector, then calls c.Send and waits for c.Want. It then cancels Run's
// context and checks that Run returns within five seconds and that the source
// kept the Writer contract (see Collector).
//
// Run is called as a Go method, because the sockets are handed to it as files
// of this process; the SDK's gRPC server does no more than that, and streams
// what the Writers flush.
//
// Source returns the Collector, closed, so that the caller can check exactly
// what arrived.
func Source(t *testing.T, newPlugin func() sdk.Source, c SourceCase) *Collector {
	t.Helper()
	p := newPlugin()
	cc, kind := conn(t, p)
	if kind != sdk.KindSource {
		t.Fatalf("%T is served as a %s, not a source", p, kind)
	}
	pc := pb.NewPluginClient(cc)
	sch := checkSchema(t, p, pc)

	listeners, addrs := openListeners(t, c.Listen)
	config := c.Config
	if _, ok := sch.Lookup(ListenAttribute); ok {
		if _, set := config[ListenAttribute]; set {
			t.Fatalf("sdktest.SourceCase: set Listen, not Config[%q]", ListenAttribute)
		}
		config = make(map[string]any, len(c.Config)+1)
		for k, v := range c.Config {
			config[k] = v
		}
		config[ListenAttribute] = addrs
	}
	mustConfigure(t, pc, SourceAddress, config)
	if c.AfterConfigure != nil {
		c.AfterConfigure(t)
	}

	got := &Collector{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, listeners, got) }()

	if c.Send != nil {
		c.Send(t, addrs)
	}
	if c.Want != nil {
		deadline := time.Now().Add(arriveTimeout)
		for !c.Want(t, got) {
			select {
			case err := <-done:
				got.Close()
				t.Fatalf("Run returned before its context was cancelled (error: %v); it had collected %s", err, got)
			default:
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("what was sent did not arrive within %s; the source flushed %s", arriveTimeout, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("Run returned an error after its context was cancelled (veneurd ignores it): %v", err)
		}
	case <-time.After(returnTimeout):
		t.Fatalf("Run did not return within %s of its context being cancelled", returnTimeout)
	}
	got.Close()
	for _, p := range got.Problems() {
		t.Errorf("Writer contract: %s", p)
	}
	return got
}

// openListeners opens each address as veneurd does and returns the sockets
// as Listeners, with the addresses as opened. The files are closed when the
// test ends.
func openListeners(t *testing.T, addrs []string) ([]sdk.Listener, []string) {
	t.Helper()
	var dir string
	listeners := make([]sdk.Listener, len(addrs))
	opened := make([]string, len(addrs))
	for i, s := range addrs {
		a, err := sdk.ParseUnboundAddress(s)
		if err != nil {
			t.Fatalf("listen address: %v", err)
		}
		type filer interface{ File() (*os.File, error) }
		var (
			c     filer
			local net.Addr
		)
		switch a.Network {
		case "udp", "udp4", "udp6":
			conn, err := net.ListenPacket(a.Network, a.Addr())
			if err != nil {
				t.Fatalf("listen on %q: %v", s, err)
			}
			defer conn.Close()
			c, local = conn.(*net.UDPConn), conn.LocalAddr()
		case "tcp", "tcp4", "tcp6":
			l, err := net.Listen(a.Network, a.Addr())
			if err != nil {
				t.Fatalf("listen on %q: %v", s, err)
			}
			defer l.Close()
			c, local = l.(*net.TCPListener), l.Addr()
		case "unix", "unixgram":
			if a.Path == "" {
				if dir == "" {
					// Socket paths are limited to about 100 bytes, too few
					// for t.TempDir.
					dir, err = os.MkdirTemp("", "sdktest")
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { os.RemoveAll(dir) })
				}
				a.Path = filepath.Join(dir, fmt.Sprintf("%d.sock", i))
			}
			if a.Network == "unixgram" {
				conn, err := net.ListenPacket("unixgram", a.Path)
				if err != nil {
					t.Fatalf("listen on %q: %v", s, err)
				}
				defer conn.Close()
				c = conn.(*net.UnixConn)
			} else {
				l, err := net.Listen("unix", a.Path)
				if err != nil {
					t.Fatalf("listen on %q: %v", s, err)
				}
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				defer l.Close()
				c = l.(*net.UnixListener)
			}
		}
		if local != nil {
			ap := local.(interface{ AddrPort() netip.AddrPort }).AddrPort()
			a.Host, a.Port = ap.Addr().Unmap().String(), int(ap.Port())
		}
		opened[i] = a.String()
		f, err := c.File()
		if err != nil {
			t.Fatalf("listen on %q: %v", s, err)
		}
		t.Cleanup(func() { f.Close() })
		listeners[i] = sdk.Listener{Address: opened[i], File: f}
	}
	return listeners, opened
}

// Dial connects to an address Source opened, such as "udp://127.0.0.1:40123"
// or "unixgram:///tmp/sdktest123/0.sock". The connection is closed when the
// test ends.
func Dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	a, err := sdk.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial(a.Network, a.Addr())
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
