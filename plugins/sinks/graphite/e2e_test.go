package graphite_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
)

// tags are the tags a point should be written with: its own, a bare tag
// with the value "true", and host, a host: tag's or else the point's.
func tags(p localfile.Line) map[string]string {
	l := map[string]string{"host": p.Hostname}
	for _, tag := range p.Tags {
		k, v, ok := strings.Cut(tag, ":")
		if !ok {
			v = "true"
		}
		l[k] = v
	}
	return l
}

// expected is what VictoriaMetrics' Graphite listener should hold.
func expected(lines []localfile.Line) map[sinkcheck.Key]float64 {
	want := map[sinkcheck.Key]float64{}
	for _, p := range lines {
		want[sinkcheck.Key{Series: sinkcheck.SeriesName(p.Name, tags(p)), TS: p.Timestamp}] = p.Value
	}
	return want
}

// tagged is a point's series as a Graphite tagged name, name;k=v;...
func tagged(p localfile.Line) string {
	l := tags(p)
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	name := p.Name
	for _, k := range keys {
		name += ";" + k + "=" + l[k]
	}
	return name
}

// TestDelivers sends the workload through the builtin sink to Carbon
// (graphite-carbon's carbon-cache, read back from its whisper files), and
// through the standalone binary, pinned by its sha256, to VictoriaMetrics'
// Graphite listener, and checks that each holds every point and service
// check the oracle got, with its value and tags.
func TestDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	carbon, vm := receivers.Carbon(t), receivers.VictoriaMetrics(t)
	r := sinkcheck.Start(t, sinkcheck.Standalone(t, "graphite")+fmt.Sprintf(`
sink "graphite" "carbon" {
  address = %q
}
sink "graphite_standalone" "vm" {
  address = %q
}
`, carbon.Line, vm.Graphite))
	lines := r.SendWorkload(t)
	lines = append(lines, sinkcheck.Checks(daemontest.ReadLines(t, r.Oracle), sinkcheck.Prefix)...)
	sinkcheck.WaitVM(t, vm, `{__name__=~"e2e[.].*"}`, expected(lines), 20*time.Second)
	for _, p := range lines {
		carbon.WaitPoints(t, tagged(p), 20*time.Second, func(points []receivers.Point) bool {
			for _, c := range points {
				if c.Timestamp == p.Timestamp {
					return c.Value == p.Value
				}
			}
			return false
		})
	}
}

// TestOutage stops the receiver for three intervals: see sinkcheck.Outage.
// The sink notices that Carbon closed its connection before writing to it.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	sinkcheck.Outage(t, sinkcheck.OutageSink{
		Type: "graphite",
		Block: func(name string, vm *receivers.VM, maxBuffered int) string {
			return fmt.Sprintf(`
sink "graphite" %q {
  address             = %q
  max_buffered_points = %d
  max_retry_backoff   = "250ms"
  timeout             = "2s"
}
`, name, vm.Graphite, maxBuffered)
		},
		Want:  expected,
		Match: `{__name__=~"e2e[.]outage[.].*"}`,
	})
}
