package receivers

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"
)

const wait = 10 * time.Second

// one returns the only series of ss, failing the test otherwise.
func one(t *testing.T, ss []Series) Series {
	t.Helper()
	if len(ss) != 1 {
		t.Fatalf("want one series, got %d:\n%s", len(ss), show(ss))
	}
	return ss[0]
}

// has reports whether a series came back.
func has(ss []Series) bool { return len(ss) > 0 }

// checkSeries compares a series with what it should be.
func checkSeries(t *testing.T, got Series, name string, labels map[string]string, values []float64, ms []int64) {
	t.Helper()
	if got.Name != name || !maps.Equal(got.Labels, labels) || !slices.Equal(got.Values, values) || !slices.Equal(got.Timestamps, ms) {
		want := Series{Name: name, Labels: labels, Values: values, Timestamps: ms}
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestVictoriaMetricsProtocols writes each protocol the sinks use to a real
// VictoriaMetrics and checks how it lands: the findings in VM's doc comment.
func TestVictoriaMetricsProtocols(t *testing.T) {
	vm := VictoriaMetrics(t)
	now := time.Now().Truncate(time.Second)
	sec := now.Unix()
	ms := now.UnixMilli()

	t.Run("datadog v1", func(t *testing.T) {
		body := fmt.Sprintf(`{"series":[
			{"metric":"dd1.a.b-c_D","points":[[%d,1.5],[%d.75,2.5]],"type":"gauge","interval":10,
			 "host":"h1","device":"sda","tags":["k:v","k2:v:x","bare","Up.Per:Q","env:prod","env:dev","host:tag_host","empty:"]},
			{"metric":"dd1.p._x!y","points":[[%d,3]],"type":"rate","interval":10},
			{"metric":"dd1.renamed","points":[[%d,4]],"tags":[":dd1.other"]},
			{"metric":"dd1.twice","points":[[%d,5],[%d,5]]},
			{"metric":"dd1.zero","points":[[0,6]]}]}`, sec-10, sec, sec, sec, sec, sec)
		// VM stamps a point at time 0 with its clock in whole seconds, which
		// it reads once a second.
		before := time.Now().Add(-2 * time.Second).UnixMilli()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(body))
		zw.Close()
		post(t, vm.HTTP+"/datadog/api/v1/series", "application/json", gz.Bytes(), 202,
			"Content-Encoding", "gzip", "DD-API-KEY", "unused")
		got := vm.WaitExport(t, `{__name__=~"dd1\\..*"}`, wait, func(ss []Series) bool { return len(ss) == 5 })
		checkSeries(t, got[0], "dd1.a.b_c_D", map[string]string{
			"host": "h1", "device": "sda", "k": "v", "k2": "v:x", "bare": "no_label_value",
			"Up.Per": "Q", "env": "dev", "exported_host": "tag_host",
		}, []float64{1.5, 2.5}, []int64{ms - 10000, ms + 750})
		checkSeries(t, got[1], "dd1.other", map[string]string{}, []float64{4}, []int64{ms})
		checkSeries(t, got[2], "dd1.p.x_y", map[string]string{}, []float64{3}, []int64{ms})
		checkSeries(t, got[3], "dd1.twice", map[string]string{}, []float64{5, 5}, []int64{ms, ms})
		if z := got[4]; z.Name != "dd1.zero" || len(z.Timestamps) != 1 || z.Timestamps[0] < before || z.Timestamps[0] > time.Now().UnixMilli() {
			t.Errorf("a point at time 0 should land at the time of arrival: %s", z)
		}
	})

	t.Run("datadog v2", func(t *testing.T) {
		body := fmt.Sprintf(`{"series":[{"metric":"dd2.a.b-c","type":3,"unit":"byte","interval":10,
			"points":[{"timestamp":%d,"value":4.25}],"tags":["k:v","bare","host:t"],
			"resources":[{"name":"h2","type":"host"},{"name":"r1","type":"other"}],"source_type_name":"src"}]}`, sec)
		post(t, vm.HTTP+"/datadog/api/v2/series", "application/json", []byte(body), 202)
		s := one(t, vm.WaitExport(t, "dd2.a.b_c", wait, has))
		checkSeries(t, s, "dd2.a.b_c", map[string]string{
			"host": "h2", "other": "r1", "k": "v", "bare": "no_label_value", "exported_host": "t", "source_type_name": "src",
		}, []float64{4.25}, []int64{ms})
	})

	t.Run("influx", func(t *testing.T) {
		lines := fmt.Sprintf("infl.m,host=h1,a\\ b=c\\,d value=1.5 %d\ninfl.m2,k=v a=1,b=2i,c=true,d=\"str\" %d\n",
			now.UnixNano(), now.UnixNano()+int64(time.Millisecond))
		post(t, vm.HTTP+"/write?db=x", "text/plain", []byte(lines), 204)
		got := vm.WaitExport(t, `{__name__=~"infl\\..*"}`, wait, func(ss []Series) bool { return len(ss) == 5 })
		checkSeries(t, got[0], "infl.m2_a", map[string]string{"db": "x", "k": "v"}, []float64{1}, []int64{ms + 1})
		checkSeries(t, got[1], "infl.m2_b", map[string]string{"db": "x", "k": "v"}, []float64{2}, []int64{ms + 1})
		checkSeries(t, got[2], "infl.m2_c", map[string]string{"db": "x", "k": "v"}, []float64{1}, []int64{ms + 1})
		checkSeries(t, got[3], "infl.m2_d", map[string]string{"db": "x", "k": "v"}, []float64{0}, []int64{ms + 1})
		checkSeries(t, got[4], "infl.m_value", map[string]string{"db": "x", "host": "h1", "a b": "c,d"}, []float64{1.5}, []int64{ms})
	})

	t.Run("graphite", func(t *testing.T) {
		sendTCP(t, vm.Graphite, fmt.Sprintf("gr.a.b 1.5 %d\ngr.c-d_e:f;k=v with space;host=h1;k2=1;k2=2 2 %d.6\ngr.inf inf %d\ngr.nan nan %d\n", sec, sec, sec, sec))
		got := vm.WaitExport(t, `{__name__=~"gr\\..*"}`, wait, func(ss []Series) bool { return len(ss) == 3 })
		checkSeries(t, got[0], "gr.a.b", map[string]string{}, []float64{1.5}, []int64{ms})
		checkSeries(t, got[1], "gr.c-d_e:f", map[string]string{"k": "v with space", "host": "h1", "k2": "2"}, []float64{2}, []int64{ms})
		checkSeries(t, got[2], "gr.inf", map[string]string{}, []float64{math.Inf(1)}, []int64{ms})
	})

	t.Run("prometheus remote write", func(t *testing.T) {
		postRemoteWrite(t, vm.HTTP+"/api/v1/write", 204, rwSeries{
			Labels:  map[string]string{"__name__": "rw.a-b", "k.x": "v", "host": "h1"},
			Samples: []rwSample{{1, ms - 1}, {2, ms}},
		})
		s := one(t, vm.WaitExport(t, `{__name__="rw.a-b"}`, wait, has))
		checkSeries(t, s, "rw.a-b", map[string]string{"k.x": "v", "host": "h1"}, []float64{1, 2}, []int64{ms - 1, ms})
	})

	t.Run("opentelemetry", func(t *testing.T) {
		body := otlpRequest([][2]string{{"service.name", "svc"}, {"host.name", "h1"}},
			otlpMetric{Name: "otel.gauge-x", Unit: "By", Attrs: [][2]string{{"k.a", "v"}}, Value: 1.5, Time: now.Add(123 * time.Microsecond)},
			otlpMetric{Name: "otel.count", Sum: true, Value: 7, Time: now})
		post(t, vm.HTTP+"/opentelemetry/v1/metrics", "application/x-protobuf", body, 200)
		got := vm.WaitExport(t, `{__name__=~"otel\\..*"}`, wait, func(ss []Series) bool { return len(ss) == 2 })
		res := map[string]string{"service.name": "svc", "host.name": "h1", "scope.name": "veneurd", "scope.version": "unknown"}
		checkSeries(t, got[0], "otel.count", res, []float64{7}, []int64{ms})
		res["k.a"] = "v"
		checkSeries(t, got[1], "otel.gauge-x", res, []float64{1.5}, []int64{ms})
	})
}

// TestVictoriaMetricsRestart stops VictoriaMetrics and starts it again on
// the same ports and storage: what it had is still there, and it takes
// writes again.
func TestVictoriaMetricsRestart(t *testing.T) {
	vm := VictoriaMetrics(t)
	sec := time.Now().Unix()
	sendTCP(t, vm.Graphite, fmt.Sprintf("restart.a 1 %d\n", sec-1))
	vm.WaitExport(t, "restart.a", wait, has)
	vm.Stop()
	if err := httpOK(vm.HTTP + "/health"); err == nil {
		t.Fatal("victoria-metrics still answers after Stop")
	}
	vm.Start()
	sendTCP(t, vm.Graphite, fmt.Sprintf("restart.a 2 %d\n", sec))
	s := one(t, vm.WaitExport(t, "restart.a", wait, func(ss []Series) bool { return len(ss) == 1 && len(ss[0].Values) == 2 }))
	checkSeries(t, s, "restart.a", map[string]string{}, []float64{1, 2}, []int64{(sec - 1) * 1000, sec * 1000})
}
