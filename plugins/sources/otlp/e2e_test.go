package otlp

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/proc"
	"github.com/veneurd/veneurd/internal/testpki"
)

// exporter is what otlpmetricgrpc and otlpmetrichttp both are.
type exporter interface {
	Export(context.Context, *metricdata.ResourceMetrics) error
	Shutdown(context.Context) error
}

// client is an OpenTelemetry SDK meter provider whose ManualReader is
// collected and exported on demand by a real OTLP exporter: each export
// is one request, sent when the test says.
type client struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	exp    exporter
	sent   []*metricdata.ResourceMetrics
}

func newClient(t *testing.T, exp exporter, temporality metricdata.Temporality) *client {
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality {
		return temporality
	}))
	res := resource.NewSchemaless(attribute.String("service.name", "e2e"), attribute.String("service.instance.id", "i-1"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "*.exp"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	t.Cleanup(func() { exp.Shutdown(context.Background()) })
	return &client{t: t, reader: reader, mp: mp, exp: exp}
}

// export collects and sends one request.
func (c *client) export() {
	c.t.Helper()
	rm := &metricdata.ResourceMetrics{}
	if err := c.reader.Collect(context.Background(), rm); err != nil {
		c.t.Fatal(err)
	}
	if err := c.exp.Export(context.Background(), rm); err != nil {
		c.t.Fatalf("export: %v", err)
	}
	c.sent = append(c.sent, rm)
}

// expScale is the scale of the exponential histogram named name in the
// first export that has it.
func (c *client) expScale(name string) int32 {
	for _, rm := range c.sent {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if h, ok := m.Data.(metricdata.ExponentialHistogram[float64]); ok && m.Name == name && len(h.DataPoints) > 0 {
					return h.DataPoints[0].Scale
				}
			}
		}
	}
	c.t.Fatalf("no exponential histogram %s was exported", name)
	return 0
}

