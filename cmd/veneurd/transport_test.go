package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/proc"
	"github.com/veneurd/veneurd/internal/testpki"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	clientCert                tls.Certificate
	roots                     *x509.CertPool
	otherClientCert           tls.Certificate // signed by another CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "veneurd test")
	p := &testPKI{dir: dir, roots: ca.Pool, caFile: ca.WriteCA(t, dir), clientCert: ca.Issue(t, "client"),
		otherClientCert: testpki.NewCA(t, "other").Issue(t, "stranger")}
	p.certFile, p.keyFile = testpki.WriteCert(t, dir, "server", ca.Issue(t, "127.0.0.1"))
	return p
}

// TestTransports sends counters over every transport to one daemon and
// checks each total exactly.
func TestTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	pki := newTestPKI(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	udp := daemontest.FreePort(t, "udp")
	udpReaders := daemontest.FreePort(t, "udp")
	tcp := daemontest.FreePort(t, "tcp")
	tlsMutual := daemontest.FreePort(t, "tcp")
	tlsServer := daemontest.FreePort(t, "tcp")
	unixgram := filepath.Join(dir, "dsd.sock")
	unixStream := filepath.Join(dir, "dsd-stream.sock")
	// A stale socket file from a previous run must be replaced.
	if l, err := net.Listen("unix", unixStream); err == nil {
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
	}
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
source "dogstatsd" "plain" {
  listen = ["udp://%s", "tcp://%s", "unixgram://%s", "unix://%s"]
}
source "dogstatsd" "readers" {
  listen  = ["udp://%s"]
  readers = 3
}
source "dogstatsd" "mutual" {
  listen = ["tcp://%s"]
  tls {
    cert_file      = %q
    key_file       = %q
    client_ca_file = %q
  }
}
source "dogstatsd" "tls" {
  listen = ["tcp://%s"]
  tls {
    cert_file = %q
    key_file  = %q
  }
}
sink "localfile" "out" { path = %q }
`, udp, tcp, unixgram, unixStream, udpReaders, tlsMutual, pki.certFile, pki.keyFile, pki.caFile,
		tlsServer, pki.certFile, pki.keyFile, out))

	if n := countSockets(t, d.Cmd.Process.Pid, udpReaders); n != 3 {
		t.Errorf("readers = 3 opened %d sockets for %s", n, udpReaders)
	}

	const n = 500
	lines := func(name string) []byte {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "transport.%s:1|c|#i:%d\n", name, i%2)
		}
		return []byte(b.String())
	}
	send := func(network, addr string, payload []byte) {
		t.Helper()
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if network == "udp" || network == "unixgram" {
			for _, l := range strings.SplitAfter(string(payload), "\n") {
				if l != "" {
					c.Write([]byte(l))
				}
			}
			return
		}
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	send("udp", udp, lines("udp"))
	send("tcp", tcp, lines("tcp"))
	send("unixgram", unixgram, lines("unixgram"))
	send("unix", unixStream, lines("unix"))
	// Several senders, so that SO_REUSEPORT spreads them over the readers.
	for range 4 {
		send("udp", udpReaders, lines("readers"))
	}
	sendTLS := func(addr string, cert *tls.Certificate, payload []byte) error {
		cfg := &tls.Config{RootCAs: pki.roots, ServerName: "127.0.0.1"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(payload); err != nil {
			return err
		}
		// With TLS 1.3 a refused client certificate shows on the first read.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	if err := sendTLS(tlsMutual, &pki.clientCert, lines("mutual")); err != nil {
		t.Errorf("client with a certificate from the CA: %v", err)
	}
	if err := sendTLS(tlsMutual, nil, []byte("transport.refused:1|c\n")); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	if err := sendTLS(tlsMutual, &pki.otherClientCert, []byte("transport.refused:1|c\n")); err == nil {
		t.Error("a client with a certificate from another CA was accepted")
	}
	if err := sendTLS(tlsServer, nil, lines("tls")); err != nil {
		t.Errorf("server-only TLS: %v", err)
	}

	want := map[string]float64{"udp": n, "tcp": n, "unixgram": n, "unix": n, "readers": 4 * n, "mutual": n, "tls": n}
	total := func(ls []daemontest.Line, name string) float64 {
		return daemontest.Sum(ls, "transport."+name, "i:0") + daemontest.Sum(ls, "transport."+name, "i:1")
	}
	d.WaitLines(out, 20*time.Second, func(ls []daemontest.Line) bool {
		for name, w := range want {
			if total(ls, name) < w {
				return false
			}
		}
		return true
	})
	got := d.WaitFlushed(out, 2, 20*time.Second) // anything extra would show
	for name, w := range want {
		if g := total(got, name); g != w {
			t.Errorf("transport.%s = %v, want %v", name, g, w)
		}
	}
	if g := daemontest.Sum(got, "transport.refused"); g != 0 {
		t.Errorf("refused TLS clients got %v through", g)
	}
}

// countSockets counts the UDP sockets bound to addr that the daemon holds.
func countSockets(t *testing.T, pid int, addr string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := parsePort(port)
	held, err := proc.SocketInodes(pid)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[uint64]bool{}
	for _, ino := range held {
		inodes[ino] = true
	}
	socks, err := proc.UDPSockets(0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range socks {
		if s.LocalPort == p && inodes[s.Inode] {
			n++
		}
	}
	return n
}

func parsePort(s string) (int, error) {
	var p int
	_, err := fmt.Sscanf(s, "%d", &p)
	return p, err
}

func splitHostPort(addr string) (string, string, error) { return net.SplitHostPort(addr) }

var netDial = net.Dial
