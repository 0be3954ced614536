package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/discovery"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/sdk"
)

// testCA makes a CA and certificates it signs, for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "veneurd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS serves a receiver that requires a client certificate from
// its CA: a forwarder without one is refused, its batch kept and the
// failure counted; one with a certificate of the CA delivers.
func TestMutualTLS(t *testing.T) {
	ca := newCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, x509.ExtKeyUsageServerAuth)},
		ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	g := aggregate.New(aggConfig)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewReceiver(g.Import, telemetry.New()).Serve(l, grpc.Creds(credentials.NewTLS(serverTLS)))
	defer srv.Stop(t.Context())

	forwarder := func(certs ...tls.Certificate) (*aggregate.Aggregator, *Forwarder, *telemetry.Registry) {
		tel := telemetry.New()
		creds := credentials.NewTLS(&tls.Config{RootCAs: ca.pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		f, err := New(Config{Members: discovery.NewStatic([]string{l.Addr().String()}), Hostname: "local", Timeout: time.Second,
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(creds)}}, tel, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Stop(t.Context()) })
		a := aggregate.New(aggConfig)
		a.SetForward(f.Add)
		add(t, a, sdk.Counter, sdk.ScopeGlobal, "requests", 2)
		a.Flush(1)
		f.EndInterval(1)
		return a, f, tel
	}

	_, anon, tel := forwarder()
	if !daemontest.Until(10*time.Second, func() bool { return tel.CounterValue(ForwardErrors, "cause:unavailable") > 0 }) {
		t.Fatal("a forwarder without a certificate was not refused")
	}
	if anon.Pending() != 1 {
		t.Fatalf("the refused batch is not kept: %d pending", anon.Pending())
	}
	_, signed, _ := forwarder(ca.issue(t, x509.ExtKeyUsageClientAuth))
	waitSent(t, signed)
	if v := values(g.Flush(2)); v["requests"] != 2 {
		t.Fatalf("the global got %v from the certified forwarder, want requests 2", v)
	}
}
