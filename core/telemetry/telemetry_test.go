package telemetry

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// TestPrometheusLabelValuesRoundTrip writes label values holding what the
// text format must escape or cannot carry, and reads the output back with
// expfmt's own parser. Label values come from plugins (a source names its
// protocols and error reasons), so they may hold anything.
func TestPrometheusLabelValuesRoundTrip(t *testing.T) {
	r := New()
	odd := "tab\there \"quoted\" back\\slash new\nline bad\xffutf8 ünïcode } {"
	r.Counter(PacketErrors, "packet_type:metric", "reason:"+odd).Add(3)
	r.Counter(ReceivedPerProtocol, "protocol:"+odd).Add(1234567)
	r.Gauge(ConfigLoadTime).Set(1700000000.5)
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("expfmt cannot parse the output: %v\n%s", err, b.String())
	}
	// Invalid UTF-8 cannot be written: it comes back as U+FFFD.
	want := "tab\there \"quoted\" back\\slash new\nline bad\uFFFDutf8 ünïcode } {"
	got := map[string]string{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[name+"{"+strings.Join(labels, ",")+"}"] = f.GetType().String() + " " + strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	wantGot := map[string]string{
		"veneur_packet_error_total{packet_type=metric,reason=" + want + "}": "COUNTER 3",
		"veneur_listen_received_per_protocol_total{protocol=" + want + "}":  "COUNTER 1234567",
		"veneur_config_load_timestamp{}":                                    "GAUGE 1700000000.5",
	}
	if !reflect.DeepEqual(got, wantGot) {
		t.Errorf("read back\n%q\nwant\n%q\nfrom\n%s", got, wantGot, b.String())
	}
}

func TestPrometheusNames(t *testing.T) {
	for in, want := range map[string]string{
		"veneur.sink.flush_error_total": "veneur_sink_flush_error_total",
		"9lives":                        "_9lives",
		"a-b c":                         "a_b_c",
		"":                              "_",
	} {
		if got := promName(in); got != want {
			t.Errorf("promName(%q) = %q, want %q", in, got, want)
		}
	}
	r := New()
	r.Counter(PluginRestarts, "plugin:sink.a", "plugin:sink.b", "9:x").Inc()
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	want := "# TYPE veneur_plugin_restarts_total counter\nveneur_plugin_restarts_total{_9=\"x\",plugin=\"sink.a\"} 1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
