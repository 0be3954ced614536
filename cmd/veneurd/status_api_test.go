package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/internal/daemontest"
)

var updateShape = flag.Bool("update-status-shape", false, "rewrite testdata/api-status.shape")

// shape lists every path of a JSON document with its type, one per line,
// sorted: [] stands for every element of an array; a map keyed by data
// (dropped reasons, forward errors) is a "map of number", whatever its keys.
func shape(v any, path string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if strings.HasSuffix(path, ".dropped") || strings.HasSuffix(path, ".errors") {
			kind := "map of number"
			for _, e := range x {
				if _, ok := e.(float64); !ok {
					kind = fmt.Sprintf("map of %T", e)
				}
			}
			out[path+": "+kind] = true
			return
		}
		if len(x) == 0 {
			out[path+": object"] = true
		}
		for k, e := range x {
			shape(e, path+"."+k, out)
		}
	case []any:
		out[path+": array"] = true
		for _, e := range x {
			shape(e, path+"[]", out)
		}
	case string:
		out[path+": string"] = true
	case float64:
		out[path+": number"] = true
	case bool:
		out[path+": bool"] = true
	case nil:
		out[path+": null"] = true
	}
}

// TestStatusAPIShape: /api/status of a pipeline with every kind of block
// (sources with and without limits, a drop rule, a route, sinks, forward and
// receive) has exactly the fields of testdata/api-status.shape, with their
// types; and its values describe that pipeline. Scripts rely on the shape:
// a field may be added (update the file with -update-status-shape), none
// renamed or removed.
func TestStatusAPIShape(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	udp, admin := daemontest.FreePort(t, "udp"), daemontest.FreePort(t, "tcp")
	recv, upstream := daemontest.FreePort(t, "tcp"), daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
limits { max_series = 1000 }
source "dogstatsd" "in" {
  listen = ["udp://%s"]
  limits {
    max_series          = 100
    max_series_per_name = 2
  }
}
sink "localfile" "pay" { path = %q }
sink "localfile" "rest" {
  path     = %q
  max_tags = 1
}
metric_sink_routing "payments" {
  match { name = prefix("pay.") }
  matched     = [sink.localfile.pay]
  not_matched = [sink.localfile.rest]
}
drop "debug" {
  match { name = prefix("debug.") }
}
forward { address = %q }
receive { grpc_address = %q }
`, admin, udp, filepath.Join(dir, "pay.jsonl"), filepath.Join(dir, "rest.jsonl"), upstream, recv))
	// A name over its per-name limit, a dropped sample, a point over a
	// policy's limit, a histogram to forward (nothing listens upstream).
	sendLines(t, udp, "pay.a:1|c|#u:1\npay.a:1|c|#u:2\npay.a:1|c|#u:3\ndebug.x:1|c\nother.t:1|c|#a:1,b:2\nlat:3|ms")
	var st status.Status
	var raw string
	if !daemontest.Until(20*time.Second, func() bool {
		raw = d.Get("/api/status")
		st = status.Status{}
		return json.Unmarshal([]byte(raw), &st) == nil && len(st.Sources) == 1 &&
			st.Sources[0].Dropped["series_limit"] > 0 && st.Sources[0].Dropped["dropped_by_rule"] > 0 &&
			len(st.Sources[0].Limited) > 0 && st.Flush.Series > 0 && len(st.Sinks) == 2 && len(st.Sinks[1].Dropped) > 0 &&
			st.Forward != nil && st.Forward.Pending > 0
	}) {
		t.Fatalf("the status never showed the traffic:\n%s", raw)
	}
	src := st.Sources[0]
	if src.Address != "source.dogstatsd.in" || src.State != "running" || src.Pid == 0 || src.Limits != (status.Limits{MaxSeries: 100, MaxSeriesPerName: 2}) ||
		src.Limited[0] != "pay.a" || src.Dropped["series_limit"] != 1 || src.Dropped["dropped_by_rule"] != 1 {
		t.Errorf("source: %+v", src)
	}
	if st.Limits.MaxSeries != 1000 || len(st.Routes) != 1 || st.Routes[0].Matched[0] != "sink.localfile.pay" ||
		len(st.DropRules) != 1 || st.DropRules[0].Dropped != 1 || st.Receive == nil || st.Receive.Address != recv ||
		st.Forward.Members[0] != upstream || st.Config.IntervalSeconds != 1 || st.Config.LoadedAt.IsZero() || !st.Ready {
		t.Errorf("status:\n%s", raw)
	}

	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	shape(doc, "", paths)
	var lines []string
	for p := range paths {
		lines = append(lines, p)
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "api-status.shape")
	if *updateShape {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("/api/status's shape changed (-update-status-shape rewrites %s once the change is meant):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}
