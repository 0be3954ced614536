package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestMain lets TestHandshake run this test binary as the plugin: launched
// with veneurd's handshake cookie, it serves the plugin instead of testing.
func TestMain(m *testing.M) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		main()
		return
	}
	os.Exit(m.Run())
}

// backend is the endpoint in tests: it records every request, its body
// gunzipped, and answers the first ones as told, the rest 200 OK.
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	answers  []answer
	requests []request
}

// answer is a status and a body, or: hang until the client gives up, or
// drop the connection.
type answer struct {
	status     int
	body       string
	hang, drop bool
}

type request struct {
	header http.Header
	lines  []string // one point each
}

func newBackend(t *testing.T, answers ...answer) *backend {
	b := &backend{answers: answers}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("the body is not gzipped: %v", err)
			return
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Errorf("the body does not gunzip: %v", err)
			return
		}
		b.mu.Lock()
		b.requests = append(b.requests, request{r.Header.Clone(), strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")})
		a := answer{status: http.StatusOK}
		if len(b.answers) > 0 {
			a, b.answers = b.answers[0], b.answers[1:]
		}
		b.mu.Unlock()
		switch {
		case a.hang:
			<-r.Context().Done()
		case a.drop:
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			w.WriteHeader(a.status)
			io.WriteString(w, a.body)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// got returns the requests received so far.
func (b *backend) got() []request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]request(nil), b.requests...)
}

// start configures a sink posting to url, edited by edit, and starts it; it
// logs into the buffer returned.
func start(t *testing.T, url string, edit func(c *Config)) (*Sink, *bytes.Buffer) {
	t.Helper()
	s := New()
	c := s.Config().(*Config)
	c.URL = url
	if edit != nil {
		edit(c)
	}
	var logs bytes.Buffer
	env := sdk.Env{Address: "sink.example.test", Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, DisableTime: true})}
	if err := s.Configure(context.Background(), env, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s, &logs
}

const ts = 1795300000

