package otlp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	otelmetric "go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/proc"
	"github.com/veneurd/veneurd/internal/receivers"
)

// The load test measures how many data points per second one otlp source
// takes, and the CPU it uses, and compares it with VictoriaMetrics' OTLP
// ingestion on the same load. It runs only when asked for, as it loads the
// machine for about a minute:
//
//	VENEURD_OTLP_LOAD=1 go test -run TestLoad -v ./plugins/sources/otlp/
//
// VENEURD_OTLP_LOAD_SECONDS sets each run's length (default 10). The
// processes' CPU is measured with nothing to do first, as the fixed-rate
// runs include it.

// loadBodies are ten pre-encoded requests of 1,000 data points (delta sums
// with three attributes, a resource of six), 10,000 series in all.
func loadBodies(t *testing.T) [][]byte {
	var out [][]byte
	for i := range 10 {
		req := benchRequest("delta", 1)
		for _, sm := range req.ResourceMetrics[0].ScopeMetrics {
			for _, m := range sm.Metrics {
				m.Name = fmt.Sprintf("load%d.%s", i, m.Name)
			}
		}
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// cpu returns the CPU time used so far by pids and their children.
func cpu(t *testing.T, pids ...int) time.Duration {
	var total time.Duration
	seen := map[int]bool{}
	var add func(pid int)
	add = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		if p, err := proc.Stat(pid); err == nil {
			total += p.CPU
		}
		for _, c := range daemontest.Children(pid) {
			add(c.Pid)
		}
	}
	for _, pid := range pids {
		add(pid)
	}
	return total
}

// loadResult is one run.
type loadResult struct {
	points  int64
	elapsed time.Duration
	cpu     time.Duration
	errors  int64
}

func (r loadResult) String() string {
	pps := float64(r.points) / r.elapsed.Seconds()
	cores := r.cpu.Seconds() / r.elapsed.Seconds()
	return fmt.Sprintf("%9.0f points/s, %.2f cores, %.3f cores per 100k points/s, %d errors",
		pps, cores, cores/(pps/100_000), r.errors)
}

// run sends bodies with senders goroutines for d: as fast as it can when
// rate is 0, else at rate data points per second in all. send sends one
// body; pids are the processes whose CPU is measured.
func runLoad(t *testing.T, bodies [][]byte, senders int, rate float64, d time.Duration, send func(body []byte) error, pids ...int) loadResult {
	var points, errs atomic.Int64
	start := time.Now()
	cpu0 := cpu(t, pids...)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pace <-chan time.Time // one request a tick at a fixed rate; nil: as fast as it goes
			if rate > 0 {
				tick := time.NewTicker(time.Duration(float64(time.Second) * 1000 * float64(senders) / rate))
				defer tick.Stop()
				pace = tick.C
			}
			for i := s; time.Since(start) < d; i++ {
				if pace != nil {
					<-pace
				}
				if err := send(bodies[i%len(bodies)]); err != nil {
					errs.Add(1)
					continue
				}
				points.Add(1000)
			}
		}()
	}
	wg.Wait()
	return loadResult{points: points.Load(), elapsed: time.Since(start), cpu: cpu(t, pids...) - cpu0, errors: errs.Load()}
}

