package sdk_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/testpki"
	"github.com/veneurd/veneurd/sdk"
)

// TestServerTLS loads a certificate with and without a client CA, and
// names the attribute at fault for each problem.
func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "sdk test")
	cert, key := testpki.WriteCert(t, dir, "server", ca.Issue(t, "127.0.0.1"))
	caFile := ca.WriteCA(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	if tc, err := (*sdk.ServerTLS)(nil).Config(); tc != nil || err != nil {
		t.Errorf("no block: %v, %v; want nil, nil", tc, err)
	}
	tc, err := (&sdk.ServerTLS{CertFile: cert, KeyFile: key}).Config()
	if err != nil || tc.ClientAuth != tls.NoClientCert || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("certificate alone: %+v, %v", tc, err)
	} else if c, err := tc.GetCertificate(&tls.ClientHelloInfo{}); err != nil || c.Leaf.Subject.CommonName != "127.0.0.1" {
		t.Errorf("certificate alone serves %v, %v", c, err)
	}
	tc, err = (&sdk.ServerTLS{CertFile: cert, KeyFile: key, ClientCAFile: caFile}).Config()
	if err != nil || tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.ClientCAs == nil {
		t.Errorf("with a client CA: %+v, %v", tc, err)
	}

	for _, c := range []struct {
		block sdk.ServerTLS
		attr  string
	}{
		{sdk.ServerTLS{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: key}, "tls.cert_file"},
		{sdk.ServerTLS{CertFile: cert, KeyFile: filepath.Join(dir, "missing.pem")}, "tls.key_file"},
		{sdk.ServerTLS{CertFile: cert, KeyFile: cert}, "tls.cert_file"},
		{sdk.ServerTLS{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "missing.pem")}, "tls.client_ca_file"},
		{sdk.ServerTLS{CertFile: cert, KeyFile: key, ClientCAFile: notPEM}, "tls.client_ca_file"},
	} {
		_, err := c.block.Config()
		var ae *sdk.AttrError
		if !errors.As(err, &ae) || ae.Attribute != c.attr {
			t.Errorf("%+v: %v, want a problem with %s", c.block, err, c.attr)
		}
	}
}

// TestServerTLSRenewal rewrites the certificate and key files of a serving
// configuration: the next connections get the new certificate, without a
// new configuration. (TestCertReloaderKeepsTheLastGoodPair has files that
// do not load.)
func TestServerTLSRenewal(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "renewal test")
	cert, key := testpki.WriteCert(t, dir, "server", ca.Issue(t, "first"))
	tc, err := (&sdk.ServerTLS{CertFile: cert, KeyFile: key}).Config()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	served := func() string {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	testpki.WriteCert(t, dir, "server", ca.Issue(t, "second"))
	if !daemontest.Until(10*time.Second, func() bool { return served() == "second" }) {
		t.Fatalf("still served %q after the files were rewritten", served())
	}
}
