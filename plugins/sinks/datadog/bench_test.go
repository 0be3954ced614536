package datadog

import (
	"fmt"
	"testing"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// realistic returns n points as a flush holds them: names of about 30
// bytes, 4 to 6 sorted tags, one point in ten with a host: tag and one in
// ten with a device: tag; counters, gauges and, when status, status points.
func realistic(n int, status bool) []sdk.Point {
	ps := make([]sdk.Point, n)
	for i := range ps {
		tags := []string{"env:production", "region:us-east-1", fmt.Sprintf("service:checkout-%d", i%7), "version:2.14.1"}
		if i%2 == 0 {
			tags = append(tags, fmt.Sprintf("endpoint:/api/v1/orders/%d", i%13))
		}
		switch {
		case i%10 == 3:
			tags = append(tags, "host:db-primary-01.internal")
		case i%10 == 7:
			tags = append([]string{"device:nvme0n1"}, tags...)
		}
		typ, v := sdk.PointGauge, float64(i)*1.25
		switch {
		case status:
			typ, v = sdk.PointStatus, float64(i%4)
		case i%2 == 1:
			typ, v = sdk.PointCounter, float64(i*3)
		}
		ps[i] = sdk.Point{Name: fmt.Sprintf("checkout.http.request.latency_%02d", i%50), Tags: tags, Type: typ, Value: v,
			Timestamp: 1700000000, Hostname: "ip-10-0-12-34.ec2.internal", Message: "connection refused"[:i%4*5]}
	}
	return ps
}

func realisticEvents(n int) []sdk.Event {
	es := make([]sdk.Event, n)
	for i := range es {
		es[i] = sdk.Event{Title: fmt.Sprintf("Deployed checkout %d", i), Text: "Rolled out v2.14.1 to 48 hosts in us-east-1\nno errors",
			Hostname: "ip-10-0-12-34.ec2.internal", AggregationKey: "deploy-checkout", Priority: "normal", SourceType: "jenkins",
			AlertType: "info", Tags: []string{"env:production", "service:checkout", "team:payments", "version:2.14.1"}}
	}
	return es
}

// encoders are the point encoders, each with a flush's points.
func encoders() map[string]struct {
	enc    encoder
	points []sdk.Point
} {
	return map[string]struct {
		enc    encoder
		points []sdk.Point
	}{
		"SeriesV1":  {&SeriesV1{Interval: 10 * time.Second}, realistic(1000, false)},
		"SeriesV2":  {&SeriesV2{Interval: 10 * time.Second}, realistic(1000, false)},
		"CheckRuns": {&CheckRuns{}, realistic(1000, true)},
	}
}

func encodeAll(enc encoder, points []sdk.Point) int {
	enc.Reset()
	for i := range points {
		enc.Point(&points[i])
	}
	return len(enc.Body())
}

// TestNoAllocs checks that a warm encoder allocates nothing.
func TestNoAllocs(t *testing.T) {
	for name, e := range encoders() {
		if n := encodeAll(e.enc, e.points); e.enc.Len() != len(e.points) || n == 0 {
			t.Fatalf("%s: encoded %d of %d points", name, e.enc.Len(), len(e.points))
		}
		if a := testing.AllocsPerRun(20, func() { encodeAll(e.enc, e.points) }); a != 0 {
			t.Errorf("%s: %v allocations per %d points", name, a, len(e.points))
		}
	}
	events := realisticEvents(100)
	var enc Events
	for i := range events {
		enc.Event(&events[i], 1700000000)
	}
	if a := testing.AllocsPerRun(20, func() {
		for i := range events {
			enc.Event(&events[i], 1700000000)
		}
	}); a != 0 {
		t.Errorf("Events: %v allocations per %d events", a, len(events))
	}
}

func benchmarkEncode(b *testing.B, name string) {
	e := encoders()[name]
	size := encodeAll(e.enc, e.points)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		encodeAll(e.enc, e.points)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(e.points)), "ns/point")
	b.ReportMetric(float64(size)/float64(len(e.points)), "bytes/point")
}

func BenchmarkEncodeSeriesV1(b *testing.B)  { benchmarkEncode(b, "SeriesV1") }
func BenchmarkEncodeSeriesV2(b *testing.B)  { benchmarkEncode(b, "SeriesV2") }
func BenchmarkEncodeCheckRuns(b *testing.B) { benchmarkEncode(b, "CheckRuns") }

func BenchmarkEncodeEvents(b *testing.B) {
	events := realisticEvents(1000)
	var enc Events
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			enc.Event(&events[i], 1700000000)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}
