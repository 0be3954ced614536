package influxdb_test

import (
	"fmt"
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

// expected is what a receiver should hold: a series per point, named name
// of the point's name (the measurement).
func expected(lines []localfile.Line, name func(string) string) map[sinkcheck.Key]float64 {
	want := map[sinkcheck.Key]float64{}
	for _, p := range lines {
		want[sinkcheck.Key{Series: sinkcheck.SeriesName(name(p.Name), tags(p)), TS: p.Timestamp}] = p.Value
	}
	return want
}

// inVM is the name VictoriaMetrics gives a measurement's field value.
func inVM(measurement string) string { return measurement + "_value" }

// TestDelivers sends the workload through the builtin sink (API v1) to
// InfluxDB 1.6, and through the standalone binary, pinned by its sha256
// (API v2), to VictoriaMetrics, and checks that each holds every point the
// oracle got, once, with its value, tags and host; and, in InfluxDB, the
// service check with its message.
func TestDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	influx, vm := receivers.InfluxDB(t), receivers.VictoriaMetrics(t)
	const token = "influx-token-8a7b6c5d4e3f"
	t.Setenv("VENEURD_TEST_INFLUX_TOKEN", token)
	r := sinkcheck.Start(t, sinkcheck.Standalone(t, "influxdb")+fmt.Sprintf(`
sink "influxdb" "v1" {
  address  = %q
  database = %q
}
sink "influxdb_standalone" "v2" {
  address     = %q
  api_version = 2
  org         = "veneurd"
  bucket      = "metrics"
  token       = env("VENEURD_TEST_INFLUX_TOKEN")
}
`, influx.URL, influx.DB, vm.HTTP))
	points := r.SendWorkload(t)
	checks := sinkcheck.Checks(daemontest.ReadLines(t, r.Oracle), sinkcheck.Prefix)
	points = append(points, checks...)
	sinkcheck.WaitVM(t, vm, `{__name__=~"e2e[.].*_value"}`, expected(points, inVM), 20*time.Second)

	want := expected(points, func(s string) string { return s })
	var diff string
	var rows []receivers.Row
	if !daemontest.Until(20*time.Second, func() bool {
		rows = influx.Query(t, influx.DB, `SELECT "value" FROM /^e2e\./ GROUP BY *`)
		got := map[sinkcheck.Key]float64{}
		for _, row := range rows {
			for k, v := range row.Tags {
				if v == "" { // a tag key of another measurement
					delete(row.Tags, k)
				}
			}
			for i := range row.Values {
				ns, _ := row.Get(i, "time").(int64)
				v, _ := row.Get(i, "value").(float64)
				got[sinkcheck.Key{Series: sinkcheck.SeriesName(row.Name, row.Tags), TS: ns / 1e9}] = v
			}
		}
		diff = sinkcheck.Diff(got, want)
		return diff == ""
	}) {
		t.Fatalf("InfluxDB: %s", diff)
	}
	msg := influx.Query(t, influx.DB, `SELECT "message" FROM "e2e.check"`)
	if len(msg) != 1 || msg[0].Get(0, "message") != checks[0].Message {
		t.Errorf("the service check's message: %+v, want %q", msg, checks[0].Message)
	}
	if strings.Contains(r.Logs(), token) || strings.Contains(r.Get("/config"), token) {
		t.Error("the token shows in veneurd's log or /config")
	}
}

// TestOutage stops the receiver for three intervals: see sinkcheck.Outage.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	sinkcheck.Outage(t, sinkcheck.OutageSink{
		Type: "influxdb",
		Block: func(name string, vm *receivers.VM, maxBuffered int) string {
			return fmt.Sprintf(`
sink "influxdb" %q {
  address             = %q
  database            = "outage"
  max_buffered_points = %d
  max_retry_backoff   = "250ms"
  timeout             = "2s"
}
`, name, vm.HTTP, maxBuffered)
		},
		Want: func(points []localfile.Line) map[sinkcheck.Key]float64 {
			want := map[sinkcheck.Key]float64{}
			for _, p := range points {
				l := tags(p)
				l["db"] = "outage" // VictoriaMetrics keeps the database as a label
				want[sinkcheck.Key{Series: sinkcheck.SeriesName(inVM(p.Name), l), TS: p.Timestamp}] = p.Value
			}
			return want
		},
		Match: `{__name__=~"e2e[.]outage[.].*"}`,
	})
}
