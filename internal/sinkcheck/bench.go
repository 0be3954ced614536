package sinkcheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/schema"
)

// BenchPoints returns n points of n series as a flush of a busy host has
// them: a 30-byte name, five tags, the host, counters and gauges.
func BenchPoints(n int, ts int64) []sdk.Point {
	points := make([]sdk.Point, n)
	for i := range points {
		typ := sdk.PointCounter
		if i%2 == 1 {
			typ = sdk.PointGauge
		}
		points[i] = sdk.Point{
			Name: fmt.Sprintf("bench.service.requests.m%06d", i/10),
			Tags: []string{"env:prod", "region:eu-west-1", fmt.Sprintf("route:/api/v%d", i%10), "service:checkout", "team:payments"},
			Type: typ, Value: float64(i%1000) + 0.5, Timestamp: ts, Hostname: "bench-host-01",
		}
	}
	return points
}

// chunkPoints is about as many points as veneurd sends a sink in one
// Flush call (a 2 MiB chunk).
const chunkPoints = 25_000

// Deliver runs the sink newSink returns, configured with config (attribute
// values as JSON), through one flush of points, as veneurd hands it over in
// chunks, and stops it, which waits for the receiver to take everything. It
// returns how long that took, from the first Flush call, and the sink's
// counts.
func Deliver(tb testing.TB, newSink func() sdk.Sink, config string, points []sdk.Point) (time.Duration, *sdk.Stats) {
	tb.Helper()
	s := newSink()
	cfg := s.Config()
	if err := schema.UnmarshalValues([]byte(config), cfg); err != nil {
		tb.Fatal(err)
	}
	stats := sdk.NewStats()
	env := sdk.Env{Address: "sink.bench.deliver", Hostname: "bench-host-01", Stats: stats,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: logWriter{tb}})}
	ctx := context.Background()
	if err := s.Configure(ctx, env, cfg); err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < len(points); i += chunkPoints {
		f := &sdk.Flush{Timestamp: points[0].Timestamp, Interval: 10 * time.Second, Points: points[i:min(i+chunkPoints, len(points))]}
		if err := s.Flush(ctx, f); err != nil {
			tb.Fatal(err)
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		tb.Fatal(err)
	}
	took := time.Since(start)
	for _, c := range stats.Take() {
		if c.Value > 0 && strings.Contains(c.Name, "dropped") {
			tb.Fatalf("%s%v = %d: the benchmark's points are not all delivered", c.Name, c.Tags, c.Value)
		}
	}
	return took, stats
}

type logWriter struct{ tb testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// BenchDeliver times flushes of 1,000,000 points through a sink (see
// Deliver), configured by config for a receiver at base URL: to a local
// VictoriaMetrics, and to a server that discards what it is sent, which
// shows the sink's own share. The first flush, untimed, creates the
// series, which a receiver does once; each timed one is the next interval
// of the same series, as a daemon's flushes are. It reports seconds per
// flush, and checks that VictoriaMetrics took in every point.
func BenchDeliver(b *testing.B, newSink func() sdk.Sink, config func(base string) string) {
	b.Run("receiver=discard", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		}))
		defer srv.Close()
		benchDeliver(b, newSink, config(srv.URL))
	})
	b.Run("receiver=victoriametrics", func(b *testing.B) {
		vm := receivers.VictoriaMetrics(b)
		flushes := benchDeliver(b, newSink, config(vm.HTTP))
		if got := vm.RowsInserted(b); got != flushes*benchPoints {
			b.Fatalf("VictoriaMetrics took in %d samples, want %d", got, flushes*benchPoints)
		}
	})
}

const benchPoints = 1_000_000

// benchDeliver times flushes to one receiver and returns how many it made.
func benchDeliver(b *testing.B, newSink func() sdk.Sink, config string) int {
	ts := time.Now().Unix() - 3600
	points := BenchPoints(benchPoints, ts)
	Deliver(b, newSink, config, points)
	flushes := 1
	var total time.Duration
	for b.Loop() {
		ts += 10
		for j := range points {
			points[j].Timestamp = ts
		}
		took, _ := Deliver(b, newSink, config, points)
		b.Logf("flush %d: %d points delivered in %s", flushes, benchPoints, took)
		total += took
		flushes++
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/flush")
	return flushes
}
