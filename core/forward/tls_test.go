package forward

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/discovery"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/testpki"
	"github.com/veneurd/veneurd/sdk"
)

// TestMutualTLS serves a receiver that requires a client certificate from
// its CA: a forwarder without one is refused, its batch kept and the
// failure counted; one with a certificate of the CA delivers.
func TestMutualTLS(t *testing.T) {
	ca := testpki.NewCA(t, "forward test")
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "veneurd")},
		ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	g := aggregate.New(aggConfig)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewReceiver(g.Import, telemetry.New()).Serve(l, grpc.Creds(credentials.NewTLS(serverTLS)))
	defer srv.Stop(t.Context())

	forwarder := func(certs ...tls.Certificate) (*aggregate.Aggregator, *Forwarder, *telemetry.Registry) {
		tel := telemetry.New()
		creds := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, Certificates: certs, MinVersion: tls.VersionTLS12})
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
	_, signed, _ := forwarder(ca.Issue(t, "local"))
	waitSent(t, signed)
	if v := values(g.Flush(2)); v["requests"] != 2 {
		t.Fatalf("the global got %v from the certified forwarder, want requests 2", v)
	}
}
