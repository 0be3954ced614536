package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// hostPort strips an address's scheme: "tcp://127.0.0.1:1234" is
// "127.0.0.1:1234".
func hostPort(t *testing.T, addr string) string {
	a, err := sdk.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Addr()
}

func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(hostPort(t, addr), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func grpcClient(t *testing.T, addr string) colmetricspb.MetricsServiceClient {
	return colmetricspb.NewMetricsServiceClient(grpcConn(t, addr))
}

// rawRequest is a request already encoded, which rawClientCodec sends as
// it is.
type rawRequest []byte

type rawClientCodec struct{}

func (rawClientCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawRequest); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return protoCodec.Marshal(v)
}

func (rawClientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return protoCodec.Unmarshal(data, v)
}
func (rawClientCodec) Name() string { return "proto" }

// postChunked posts body without a Content-Length.
func postChunked(t *testing.T, addr string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+hostPort(t, addr)+MetricsPath, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentProtobuf)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// post sends body to addr's /v1/metrics and returns the status and body.
func post(t *testing.T, addr, contentType, encoding string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+hostPort(t, addr)+MetricsPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the source through the SDK's kit: one listener
// takes OTLP/gRPC (plain and gzip) and OTLP/HTTP (protobuf, JSON, gzip).
func TestConformance(t *testing.T) {
	req := func(via string) *colmetricspb.ExportMetricsServiceRequest {
		return request(attrs("service.name", "api", "host.name", "h1"),
			sum("hits", deltaT, true, integer(2, 0, 1, str("via", via))))
	}
	vias := []string{"grpc", "grpc-gzip", "http-protobuf", "http-json", "http-gzip", "grpc-unix", "http-unix"}
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"include_resource_attributes": []string{"service.name"}},
		Listen: []string{"tcp://127.0.0.1:0", "unix://"},
		Send: func(t *testing.T, addrs []string) {
			c := grpcClient(t, addrs[0])
			ctx := context.Background()
			if resp, err := c.Export(ctx, req("grpc")); err != nil || resp.PartialSuccess != nil {
				t.Fatalf("grpc: %v %v", resp, err)
			}
			if _, err := c.Export(ctx, req("grpc-gzip"), grpc.UseCompressor("gzip")); err != nil {
				t.Fatalf("grpc gzip: %v", err)
			}
			if code, body := post(t, addrs[0], contentProtobuf, "", mustMarshal(t, req("http-protobuf"))); code != 200 {
				t.Fatalf("http protobuf: %d %q", code, body)
			}
			js, _ := protojson.Marshal(req("http-json"))
			if code, body := post(t, addrs[0], "application/json; charset=utf-8", "", js); code != 200 || string(body) != "{}" {
				t.Fatalf("http json: %d %q", code, body)
			}
			if code, body := post(t, addrs[0], contentProtobuf, "gzip", gzipped(mustMarshal(t, req("http-gzip")))); code != 200 {
				t.Fatalf("http gzip: %d %q", code, body)
			}
			// A UNIX stream socket serves both too.
			path := strings.TrimPrefix(addrs[1], "unix://")
			cc, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			if _, err := colmetricspb.NewMetricsServiceClient(cc).Export(ctx, req("grpc-unix")); err != nil {
				t.Fatalf("grpc over unix: %v", err)
			}
			hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			}}}
			resp, err := hc.Post("http://unix"+MetricsPath, contentProtobuf, bytes.NewReader(mustMarshal(t, req("http-unix"))))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("http over unix: %v %v", resp, err)
			}
			resp.Body.Close()
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool { return len(got.Metrics()) >= len(vias) },
	})
	var tags []string
	for _, m := range got.Metrics() {
		if m.Type != sdk.Counter || m.Name != "hits" || m.Value != 2 {
			t.Errorf("metric %v", m)
		}
		tags = append(tags, m.Protocol+" "+m.Tags)
	}
	want := []string{
		"grpc service.name:api,via:grpc", "grpc service.name:api,via:grpc-gzip",
		"http service.name:api,via:http-protobuf", "http service.name:api,via:http-json", "http service.name:api,via:http-gzip",
		"grpc service.name:api,via:grpc-unix", "http service.name:api,via:http-unix",
	}
	if !slices.Equal(tags, want) {
		t.Errorf("got %q, want %q", tags, want)
	}
}

