package ssf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/plugins/sources/ssf/ssfpb"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// frame encodes a span in Veneur's stream framing.
func frame(span []byte) []byte {
	b := []byte{frameVersion, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(span)))
	return append(b, span...)
}

// rawCodec sends a request's bytes as they are, to send the service what
// its generated client would refuse to encode.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return nil, errors.New("raw codec: not bytes")
}
func (rawCodec) Unmarshal(data []byte, v any) error { return nil }
func (rawCodec) Name() string                       { return "proto" }

func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	a, err := sdk.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(a.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// sendRaw calls SendSpan with b as the request's bytes.
func sendRaw(cc *grpc.ClientConn, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cc.Invoke(ctx, ssfpb.SSFGRPC_SendSpan_FullMethodName, b, new(ssfpb.Empty), grpc.ForceCodec(rawCodec{}))
}

// TestConformance runs the source through the SDK's kit on every
// transport: one good span and one that does not decode on each.
func TestConformance(t *testing.T) {
	good := marshal(t, &ssfpb.SSFSpan{Metrics: []*ssfpb.SSFSample{
		{Metric: ssfpb.SSFSample_COUNTER, Name: "a", Value: 1, Tags: map[string]string{"b": "2", "a": "1"}}}})
	bad := []byte("not a span")
	listen := []string{"udp://127.0.0.1:0", "unixgram://", "unix://", "tcp://127.0.0.1:0"}
	n := len(listen)
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Listen: listen,
		Send: func(t *testing.T, addrs []string) {
			for _, a := range addrs {
				switch {
				case strings.HasPrefix(a, "udp"), strings.HasPrefix(a, "unixgram"):
					c := sdktest.Dial(t, a)
					for _, p := range [][]byte{good, bad} { // a datagram each
						if _, err := c.Write(p); err != nil {
							t.Fatal(err)
						}
					}
				case strings.HasPrefix(a, "unix"):
					c := sdktest.Dial(t, a)
					// The bad span is framed: it is skipped, and the
					// connection goes on.
					if _, err := c.Write(append(frame(bad), frame(good)...)); err != nil {
						t.Fatal(err)
					}
				default:
					cc := grpcConn(t, a)
					if _, err := ssfpb.NewSSFGRPCClient(cc).SendSpan(context.Background(), mustUnmarshal(t, good)); err != nil {
						t.Fatal(err)
					}
					err := sendRaw(cc, bad)
					if status.Code(err) != codes.InvalidArgument {
						t.Errorf("a bad span over gRPC: %v, want InvalidArgument", err)
					}
				}
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return len(got.Metrics()) >= n && len(got.Errors()) >= n
		},
	})
	if len(got.Metrics()) != n || len(got.Errors()) != n {
		t.Fatalf("want %d of each, got %s", n, got)
	}
	want := sdktest.Metric{Type: sdk.Counter, Name: "a", Tags: "a:1,b:2", Value: 1, Rate: 1}
	for _, m := range got.Metrics() {
		m.Protocol = ""
		if m != want {
			t.Errorf("metric %v, want %v", m, want)
		}
	}
	for _, e := range got.Errors() {
		if e != (sdktest.Error{PacketType: PacketSpan, Reason: ReasonInvalid}) {
			t.Errorf("error %+v, want a span rejected as %s", e, ReasonInvalid)
		}
	}
	wantReceived := sdktest.Received{protoUDP: 2, protoUnixgram: 2, protoUnix: 2, protoGRPC: 2}
	if r := got.Received(); !reflect.DeepEqual(r, wantReceived) {
		t.Errorf("received %v, want %v", r, wantReceived)
	}
}

func mustUnmarshal(t *testing.T, b []byte) *ssfpb.SSFSpan {
	t.Helper()
	sp := new(ssfpb.SSFSpan)
	if err := proto.Unmarshal(b, sp); err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestFraming checks the UNIX stream framing's failures: a frame too long
// is skipped and the connection goes on; a frame of an unknown version, or
// one cut by the connection's end, ends it.
func TestFraming(t *testing.T) {
	good := marshal(t, &ssfpb.SSFSpan{Metrics: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "a", Value: 1}}})
	long := marshal(t, &ssfpb.SSFSpan{Service: strings.Repeat("x", 600), Metrics: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "long", Value: 1}}})
	badVersion := frame(good)
	badVersion[0] = 1
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_span_size": 512},
		Listen: []string{"unix://", "unix://", "unix://"},
		Send: func(t *testing.T, addrs []string) {
			// Each connection's bytes in one write: the source may close
			// the connection before a second one.
			write := func(a string, parts ...[]byte) {
				c := sdktest.Dial(t, a)
				if _, err := c.Write(bytes.Join(parts, nil)); err != nil {
					t.Fatal(err)
				}
				c.(*net.UnixConn).CloseWrite()
			}
			write(addrs[0], frame(good), frame(long), frame(good))         // 2 metrics, toolong
			write(addrs[1], frame(good), badVersion, frame(good))          // 1 metric, framing
			write(addrs[2], frame(good), frame(good)[:len(frame(good))-2]) // 1 metric, framing
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return len(got.Metrics()) >= 4 && len(got.Errors()) >= 3
		},
	})
	if len(got.Metrics()) != 4 {
		t.Errorf("want 4 metrics, got %s", got)
	}
	reasons := map[string]int{}
	for _, e := range got.Errors() {
		reasons[e.PacketType+"/"+e.Reason]++
	}
	want := map[string]int{"ssf/" + ReasonTooLong: 1, "ssf/" + ReasonFraming: 2}
	if !reflect.DeepEqual(reasons, want) {
		t.Errorf("errors %v, want %v", reasons, want)
	}
}

// TestOversizedDatagram checks that a datagram past max_packet_size is
// dropped whole and counted, and the datagrams around it kept.
func TestOversizedDatagram(t *testing.T) {
	good := marshal(t, &ssfpb.SSFSpan{Metrics: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "a", Value: 1}}})
	long := marshal(t, &ssfpb.SSFSpan{Service: strings.Repeat("x", 2000), Metrics: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "a", Value: 1}}})
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_packet_size": 1024},
		Listen: []string{"udp://127.0.0.1:0", "unixgram://"},
		Send: func(t *testing.T, addrs []string) {
			for _, a := range addrs {
				c := sdktest.Dial(t, a)
				for _, p := range [][]byte{good, long, good[:len(good)-1], {}, good} {
					if _, err := c.Write(p); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return len(got.Metrics()) >= 4 && len(got.Errors()) >= 6
		},
	})
	if len(got.Metrics()) != 4 {
		t.Errorf("want 4 metrics, got %s", got)
	}
	reasons := map[string]int{}
	for _, e := range got.Errors() {
		reasons[e.Reason]++
	}
	want := map[string]int{ReasonTooLong: 2, ReasonTruncated: 2, ReasonEmpty: 2}
	if !reflect.DeepEqual(reasons, want) {
		t.Errorf("errors %v, want %v", reasons, want)
	}
}

// TestGRPCConcurrent sends spans over gRPC from several clients at once: the
// calls share the service's Writers, and every sample must arrive once.
func TestGRPCConcurrent(t *testing.T) {
	const clients, calls = 8, 100
	span := spanWithCounter("c", 1)
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			cc := grpcConn(t, addrs[0])
			client := ssfpb.NewSSFGRPCClient(cc)
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for range calls {
						if _, err := client.SendSpan(context.Background(), span); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool { return len(got.Metrics()) >= clients*calls },
	})
	if n := len(got.Metrics()); n != clients*calls {
		t.Errorf("%d samples, want %d", n, clients*calls)
	}
}