// TestSend pins down what a request holds: the points as JSON lines,
// gzipped, at most batch_size of them, with the token as a bearer token.
// Each Flush call, one part of an interval, is sent before it returns.
func TestSend(t *testing.T) {
	b := newBackend(t)
	s, logs := start(t, b.URL, func(c *Config) { c.Token, c.BatchSize = "s3cret", 2 })
	parts := []sdk.Flush{{Timestamp: ts, Points: []sdk.Point{
		{Name: "x.count", Tags: []string{"a:b", "env:dev"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "h1"},
		{Name: "x.max", Type: sdk.PointGauge, Value: -2.5, Timestamp: ts, Hostname: "h1"},
		{Name: "x.ratio", Type: sdk.PointGauge, Value: math.NaN(), Timestamp: ts, Hostname: "h1"},
		{Name: "db.up", Tags: []string{"env:dev"}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "h1", Message: "connection refused"},
		{Name: "x.min", Type: sdk.PointGauge, Value: 1e-7, Timestamp: ts},
		{Name: "x.p99", Type: sdk.PointGauge, Value: 12, Timestamp: ts},
	}}, {Timestamp: ts, Points: []sdk.Point{
		{Name: "y.count", Type: sdk.PointCounter, Value: 1e21, Timestamp: ts, Hostname: "h2"},
	}}}
	for i := range parts {
		if err := s.Flush(context.Background(), &parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := [][]string{
		{`{"metric":"x.count","type":"counter","value":3,"time":1795300000,"host":"h1","tags":["a:b","env:dev"]}`,
			`{"metric":"x.max","type":"gauge","value":-2.5,"time":1795300000,"host":"h1"}`},
		{`{"metric":"db.up","type":"status","value":2,"time":1795300000,"host":"h1","tags":["env:dev"],"message":"connection refused"}`,
			`{"metric":"x.min","type":"gauge","value":1e-7,"time":1795300000}`},
		{`{"metric":"x.p99","type":"gauge","value":12,"time":1795300000}`},
		{`{"metric":"y.count","type":"counter","value":1e+21,"time":1795300000,"host":"h2"}`},
	}
	got := b.got()
	var lines [][]string
	for _, r := range got {
		lines = append(lines, r.lines)
		for k, v := range map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson",
			"Authorization": "Bearer s3cret", "User-Agent": "veneurd-sink-example/0.2.0"} {
			if r.header.Get(k) != v {
				t.Errorf("header %s: %q, want %q", k, r.header.Get(k), v)
			}
		}
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("requests:\n%q\nwant\n%q", lines, want)
	}
	const warn = "[WARN]  skipped points whose value is NaN or infinite, which JSON cannot hold: points=1\n"
	if !strings.HasSuffix(logs.String(), warn) || strings.Contains(logs.String(), "s3cret") {
		t.Errorf("logged %q, want it to end with %q and not to hold the token", logs, warn)
	}
}

// TestRetry retries a batch after a dropped connection, 503 and 429, and
// delivers it, without logging the token or the URL, which may hold a key.
func TestRetry(t *testing.T) {
	b := newBackend(t, answer{drop: true}, answer{status: 503, body: "busy"}, answer{status: 429})
	s, logs := start(t, b.URL+"/points?key=k3y", func(c *Config) { c.Token = "s3cret" })
	f := sdk.Flush{Timestamp: ts, Points: []sdk.Point{{Name: "x", Type: sdk.PointCounter, Value: 1, Timestamp: ts}}}
	if err := s.Flush(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	got := b.got()
	if len(got) != 4 {
		t.Fatalf("%d requests, want 4", len(got))
	}
	for _, r := range got {
		if want := []string{`{"metric":"x","type":"counter","value":1,"time":1795300000}`}; !reflect.DeepEqual(r.lines, want) {
			t.Errorf("request %q, want %q", r.lines, want)
		}
	}
	if n := strings.Count(logs.String(), "request failed; retrying"); n != 3 {
		t.Errorf("logged %d retries, want 3:\n%s", n, logs)
	}
	for _, want := range []string{"EOF", `answered 503 Service Unavailable: \"busy\"`, `answered 429 Too Many Requests: \"\"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "k3y") {
		t.Errorf("the token or the URL was logged:\n%s", logs)
	}
}

// TestRequestTimeout gives up on a request that takes longer than timeout
// and sends it again.
func TestRequestTimeout(t *testing.T) {
	b := newBackend(t, answer{hang: true})
	s, _ := start(t, b.URL, func(c *Config) { c.Timeout = "100ms" })
	f := sdk.Flush{Timestamp: ts, Points: []sdk.Point{{Name: "x", Type: sdk.PointGauge, Value: 2, Timestamp: ts}}}
	if err := s.Flush(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	if n := len(b.got()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestNoRetryOn4xx does not send again a batch the endpoint refused with a
// 4xx other than 429, sends the other batches, and says what was lost and
// why, without the token the endpoint echoed.
func TestNoRetryOn4xx(t *testing.T) {
	b := newBackend(t, answer{status: 200}, answer{status: 400, body: "bad metric name\nyour headers: Authorization: Bearer s3cret" + strings.Repeat(".", 1000)})
	s, logs := start(t, b.URL, func(c *Config) { c.Token, c.BatchSize = "s3cret", 1 })
	f := sdk.Flush{Timestamp: ts, Points: []sdk.Point{
		{Name: "a", Type: sdk.PointCounter, Value: 1, Timestamp: ts},
		{Name: "b", Type: sdk.PointCounter, Value: 2, Timestamp: ts},
		{Name: "c", Type: sdk.PointCounter, Value: 3, Timestamp: ts},
	}}
	err := s.Flush(context.Background(), &f)
	want := `1 of 3 points not sent: the endpoint answered 400 Bad Request: "bad metric name\nyour headers: Authorization: Bearer [token]` +
		strings.Repeat(".", 200-len("bad metric name\nyour headers: Authorization: Bearer [token]")) + `"`
	if err == nil || err.Error() != want {
		t.Fatalf("got error %v\nwant %s", err, want)
	}
	if n := len(b.got()); n != 3 {
		t.Fatalf("%d requests, want 3: one per batch, none again", n)
	}
	if logs.String() != "[INFO]  posting points: host="+strings.TrimPrefix(b.URL, "http://")+" batch_size=1\n" {
		t.Errorf("logged %q", logs)
	}
}

// TestRetryWithinContext stops retrying when the flush's context ends.
func TestRetryWithinContext(t *testing.T) {
	var answers []answer
	for range 100 {
		answers = append(answers, answer{status: 503})
	}
	b := newBackend(t, answers...)
	s, _ := start(t, b.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	f := sdk.Flush{Timestamp: ts, Points: []sdk.Point{{Name: "x", Type: sdk.PointCounter, Value: 1, Timestamp: ts}}}
	err := s.Flush(ctx, &f)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "1 of 1 points not sent: ") {
		t.Fatalf("got error %v, want 1 of 1 points not sent for the deadline", err)
	}
	if n := len(b.got()); n < 2 {
		t.Fatalf("%d requests, want several", n)
	}
}

// TestConformance runs the sink through the SDK's conformance kit, against
// an endpoint that accepts everything.
func TestConformance(t *testing.T) {
	b := newBackend(t)
	sdktest.Sink(t, func() sdk.Sink { return New() }, sdktest.SinkCase{
		Config: map[string]any{"url": b.URL, "token": "t0k3n", "batch_size": 7},
		AfterConfigure: func(t *testing.T) {
			if n := len(b.got()); n != 0 {
				t.Fatalf("Configure made %d requests: connections wait for Start and Flush", n)
			}
		},
		Observe: func(t *testing.T) []string {
			var lines []string
			for _, r := range b.got() {
				if len(r.lines) > 7 || r.header.Get("Authorization") != "Bearer t0k3n" {
					t.Errorf("a request of %d points with Authorization %q", len(r.lines), r.header.Get("Authorization"))
				}
				lines = append(lines, r.lines...)
			}
			return lines
		},
		Format: func(p sdk.Point) string {
			if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				return "" // skipped
			}
			line, err := json.Marshal(toPoint(&p))
			if err != nil {
				t.Fatal(err)
			}
			return string(line)
		},
	})
}

// TestRejectsConfig checks that bad values are reported on their attribute,
// which is how veneurd validate points at the line of the block.
func TestRejectsConfig(t *testing.T) {
	for _, c := range []struct {
		config map[string]any
		want   []string // attributes
	}{
		{map[string]any{"url": ""}, []string{"url"}},
		{map[string]any{"url": "ftp://example.com/points"}, []string{"url"}},
		{map[string]any{"url": "http://"}, []string{"url"}},
		{map[string]any{"url": "http://example.com", "token": "s3cret\n"}, []string{"token"}},
		{map[string]any{"url": "http://example.com", "batch_size": 0}, []string{"batch_size"}},
		{map[string]any{"url": "http://example.com", "timeout": "soon"}, []string{"timeout"}},
		{map[string]any{"url": "http://example.com", "timeout": "-1s"}, []string{"timeout"}},
		{map[string]any{"url": "example.com", "batch_size": -1, "timeout": "0s"}, []string{"url", "batch_size", "timeout"}},
	} {
		var got []string
		for _, d := range sdktest.Configure(t, New(), c.config) {
			got = append(got, d.Attribute)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: diagnostics on %q, want %q", c.config, got, c.want)
		}
	}
}

// TestHandshake launches the plugin as a process the way veneurd does, with
// its handshake and protocol version, and asks for its schema.
func TestHandshake(t *testing.T) {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.HostPlugins(),
		Cmd:              exec.Command(os.Args[0]),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.NewNullLogger(),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	if v := client.NegotiatedVersion(); v != sdk.ProtocolVersion {
		t.Fatalf("negotiated protocol version %d, want %d", v, sdk.ProtocolVersion)
	}
	raw, err := rpc.Dispense(sdk.KindSink)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pb.NewPluginClient(raw.(*grpc.ClientConn)).Schema(context.Background(), &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range resp.Attributes {
		got = append(got, a.Name)
		if a.Required != (a.Name == "url") || a.Sensitive != (a.Name == "token") {
			t.Errorf("attribute %s: required %t, sensitive %t", a.Name, a.Required, a.Sensitive)
		}
	}
	if want := []string{"url", "token", "batch_size", "timeout"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("schema attributes %q, want %q", got, want)
	}
}