// manyPoints encodes by hand a request of one gauge of n data points (11
// bytes each), which the generated types would take a long time to build.
func manyPoints(n int) []byte {
	var pts []byte
	for range n {
		var p []byte
		p = protowire.AppendTag(p, 6, protowire.Fixed64Type) // as_int
		p = protowire.AppendFixed64(p, 1)
		pts = protowire.AppendTag(pts, 1, protowire.BytesType) // data_points
		pts = protowire.AppendBytes(pts, p)
	}
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.BytesType)
	m = protowire.AppendString(m, "many")
	m = protowire.AppendTag(m, 5, protowire.BytesType) // gauge
	m = protowire.AppendBytes(m, pts)
	var sm []byte
	sm = protowire.AppendTag(sm, 2, protowire.BytesType) // metrics
	sm = protowire.AppendBytes(sm, m)
	var rm []byte
	rm = protowire.AppendTag(rm, 2, protowire.BytesType) // scope_metrics
	rm = protowire.AppendBytes(rm, sm)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType) // resource_metrics
	return protowire.AppendBytes(req, rm)
}

// TestBadRequests sends what the source must refuse, each counted under
// its reason and answered as OTLP says (HTTP status and google.rpc.Status,
// gRPC code), between good requests, which are kept.
func TestBadRequests(t *testing.T) {
	good := func(v int64) []byte {
		b, _ := proto.Marshal(request(nil, sum("good", deltaT, true, integer(v, 0, 1))))
		return b
	}
	million := manyPoints(1_000_000)
	broken := good(1)
	broken = broken[:len(broken)-3]
	huge := bytes.Repeat([]byte{0}, 16<<20+1) // one byte over max_request_bytes
	bomb := gzipped(huge)
	partial, _ := proto.Marshal(request(nil, gauge("g", integer(1, 0, 1), dbl(math.NaN(), 0, 1))))

	wantReasons := map[string]int{
		ReasonTooManyPoints: 2, ReasonBadProtobuf: 2, ReasonBadJSON: 1, ReasonBadGzip: 1,
		ReasonUnsupportedMedia: 1, ReasonTooLarge: 4, ReasonInvalidValue: 1,
	}
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			a := addrs[0]
			conn := grpcConn(t, a)
			ctx := context.Background()
			grpcRaw := func(body []byte) (*colmetricspb.ExportMetricsServiceResponse, error) {
				resp := &colmetricspb.ExportMetricsServiceResponse{}
				err := conn.Invoke(ctx, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
					rawRequest(body), resp, grpc.ForceCodecV2(rawClientCodec{}))
				return resp, err
			}
			wantCode := func(what string, err error, code codes.Code, msg string) {
				t.Helper()
				if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
					t.Errorf("%s: %v, want %s (%q)", what, err, code, msg)
				}
			}
			wantHTTP := func(what string, code int, body []byte, wantCode int, msg string) {
				t.Helper()
				st := &spb.Status{}
				if err := proto.Unmarshal(body, st); err != nil && !strings.HasPrefix(string(body), "{") {
					t.Errorf("%s: body %q is not a google.rpc.Status: %v", what, body, err)
				} else if err != nil {
					protojson.Unmarshal(body, st)
				}
				if code != wantCode || !strings.Contains(st.Message, msg) {
					t.Errorf("%s: %d %q, want %d (%q)", what, code, st.Message, wantCode, msg)
				}
			}

			if _, err := grpcRaw(good(1)); err != nil {
				t.Fatal(err)
			}
			_, err := grpcRaw(million)
			wantCode("grpc, a million points", err, codes.ResourceExhausted, "max_request_data_points")
			code, body := post(t, a, contentProtobuf, "", million)
			wantHTTP("http, a million points", code, body, 413, "max_request_data_points")
			_, err = grpcRaw(broken)
			wantCode("grpc, broken", err, codes.InvalidArgument, "not an OTLP ExportMetricsServiceRequest")
			code, body = post(t, a, contentProtobuf, "", broken)
			wantHTTP("http, broken", code, body, 400, "not an OTLP ExportMetricsServiceRequest")
			code, body = post(t, a, contentJSON, "", []byte(`{"resourceMetrics": [{`))
			wantHTTP("http, broken json", code, body, 400, "JSON")
			code, body = post(t, a, contentProtobuf, "gzip", good(1))
			wantHTTP("http, not gzip", code, body, 400, "gzip")
			code, body = post(t, a, "text/plain", "", good(1))
			wantHTTP("http, text", code, body, 415, "Content-Type")
			code, body = post(t, a, contentProtobuf, "", huge)
			wantHTTP("http, too large", code, body, 413, "max_request_bytes")
			code, body = postChunked(t, a, huge)
			wantHTTP("http, too large, chunked", code, body, 413, "max_request_bytes")
			code, body = post(t, a, contentProtobuf, "gzip", bomb)
			wantHTTP("http, too large once decompressed", code, body, 413, "decompressed")
			_, err = grpcRaw(huge)
			wantCode("grpc, too large", err, codes.ResourceExhausted, "larger than max")
			resp, err := grpcRaw(partial)
			if err != nil || resp.GetPartialSuccess().GetRejectedDataPoints() != 1 || !strings.Contains(resp.GetPartialSuccess().GetErrorMessage(), ReasonInvalidValue) {
				t.Errorf("partial success: %v, %v", resp, err)
			}
			if _, err := grpcRaw(good(2)); err != nil {
				t.Fatal(err)
			}
			if code, body := post(t, a, contentProtobuf, "", good(4)); code != 200 {
				t.Fatalf("good: %d %q", code, body)
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return len(got.Errors()) >= 12 && len(got.Metrics()) >= 4
		},
	})
	var total float64
	for _, m := range got.Metrics() {
		if m.Name == "good" {
			total += m.Value
		}
	}
	if total != 7 {
		t.Errorf("good counters add up to %g, want 7: %s", total, got)
	}
	reasons := map[string]int{}
	for _, e := range got.Errors() {
		if e.PacketType != PacketType {
			t.Errorf("error %v", e)
		}
		reasons[e.Reason]++
	}
	if !maps.Equal(reasons, wantReasons) {
		t.Errorf("errors %v, want %v", reasons, wantReasons)
	}
}