func TestLoad(t *testing.T) {
	if os.Getenv("VENEURD_OTLP_LOAD") == "" {
		t.Skip("load test: set VENEURD_OTLP_LOAD=1 to run it")
	}
	d := 10 * time.Second
	if s, err := strconv.Atoi(os.Getenv("VENEURD_OTLP_LOAD_SECONDS")); err == nil {
		d = time.Duration(s) * time.Second
	}
	bodies := loadBodies(t)
	addr := daemontest.FreePort(t, "tcp")
	daemon := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "10s"
  http_address = %q
}
source "otlp" "load" {
  listen = ["tcp://%s"]
}
sink "blackhole" "null" {}
`, daemontest.FreePort(t, "tcp"), addr))
	pid := daemon.Cmd.Process.Pid

	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	viaGRPC := func(body []byte) error {
		return cc.Invoke(ctx, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
			rawRequest(body), &colmetricspb.ExportMetricsServiceResponse{}, grpc.ForceCodecV2(rawClientCodec{}))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	post := func(url string) func([]byte) error {
		return func(body []byte) error {
			resp, err := client.Post(url, contentProtobuf, bytes.NewReader(body))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		}
	}
	viaHTTP := post("http://" + addr + MetricsPath)

	vm := receivers.VictoriaMetrics(t)
	vmPid := findPid(t, vm.Dir)
	toVM := post(vm.HTTP + "/opentelemetry/v1/metrics")

	var report strings.Builder
	// What each uses with nothing to do, which the fixed-rate runs include.
	for _, r := range []struct {
		name string
		pid  int
	}{{"veneurd otlp, idle", pid}, {"VictoriaMetrics, idle", vmPid}} {
		c0, t0 := cpu(t, r.pid), time.Now()
		<-time.After(d) // the span measured, not a wait for something
		fmt.Fprintf(&report, "\n%-45s %.3f cores", r.name, (cpu(t, r.pid)-c0).Seconds()/time.Since(t0).Seconds())
	}
	for _, r := range []struct {
		name    string
		send    func([]byte) error
		pid     int
		senders int
		rate    float64
	}{
		{"veneurd otlp, gRPC, as fast as possible", viaGRPC, pid, 4, 0},
		{"veneurd otlp, HTTP, as fast as possible", viaHTTP, pid, 4, 0},
		{"VictoriaMetrics, HTTP, as fast as possible", toVM, vmPid, 4, 0},
		{"veneurd otlp, gRPC, 100k points/s", viaGRPC, pid, 2, 100_000},
		{"veneurd otlp, HTTP, 100k points/s", viaHTTP, pid, 2, 100_000},
		{"VictoriaMetrics, HTTP, 100k points/s", toVM, vmPid, 2, 100_000},
	} {
		runLoad(t, bodies, r.senders, r.rate, time.Second, r.send) // warm up: series created, connections open
		res := runLoad(t, bodies, r.senders, r.rate, d, r.send, r.pid)
		fmt.Fprintf(&report, "\n%-45s %s", r.name, res)
	}
	// The OpenTelemetry Go SDK as the client: each sender a meter provider
	// of 1,000 series, collected and exported by otlpmetricgrpc as fast as
	// it goes. The client's own work (recording, collecting, encoding)
	// bounds the rate here.
	res := runSDK(t, addr, 2, d, pid)
	fmt.Fprintf(&report, "\n%-45s %s", "veneurd otlp, gRPC, SDK otlpmetricgrpc", res)
	t.Logf("1,000 points per request, 10,000 series, %s per run:%s", d, report.String())
}

// runSDK sends with senders OpenTelemetry SDK clients for d.
func runSDK(t *testing.T, addr string, senders int, d time.Duration, pids ...int) loadResult {
	ctx := context.Background()
	type sender struct {
		c       *client
		counter otelmetric.Int64Counter
		attrs   []otelmetric.AddOption
	}
	var ss []sender
	for s := range senders {
		exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithEndpoint(addr))
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, exp, metricdata.DeltaTemporality)
		counter, _ := c.mp.Meter("load").Int64Counter(fmt.Sprintf("sdk.load%d", s))
		var attrs []otelmetric.AddOption
		for i := range 1000 {
			attrs = append(attrs, otelmetric.WithAttributes(attribute.Int("series", i),
				attribute.String("method", "GET"), attribute.String("status", "200")))
		}
		ss = append(ss, sender{c, counter, attrs})
	}
	var points, errs atomic.Int64
	start := time.Now()
	cpu0 := cpu(t, pids...)
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rm := &metricdata.ResourceMetrics{}
			for time.Since(start) < d {
				for _, a := range s.attrs {
					s.counter.Add(ctx, 1, a)
				}
				if err := s.c.reader.Collect(ctx, rm); err != nil {
					errs.Add(1)
					continue
				}
				if err := s.c.exp.Export(ctx, rm); err != nil {
					errs.Add(1)
					continue
				}
				points.Add(int64(len(s.attrs)))
			}
		}()
	}
	wg.Wait()
	return loadResult{points: points.Load(), elapsed: time.Since(start), cpu: cpu(t, pids...) - cpu0, errors: errs.Load()}
}

// findPid finds the VictoriaMetrics whose storage is dir.
func findPid(t *testing.T, dir string) int {
	procs, err := proc.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		cmd, _ := proc.Cmdline(p.Pid)
		if len(cmd) > 0 && filepath.Base(cmd[0]) == "victoria-metrics" && slices.Contains(cmd, "-storageDataPath="+dir) {
			return p.Pid
		}
	}
	t.Fatalf("no victoria-metrics process with -storageDataPath=%s", dir)
	return 0
}