// TestSDKExporters runs veneurd with the otlp source and a localfile sink,
// and the OpenTelemetry Go SDK's own exporters as clients, both on the
// same port: otlpmetricgrpc with cumulative temporality (the SDK's
// default) and otlpmetrichttp (gzip) with delta temporality. Counters must
// add up exactly, gauges be exact, histograms' count, min, max and sum
// exact and their percentiles within the bound of TestPercentileError.
func TestSDKExporters(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	addr := daemontest.FreePort(t, "tcp")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname     = "e2e"
  interval     = "1s"
  http_address = %q
}
aggregation {
  percentiles = [0.5, 0.9, 0.99]
  aggregates  = ["min", "max", "count", "sum"]
}
source "otlp" "in" {
  listen                      = ["tcp://%s"]
  include_resource_attributes = ["service.name"]
}
sink "localfile" "out" {
  path = %q
}
`, daemontest.FreePort(t, "tcp"), addr, out))

	ctx := context.Background()
	ge, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithEndpoint(addr))
	if err != nil {
		t.Fatal(err)
	}
	he, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithInsecure(), otlpmetrichttp.WithEndpoint(addr),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client{
		"grpc": newClient(t, ge, metricdata.CumulativeTemporality),
		"http": newClient(t, he, metricdata.DeltaTemporality),
	}

	r := rand.New(rand.NewPCG(3, 4))
	samples := make([]float64, 2000)
	for i := range samples {
		samples[i] = math.Exp(4 + r.NormFloat64()) // lognormal, median 55
	}
	sorted := slices.Sorted(slices.Values(samples))
	var sampleSum float64
	for _, v := range samples {
		sampleSum += v
	}

	a := otelmetric.WithAttributes(attribute.String("route", "/a"))
	b := otelmetric.WithAttributes(attribute.String("route", "/b"))
	for p, c := range clients {
		m := c.mp.Meter("e2e")
		counter, _ := m.Int64Counter(p + ".requests")
		updown, _ := m.Int64UpDownCounter(p + ".inflight")
		gauge, _ := m.Float64Gauge(p + ".temperature")
		hist, _ := m.Float64Histogram(p+".latency", otelmetric.WithExplicitBucketBoundaries(sdkBounds...))
		exph, _ := m.Float64Histogram(p + ".latency.exp")

		counter.Add(ctx, 5, a)
		counter.Add(ctx, 2, b)
		updown.Add(ctx, 10)
		updown.Add(ctx, -3)
		gauge.Record(ctx, 2.5)
		for _, v := range samples {
			hist.Record(ctx, v)
			exph.Record(ctx, v)
		}
		c.export()
		counter.Add(ctx, 7, a)
		updown.Add(ctx, 1)
		gauge.Record(ctx, -4)
		c.export()
		c.export() // nothing new: a cumulative export repeats itself, a delta one has nothing
	}

	tags := func(extra ...string) []string { return append(extra, "service.name:e2e") }
	want := map[string]float64{}
	for p := range clients {
		want[p+".requests|"+strings.Join(tags("route:/a"), ",")] = 12
		want[p+".requests|"+strings.Join(tags("route:/b"), ",")] = 2
		want[p+".latency.count|"+strings.Join(tags(), ",")] = float64(len(samples))
		want[p+".latency.exp.count|"+strings.Join(tags(), ",")] = float64(len(samples))
	}
	sums := func(lines []daemontest.Line) map[string]float64 {
		got := map[string]float64{}
		for _, l := range lines {
			if l.Type == "counter" && !strings.HasPrefix(l.Name, "veneur.") {
				got[l.Name+"|"+strings.Join(l.Tags, ",")] += l.Value
			}
		}
		return got
	}
	d.WaitLines(out, 20*time.Second, func(lines []daemontest.Line) bool {
		got := sums(lines)
		for k, v := range want {
			if got[k] < v {
				return false
			}
		}
		return true
	})
	// Two more flushes: nothing more may arrive.
	lines := d.WaitFlushed(out, 2, 20*time.Second)
	got := sums(lines)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s adds up to %g, want %g", k, got[k], v)
		}
	}

	last := func(name string) (float64, bool) {
		v, ok := 0.0, false
		for _, l := range lines {
			if l.Name == name && slices.Equal(l.Tags, tags()) {
				v, ok = l.Value, true
			}
		}
		return v, ok
	}
	for p, c := range clients {
		// An up-down counter is a gauge of its value; a gauge its last.
		if v, ok := last(p + ".inflight"); !ok || v != 8 {
			t.Errorf("%s.inflight: %g (%v), want 8", p, v, ok)
		}
		if v, ok := last(p + ".temperature"); !ok || v != -4 {
			t.Errorf("%s.temperature: %g (%v), want -4", p, v, ok)
		}
		for _, name := range []string{p + ".latency", p + ".latency.exp"} {
			if v, _ := last(name + ".min"); v != sorted[0] {
				t.Errorf("%s.min: %g, want %g", name, v, sorted[0])
			}
			if v, _ := last(name + ".max"); v != sorted[len(sorted)-1] {
				t.Errorf("%s.max: %g, want %g", name, v, sorted[len(sorted)-1])
			}
			if v, _ := last(name + ".sum"); math.Abs(v-sampleSum) > 1e-9*sampleSum {
				t.Errorf("%s.sum: %g, want %g", name, v, sampleSum)
			}
			index, lower := explicitIndex(sdkBounds), explicitLower(sdkBounds)
			if strings.HasSuffix(name, ".exp") {
				scale := c.expScale(name)
				index = func(v float64) int64 { return expIndex(v, scale) }
				lower = func(i int64) float64 { return expLower(i, scale) }
			}
			for _, q := range []float64{0.5, 0.9, 0.99} {
				pname := fmt.Sprintf("%s.%gpercentile", name, q*100)
				est, ok := last(pname)
				exact := exactQuantile(sorted, q)
				lo, hi := bucketBound(sorted, exact, index, lower)
				if !ok || est < lo || est > hi {
					t.Errorf("%s: %g (%v), exact %g: outside [%g, %g]", pname, est, ok, exact, lo, hi)
				}
				t.Logf("%s: %g, exact %g (%+.1f%%)", pname, est, exact, 100*(est-exact)/exact)
			}
		}
	}
}

// TestBadInputThroughVeneurd sends veneurd a request of 1,000,000 data
// points, a broken protobuf and a 17 MB body between good requests: each
// refusal is counted under its reason, the daemon and the source go on,
// and the good requests' counters add up exactly.
func TestBadInputThroughVeneurd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	addr := daemontest.FreePort(t, "tcp")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "otlp" "in" {
  listen = ["tcp://%s"]
}
sink "localfile" "out" {
  path = %q
}
`, daemontest.FreePort(t, "tcp"), addr, out))
	good := func(v int64) []byte {
		return mustMarshal(t, request(nil, sum("good", deltaT, true, integer(v, 0, 1))))
	}
	broken := good(1)
	broken = broken[:len(broken)-3]
	tcp := "tcp://" + addr
	send := func(body []byte, want int) {
		t.Helper()
		if code, resp := post(t, tcp, contentProtobuf, "", body); code != want {
			t.Fatalf("status %d, want %d: %q", code, want, resp)
		}
	}
	send(good(1), 200)
	send(manyPoints(1_000_000), 413)
	send(broken, 400)
	send(make([]byte, 17<<20), 413)
	conn := grpcConn(t, tcp)
	err := conn.Invoke(context.Background(), "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
		rawRequest(manyPoints(1_000_000)), &colmetricspb.ExportMetricsServiceResponse{}, grpc.ForceCodecV2(rawClientCodec{}))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC, a million points: %v", err)
	}
	send(good(2), 200)
	if _, err := grpcClient(t, tcp).Export(context.Background(), request(nil, sum("good", deltaT, true, integer(4, 0, 1)))); err != nil {
		t.Fatal(err)
	}

	for reason, n := range map[string]float64{ReasonTooManyPoints: 2, ReasonBadProtobuf: 1, ReasonTooLarge: 1} {
		d.WaitMetric(fmt.Sprintf(`veneur_packet_error_total{packet_type="otlp",reason=%q}`, reason), 10*time.Second,
			func(v float64) bool { return v == n })
	}
	d.WaitLines(out, 10*time.Second, func(lines []daemontest.Line) bool { return daemontest.Sum(lines, "good") >= 7 })
	lines := d.WaitFlushed(out, 2, 10*time.Second)
	if got := daemontest.Sum(lines, "good"); got != 7 {
		t.Errorf("good adds up to %g, want 7", got)
	}
	// The source's process did not hold the million points: it holds
	// bodies of up to 16 MiB and at most max_request_data_points of them
	// decoded.
	for _, c := range daemontest.Children(d.Cmd.Process.Pid) {
		if slices.Contains(c.Cmdline, "otlp") {
			rss, err := proc.RSS(c.Pid)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("the otlp source's RSS: %d MB", rss>>20)
			if rss > 200<<20 {
				t.Errorf("the otlp source's RSS is %d MB", rss>>20)
			}
		}
	}
}