// TestConnectionLimit: past max_connections a connection is closed at once
// and counted; once one closes, the next is served.
func TestConnectionLimit(t *testing.T) {
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_connections": 1},
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			first := sdktest.Dial(t, addrs[0]) // holds the one slot while it says nothing
			second := sdktest.Dial(t, addrs[0])
			second.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := second.Read(make([]byte, 1)); err == nil {
				t.Fatalf("the connection past the limit was not closed (read %d bytes)", n)
			}
			first.Close()
			// The slot is freed once the source sees the close.
			if !daemontest.Until(5*time.Second, func() bool {
				code, _ := postMaybe(addrs[0], mustMarshal(t, request(nil, gauge("after", integer(1, 0, 1)))))
				return code == 200
			}) {
				t.Fatal("no request was served after the first connection closed")
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool { return len(got.Metrics()) >= 1 },
	})
	if errs := got.Errors(); len(errs) == 0 || errs[0] != (sdktest.Error{PacketType: "connection", Reason: ReasonConnections}) {
		t.Errorf("errors %v", errs)
	}
}

// postMaybe posts a protobuf body, returning 0 if the request failed.
func postMaybe(addr string, body []byte) (int, error) {
	a, err := sdk.ParseAddress(addr)
	if err != nil {
		return 0, err
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post("http://"+a.Addr()+MetricsPath, contentProtobuf, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestStreamExpiryAndHTTPErrors: a stream not seen for stream_expiry is
// forgotten and counted; other paths and methods are answered as HTTP
// says.
func TestStreamExpiryAndHTTPErrors(t *testing.T) {
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"stream_expiry": "200ms"},
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			a := hostPort(t, addrs[0])
			if code, body := post(t, addrs[0], contentProtobuf, "", mustMarshal(t, request(nil, sum("c", cumulT, true, integer(5, 1, 1))))); code != 200 {
				t.Fatalf("%d %q", code, body)
			}
			resp, err := http.Get("http://" + a + MetricsPath)
			if err != nil || resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
				t.Errorf("GET: %v %v", resp, err)
			}
			resp.Body.Close()
			resp, err = http.Post("http://"+a+"/v1/traces", contentProtobuf, nil)
			if err != nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("POST /v1/traces: %v %v", resp, err)
			}
			resp.Body.Close()
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return slices.ContainsFunc(got.Metrics(), func(m sdktest.Metric) bool { return m.Name == StreamsExpired })
		},
	})
	for _, m := range got.Metrics() {
		if m.Name == StreamsExpired && (m.Value != 1 || m.Type != sdk.Counter || m.Scope != sdk.ScopeLocal || m.Tags != "veneurd:self") {
			t.Errorf("%v", m)
		}
	}
}
