package ssf

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/veneurd/veneurd/internal/testpki"
	"github.com/veneurd/veneurd/plugins/sources/ssf/ssfpb"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestGRPCOverMutualTLS serves SendSpan over TLS with a client CA: a
// client with a certificate of the CA sends every span; one without a
// certificate and a cleartext one are refused at the handshake, counted,
// and send nothing.
func TestGRPCOverMutualTLS(t *testing.T) {
	const spans = 50
	ca := testpki.NewCA(t, "ssf test")
	dir := t.TempDir()
	certFile, keyFile := testpki.WriteCert(t, dir, "server", ca.Issue(t, "127.0.0.1"))
	send := func(t *testing.T, addr string, creds credentials.TransportCredentials, n int) error {
		a, err := sdk.ParseAddress(addr)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := grpc.NewClient(a.Addr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		client := ssfpb.NewSSFGRPCClient(cc)
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := client.SendSpan(ctx, spanWithCounter("secure", 1))
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	refusals := func(got *sdktest.Collector) int {
		return len(slices.DeleteFunc(got.Errors(), func(e sdktest.Error) bool {
			return e != sdktest.Error{PacketType: "connection", Reason: "tls_handshake"}
		}))
	}
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"tls": map[string]any{
			"cert_file": certFile, "key_file": keyFile, "client_ca_file": ca.WriteCA(t, dir)}},
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			client := &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Issue(t, "client")}}
			if err := send(t, addrs[0], credentials.NewTLS(client), spans); err != nil {
				t.Fatalf("with a client certificate: %v", err)
			}
			if err := send(t, addrs[0], credentials.NewTLS(&tls.Config{RootCAs: ca.Pool}), 1); err == nil {
				t.Error("a client without a certificate was served")
			}
			if err := send(t, addrs[0], insecure.NewCredentials(), 1); err == nil {
				t.Error("a cleartext client was served")
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool { return refusals(got) >= 2 },
	})
	if n := len(got.Metrics()); n != spans {
		t.Errorf("%d samples, want %d", n, spans)
	}
	if n := refusals(got); n < 2 {
		t.Errorf("%d refused handshakes counted, want at least 2", n)
	}
}