// TestSDKExportersOverTLS serves OTLP/gRPC and OTLP/HTTP over mutual TLS on
// one port: the OpenTelemetry SDK's exporters, each with a client
// certificate of the CA, deliver exact counts; a TLS client without a
// certificate and a cleartext one are refused at the handshake, and
// counted.
func TestSDKExportersOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ca := testpki.NewCA(t, "otlp test")
	dir := t.TempDir()
	certFile, keyFile := testpki.WriteCert(t, dir, "server", ca.Issue(t, "127.0.0.1"))
	addr := daemontest.FreePort(t, "tcp")
	out := filepath.Join(dir, "out.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "otlp" "in" {
  listen = ["tcp://%s"]
  tls {
    cert_file      = %q
    key_file       = %q
    client_ca_file = %q
  }
}
sink "localfile" "out" {
  path = %q
}
`, daemontest.FreePort(t, "tcp"), addr, certFile, keyFile, ca.WriteCA(t, dir), out))

	ctx := context.Background()
	clientTLS := &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Issue(t, "client")}}
	ge, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(addr),
		otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatal(err)
	}
	he, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(addr), otlpmetrichttp.WithTLSClientConfig(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	for p, exp := range map[string]exporter{"grpc": ge, "http": he} {
		c := newClient(t, exp, metricdata.DeltaTemporality)
		counter, _ := c.mp.Meter("e2e").Int64Counter(p + ".secure")
		counter.Add(ctx, 3)
		c.export()
		counter.Add(ctx, 4)
		c.export()
	}

	// Refused at the handshake: a client without a certificate (TLS 1.3
	// tells it at its first read), and one that speaks cleartext.
	noCert, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool})
	if err == nil {
		noCert.Write([]byte("POST /v1/metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, err = noCert.Read(make([]byte, 1))
		noCert.Close()
	}
	if err == nil {
		t.Error("a client without a certificate was served")
	}
	if resp, err := http.Post("http://"+addr+"/v1/metrics", contentProtobuf, strings.NewReader("")); err == nil {
		resp.Body.Close()
		t.Errorf("a cleartext request got %s", resp.Status)
	}
	d.WaitMetric(`veneur_packet_error_total{packet_type="connection",reason="tls_handshake"}`, 10*time.Second,
		func(v float64) bool { return v == 2 })

	want := map[string]float64{"grpc.secure": 7, "http.secure": 7}
	d.WaitLines(out, 20*time.Second, func(lines []daemontest.Line) bool {
		for name, v := range want {
			if daemontest.Sum(lines, name, "service.name:e2e") < v {
				return false
			}
		}
		return true
	})
	lines := d.WaitFlushed(out, 2, 20*time.Second)
	for name, v := range want {
		if got := daemontest.Sum(lines, name, "service.name:e2e"); got != v {
			t.Errorf("%s adds up to %g, want %g", name, got, v)
		}
	}
}
