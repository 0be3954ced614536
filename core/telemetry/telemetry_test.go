package telemetry

import (
	"strings"
	"testing"
)

func TestPointsAreDeltas(t *testing.T) {
	r := New()
	c := r.Counter(PacketErrors, "reason:bad_value", "packet_type:metric")
	c.Add(3)
	r.Gauge(HeapAllocBytes).Set(1024)
	ps := r.Points(10, "h")
	if len(ps) != 2 {
		t.Fatalf("points %+v", ps)
	}
	if p := ps[1]; p.Name != PacketErrors || p.Value != 3 || strings.Join(p.Tags, ",") != "packet_type:metric,reason:bad_value,veneurd:self" {
		t.Errorf("counter point %+v", p)
	}
	c.Add(2)
	ps = r.Points(11, "h")
	if len(ps) != 2 || ps[1].Value != 2 {
		t.Errorf("second flush %+v", ps)
	}
	if ps = r.Points(12, "h"); len(ps) != 1 || ps[0].Name != HeapAllocBytes {
		t.Errorf("a counter that counted nothing was flushed: %+v", ps)
	}
}

func TestPrometheus(t *testing.T) {
	r := New()
	r.Counter(PacketErrors, "packet_type:metric", "reason:bad_value").Add(7)
	r.Counter(PacketErrors, "packet_type:event", "reason:no_title").Inc()
	r.GaugeFunc(GCNumber, func() float64 { return 4 })
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	want := `# TYPE veneur_gc_number gauge
veneur_gc_number 4
# TYPE veneur_packet_error_total counter
veneur_packet_error_total{packet_type="event",reason="no_title"} 1
veneur_packet_error_total{packet_type="metric",reason="bad_value"} 7
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCounterAddDoesNotAllocate(t *testing.T) {
	c := New().Counter(MetricsProcessed)
	if n := testing.AllocsPerRun(100, func() { c.Add(5) }); n != 0 {
		t.Fatalf("Add allocates %v times", n)
	}
}
