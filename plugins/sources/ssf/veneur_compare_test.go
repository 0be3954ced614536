package ssf

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

// ddLines returns the series posted to dd as localfile lines, to be read as
// veneurd's are: a counter (a rate per second of the one-second interval)
// is its count.
func ddLines(t *testing.T, dd *receivers.DatadogAPI) []daemontest.Line {
	var out []daemontest.Line
	for _, s := range dd.Series(t) {
		tags := slices.Clone(s.Tags)
		sort.Strings(tags)
		out = append(out, daemontest.Line{Name: s.Metric, Tags: tags, Type: s.Type, Value: s.Points[0][1], Timestamp: int64(s.Points[0][0])})
	}
	return out
}

// startVeneur runs Veneur with SSF on udp and gRPC on grpc, the indicator
// and objective timers of TestVeneurEmit, and its datadog sink posting to
// api.
func startVeneur(t *testing.T, udp, grpc, api string) {
	t.Helper()
	httpAddr := daemontest.FreePort(t, "tcp")
	cfg := fmt.Sprintf(`ssf_listen_addresses:
  - udp://%s
grpc_listen_addresses:
  - tcp://%s
trace_max_length_bytes: 16384
indicator_span_timer_name: indicator_span.duration_ns
objective_span_timer_name: objective_span.duration_ns
http_address: %q
interval: 1s
hostname: veneur
stats_address: %q
num_workers: 1
num_readers: 1
percentiles: [0.5, 0.99]
aggregates: [min, max, count]
metric_sinks:
  - kind: datadog
    name: datadog
    config:
      api_key: test
      api_hostname: %q
      flush_max_per_body: 25000
`, udp, grpc, httpAddr, daemontest.FreePort(t, "udp"), api)
	receivers.StartVeneur(t, cfg, httpAddr)
}

// TestCompareWithVeneur sends the same spans with veneur-emit, over UDP and
// gRPC, to veneurd and to Veneur v14.2.0, and checks that both flush the
// same series, names and tags, of the spans' samples and of their indicator
// and objective timers, with the same counts, sums, minimums and maximums
// (percentiles are each one's digest). Veneur's veneur.ssf.names_unique is
// a random 1% of spans and is left out.
func TestCompareWithVeneur(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	emitBin := veneurEmit(t)
	receivers.VeneurBinary(t)
	n := startSSFNode(t)
	dd := receivers.StartDatadogAPI(t)
	vUDP, vGRPC := daemontest.FreePort(t, "udp"), daemontest.FreePort(t, "tcp")
	startVeneur(t, vUDP, vGRPC, dd.URL)

	const p = "cmp"
	spans := [][]string{
		{"-name", p + ".lat", "-count", "2", "-timing", "5ms", "-tag", "k:v,e:"},
		{"-name", p + ".lat", "-count", "3", "-timing", "9ms", "-tag", "k:v,e:"},
		{"-name", p + ".g", "-gauge", "1.5"},
		{"-trace_id", "9", "-indicator", "-span_service", p + ".svc", "-name", p + ".op",
			"-span_starttime", "2024-05-01T12:00:00Z", "-span_endtime", "2024-05-01T12:00:00.1Z"},
		{"-trace_id", "9", "-indicator", "-error", "-span_service", p + ".svc", "-name", p + ".op",
			"-span_starttime", "2024-05-01T12:00:00Z", "-span_endtime", "2024-05-01T12:00:00.3Z"},
		{"-trace_id", "9", "-indicator", "-span_service", p + ".svc", "-name", p + ".op2", "-span_tags", "ssf_objective:checkout",
			"-span_starttime", "2024-05-01T12:00:00Z", "-span_endtime", "2024-05-01T12:00:00.2Z"},
		// Not an indicator: no timer.
		{"-trace_id", "9", "-span_service", p + ".svc", "-name", p + ".plain",
			"-span_starttime", "2024-05-01T12:00:00Z", "-span_endtime", "2024-05-01T12:00:00.2Z"},
	}
	for _, dst := range []struct{ udp, grpc string }{{n.udp, n.grpc}, {vUDP, vGRPC}} {
		for _, s := range spans {
			emit(t, emitBin, append([]string{"-hostport", "udp://" + dst.udp, "-ssf"}, s...)...)
			emit(t, emitBin, append([]string{"-hostport", "tcp://" + dst.grpc, "-ssf", "-grpc"}, s...)...)
		}
	}

	// Everything arrived when the timers' counts add up: 3 indicator spans,
	// twice.
	complete := func(ls []daemontest.Line) bool {
		return sumPrefix(ls, "indicator_span.duration_ns.count") == 6 && sumPrefix(ls, "objective_span.duration_ns.count") == 6 &&
			sumPrefix(ls, p+".lat.count") == 4 && sumPrefix(ls, p+".lat") == 10 && sumPrefix(ls, p+".g") > 0
	}
	ours := n.WaitLines(n.out, 20*time.Second, complete)
	var theirs []daemontest.Line
	if !daemontest.Until(20*time.Second, func() bool { theirs = ddLines(t, dd); return complete(theirs) }) {
		t.Fatalf("Veneur did not flush the spans' metrics within 20s: %v", relevant(ddLines(t, dd)))
	}
	got, want := summarize(relevant(ours)), summarize(relevant(theirs))
	if !slices.Equal(got, want) {
		t.Errorf("veneurd and Veneur differ:\nveneurd:\n\t%s\nVeneur:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	if len(got) < 20 {
		t.Errorf("only %d series compared:\n\t%s", len(got), strings.Join(got, "\n\t"))
	}
	t.Logf("the same %d series:\n\t%s", len(got), strings.Join(got, "\n\t"))
}

// relevant keeps the lines of the spans TestCompareWithVeneur sends.
func relevant(lines []daemontest.Line) []daemontest.Line {
	var out []daemontest.Line
	for _, l := range lines {
		if strings.HasPrefix(l.Name, "cmp.") || strings.HasPrefix(l.Name, "indicator_span.") || strings.HasPrefix(l.Name, "objective_span.") {
			out = append(out, l)
		}
	}
	return out
}

func sumPrefix(lines []daemontest.Line, name string) float64 {
	s := 0.0
	for _, l := range relevant(lines) {
		if l.Name == name {
			s += l.Value
		}
	}
	return s
}

// summarize reduces lines to one line per series, whatever the flushes
// they came in: counts and counters added, minimums and maximums kept,
// gauges' last value; a percentile is kept as present only.
func summarize(lines []daemontest.Line) []string {
	type acc struct {
		v  float64
		ok bool
	}
	series := map[string]*acc{}
	for _, l := range lines {
		key := l.Name + "{" + strings.Join(l.Tags, ",") + "}"
		a := series[key]
		if a == nil {
			a = &acc{}
			series[key] = a
		}
		switch {
		case strings.HasSuffix(l.Name, "percentile"):
			a.v = math.NaN()
		case strings.HasSuffix(l.Name, ".min"):
			if !a.ok || l.Value < a.v {
				a.v = l.Value
			}
		case strings.HasSuffix(l.Name, ".max"):
			if !a.ok || l.Value > a.v {
				a.v = l.Value
			}
		case strings.HasSuffix(l.Name, ".g"):
			a.v = l.Value
		default: // counters and counts
			a.v += l.Value
		}
		a.ok = true
	}
	var out []string
	for k, a := range series {
		if math.IsNaN(a.v) {
			out = append(out, k)
		} else {
			out = append(out, fmt.Sprintf("%s = %g", k, a.v))
		}
	}
	sort.Strings(out)
	return out
}
