package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/veneurd/veneurd/core/status"
)

// exampleStatus is a pipeline with every kind of node in every state: a
// running source and a failing one, a receive block, a sink that is down, a
// running one and a failing one, and a forward block.
const exampleStatus = `{
  "version": "v0.21.0",
  "hostname": "web-1",
  "time": "2026-12-01T02:00:03Z",
  "started": "2026-12-01T01:50:00Z",
  "ready": true,
  "healthy": false,
  "problems": ["plugin not running: sink.datadog.dd"],
  "config": {"hash": "3f2a9c1e0b7d4a11", "loaded_at": "2026-12-01T01:50:00Z", "path": "/etc/veneurd/pipeline.hcl", "interval_seconds": 10},
  "flush": {"at": "2026-12-01T02:00:00Z", "duration_seconds": 0.012, "total_duration_seconds": 0.034, "series": 1200, "points": 2800},
  "sources": [
    {"address": "source.dogstatsd.main", "type": "dogstatsd", "name": "main", "pid": 4242, "running": true, "restarts": 0,
     "listen": ["udp://127.0.0.1:8126"], "received": 120000, "processed": 119000, "errors": 12,
     "received_per_second": 1000.5, "processed_per_second": 990.1,
     "dropped": {"dropped_by_rule": 300, "series_limit": 25}, "limits": {"max_series": 100000, "max_series_per_name": 1000},
     "limited": ["api.request.by_user"]},
    {"address": "source.openmetrics.node", "type": "openmetrics", "name": "node", "pid": 4243, "running": true, "restarts": 1,
     "listen": [], "received": 5000, "processed": 5000, "errors": 0, "received_per_second": 50, "processed_per_second": 50,
     "last_error": "scrape http_127_0_0_1_9100: connection refused", "last_error_at": "2026-12-01T01:59:30Z",
     "dropped": {}, "limits": {}}
  ],
  "drop_rules": [{"name": "debug_metrics", "dropped": 300, "per_second": 2.5}],
  "routes": [{"name": "billing", "matched": ["sink.datadog.dd"], "not_matched": ["sink.prometheus_remote_write.prom", "sink.localfile.archive"]}],
  "sinks": [
    {"address": "sink.datadog.dd", "type": "datadog", "name": "dd", "pid": 0, "running": false, "restarts": 2,
     "last_error": "process exited (pid 4250)", "last_error_at": "2026-12-01T01:59:58Z",
     "flushed": 5000, "flush_errors": 1, "points_per_second": 20, "last_flush_points": 200, "last_flush_seconds": 0.02, "dropped": {}},
    {"address": "sink.prometheus_remote_write.prom", "type": "prometheus_remote_write", "name": "prom", "pid": 4251, "running": true, "restarts": 0,
     "flushed": 26000, "flush_errors": 0, "points_per_second": 260, "last_flush_points": 2600, "last_flush_seconds": 0.011, "dropped": {"too_many_tags": 4}},
    {"address": "sink.localfile.archive", "type": "localfile", "name": "archive", "pid": 4252, "running": true, "restarts": 0,
     "last_error": "write /var/lib/veneurd/archive.jsonl: no space left on device", "last_error_at": "2026-12-01T02:00:01Z",
     "flushed": 26000, "flush_errors": 3, "points_per_second": 0, "last_flush_points": 0, "last_flush_seconds": 0.003, "dropped": {}}
  ],
  "forward": {"protocol": "veneurd", "members": ["10.0.0.5:8128", "10.0.0.6:8128"], "pending": 0, "errors": {"unavailable": 1}},
  "receive": {"address": "0.0.0.0:8128", "aggregate": true, "series": 90000, "series_per_second": 1500},
  "limits": {"max_series": 100000, "max_series_per_name": 1000},
  "top_names": [{"name": "api.request.latency", "series": 600}, {"name": "api.request.count", "series": 400}],
  "edges": [
    {"from": "source.dogstatsd.main", "to": "pipeline", "per_second": 990.1, "unit": "samples"},
    {"from": "source.openmetrics.node", "to": "pipeline", "per_second": 50, "unit": "samples"},
    {"from": "receive", "to": "pipeline", "per_second": 1500, "unit": "series"},
    {"from": "pipeline", "to": "sink.datadog.dd", "per_second": 20, "unit": "points"},
    {"from": "pipeline", "to": "sink.prometheus_remote_write.prom", "per_second": 260, "unit": "points"},
    {"from": "pipeline", "to": "sink.localfile.archive", "per_second": 0, "unit": "points"},
    {"from": "pipeline", "to": "forward", "per_second": 45, "unit": "series"}
  ]
}`

func example(t *testing.T) *status.Status {
	t.Helper()
	var st status.Status
	if err := json.Unmarshal([]byte(exampleStatus), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func render(t *testing.T, st *status.Status) string {
	t.Helper()
	var b bytes.Buffer
	if err := writePage(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// element is an element of a parsed page: its attributes and its text.
type element struct {
	attr map[string]string
	text string
}

// findAll parses page and returns its elements named tag whose class
// attribute has class among its words.
func findAll(t *testing.T, page, tag, class string) []element {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var out []element
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != tag {
			continue
		}
		e := element{attr: map[string]string{}}
		for _, a := range n.Attr {
			e.attr[a.Key] = a.Val
		}
		if !slices.Contains(strings.Fields(e.attr["class"]), class) {
			continue
		}
		var text strings.Builder
		for d := range n.Descendants() {
			if d.Type == html.TextNode {
				text.WriteString(d.Data)
			}
		}
		e.text = strings.Join(strings.Fields(text.String()), " ") // the layout's whitespace collapsed
		out = append(out, e)
	}
	return out
}

// TestPageDrawsEveryNodeAndEdge renders the example: one node per block with
// its kind and state, one edge per status edge with its rate and label.
func TestPageDrawsEveryNodeAndEdge(t *testing.T) {
	page := render(t, example(t))

	nodes := map[string]string{}
	for _, n := range findAll(t, page, "g", "node") {
		if _, dup := nodes[n.attr["data-address"]]; dup {
			t.Errorf("node %q drawn twice", n.attr["data-address"])
		}
		nodes[n.attr["data-address"]] = n.attr["class"]
	}
	want := map[string]string{
		"source.dogstatsd.main":             "node source running",
		"source.openmetrics.node":           "node source failing",
		"receive":                           "node receive running",
		"pipeline":                          "node pipeline running",
		"sink.datadog.dd":                   "node sink down",
		"sink.prometheus_remote_write.prom": "node sink running",
		"sink.localfile.archive":            "node sink failing",
		"forward":                           "node forward running",
	}
	if fmt.Sprint(nodes) != fmt.Sprint(want) {
		t.Errorf("nodes:\n got %v\nwant %v", nodes, want)
	}

	var edges []string
	for _, e := range findAll(t, page, "g", "edge") {
		if e.attr["class"] != "edge" {
			t.Errorf("edge class %q", e.attr["class"])
		}
		edges = append(edges, fmt.Sprintf("%s -> %s %s %q", e.attr["data-from"], e.attr["data-to"], e.attr["data-rate"], e.text))
	}
	wantEdges := []string{
		`source.dogstatsd.main -> pipeline 990.1 "990 samples/s"`,
		`source.openmetrics.node -> pipeline 50 "50 samples/s"`,
		`receive -> pipeline 1500 "1.5k series/s"`,
		`pipeline -> sink.datadog.dd 20 "20 points/s"`,
		`pipeline -> sink.prometheus_remote_write.prom 260 "260 points/s"`,
		`pipeline -> sink.localfile.archive 0 "0 points/s"`,
		`pipeline -> forward 45 "45 series/s"`,
	}
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("edges:\n got %q\nwant %q", edges, wantEdges)
	}

	// The plugin nodes carry their process, for whoever reads the graph.
	for _, n := range findAll(t, page, "g", "sink") {
		if n.attr["data-address"] == "sink.datadog.dd" && (n.attr["data-pid"] != "0" || n.attr["data-restarts"] != "2") {
			t.Errorf("sink.datadog.dd: data-pid %q data-restarts %q, want 0 and 2", n.attr["data-pid"], n.attr["data-restarts"])
		}
	}
	for _, s := range []string{
		"process exited (pid 4250)",                                              // the down sink's last error, in its node and its row
		"by rule <b>300</b>", "series limit <b>25</b>", "too many tags <b>4</b>", // dropped, by reason
		"debug_metrics", "billing", // the pipeline's rules
		"api.request.latency", "api.request.by_user", // top names, limited names
		"3f2a9c1e0b7d4a11", "2026-12-01 01:50:00Z", "/etc/veneurd/pipeline.hcl", // the config
		"plugin not running: sink.datadog.dd", // the problems
		"10.0.0.5:8128", "0.0.0.0:8128",       // forward, receive
		"12 ms", "34 ms", "2.6k points", // flush and sinks' durations and sizes
		`<meta http-equiv="refresh" content="2">`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the page does not show %q", s)
		}
	}
}

// TestPageLayout checks the geometry: every node inside the drawing, no two
// overlapping, sources and receive left of the pipeline, sinks and forward
// right of it, and no two edges meeting the pipeline at the same height.
func TestPageLayout(t *testing.T) {
	st := example(t)
	// More sources than the pipeline has lines of text, to stretch it.
	for i := range 6 {
		s := st.Sources[0]
		s.Address = fmt.Sprintf("source.dogstatsd.extra%d", i)
		st.Sources = append(st.Sources, s)
		st.Edges = append(st.Edges, status.Edge{From: s.Address, To: status.NodePipeline, PerSecond: 1, Unit: "samples"})
	}
	g := layout(st, st.Time)
	if len(g.Nodes) != 14 || len(g.Edges) != 13 {
		t.Fatalf("%d nodes and %d edges, want 14 and 13", len(g.Nodes), len(g.Edges))
	}
	var pipe *node
	for _, n := range g.Nodes {
		if n.Kind == "pipeline" {
			pipe = n
		}
	}
	for i, a := range g.Nodes {
		if a.X < 0 || a.Y < 0 || a.X+a.W > g.Width || a.Y+a.H > g.Height {
			t.Errorf("%s at %d,%d %dx%d is outside the %dx%d drawing", a.Address, a.X, a.Y, a.W, a.H, g.Width, g.Height)
		}
		for _, b := range g.Nodes[i+1:] {
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("%s and %s overlap", a.Address, b.Address)
			}
		}
		switch a.Kind {
		case "source", "receive":
			if a.X+a.W >= pipe.X {
				t.Errorf("%s is not left of the pipeline", a.Address)
			}
		case "sink", "forward":
			if a.X <= pipe.X+pipe.W {
				t.Errorf("%s is not right of the pipeline", a.Address)
			}
		}
	}
	// Each path ends where its label says: "M x1 y1 C ... x2 y2".
	ends := map[string]bool{}
	for _, e := range g.Edges {
		f := strings.Fields(strings.NewReplacer("M", "", "C", "").Replace(e.Path))
		if len(f) != 8 {
			t.Fatalf("path %q", e.Path)
		}
		at := f[6] + "," + f[7] // where it reaches the pipeline or the sink
		if e.From == status.NodePipeline {
			at = f[0] + "," + f[1]
		}
		if ends[at] {
			t.Errorf("two edges meet at %s", at)
		}
		ends[at] = true
	}
}

// TestPageStates: a plugin is in the state the daemon says; without one,
// down without a process, failing while its last error stands, running
// otherwise.
func TestPageStates(t *testing.T) {
	for _, c := range []struct {
		p    status.Plugin
		want string
	}{
		{status.Plugin{Running: true}, "running"},
		{status.Plugin{Running: false, Pid: 0}, "down"},
		{status.Plugin{Running: false, LastError: "process exited"}, "down"},
		{status.Plugin{Running: true, Pid: 7, LastError: "flush: timeout"}, "failing"},
		// The daemon's word wins: a source whose process exited once and
		// came back keeps its error, and runs.
		{status.Plugin{State: "running", Running: true, LastError: "process exited"}, "running"},
		{status.Plugin{State: "failing", Running: true}, "failing"},
		{status.Plugin{State: "down", Running: false, LastError: "x"}, "down"},
	} {
		if got := pluginState(c.p); got != c.want {
			t.Errorf("%+v: %s, want %s", c.p, got, c.want)
		}
	}
}

// TestPageEscapes sends hostile names through every place a client's text
// reaches (top names, limited names, errors, drop rules): the page shows
// them as text and runs nothing.
func TestPageEscapes(t *testing.T) {
	const hostile = `x"><script>alert(1)</script><svg onload=alert(2)>`
	st := example(t)
	st.TopNames = append(st.TopNames, status.NameCount{Name: hostile, Series: 3})
	st.Sources[0].Limited = []string{hostile}
	st.Sinks[0].LastError = hostile
	st.DropRules[0].Name = hostile
	st.Problems = append(st.Problems, hostile)
	page := render(t, st)
	for _, bad := range []string{"<script", "<svg onload", `x">`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	var shown []string
	for _, class := range []string{"name", "list", "err"} {
		for _, e := range findAll(t, page, "td", class) {
			if strings.Contains(e.text, hostile) {
				shown = append(shown, class)
			}
		}
	}
	// The top name, the drop rule, the sink's error.
	if want := []string{"name", "list", "err"}; !slices.Equal(shown, want) {
		t.Errorf("the hostile text shown whole in cells of classes %q, want %q", shown, want)
	}
	if l := findAll(t, page, "small", "name"); len(l) != 1 || l[0].text != "limited: "+hostile {
		t.Errorf("the limited names: %v", l)
	}
	var inNode bool
	for _, n := range findAll(t, page, "g", "pipeline") {
		inNode = strings.Contains(n.text, `x"><script>alert(1)</`) // cut to fit the node
	}
	if !inNode {
		t.Error("the pipeline node does not show the hostile rule's name as text")
	}
}

// TestPageSelfContained: no script, no reference to any host (no CDN, no
// web font), links relative to the admin address.
func TestPageSelfContained(t *testing.T) {
	page := render(t, example(t))
	for _, bad := range []string{"<script", "http://", "https://", "@import", "@font-face", "<link", "<iframe", "<img"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if got := regexp.MustCompile(`url\([^)]*\)`).FindAllString(page, -1); len(slices.Compact(got)) != 1 || got[0] != "url(#arrow)" {
		t.Errorf("url() references %q, want only url(#arrow)", got)
	}
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[1], "//") || strings.Contains(m[1], ":") {
			t.Errorf("reference %q is not relative", m[1])
		}
	}
}

// TestPageEmpty renders what a daemon says before it knows anything but its
// name: the pipeline node alone, no edges, and no error.
func TestPageEmpty(t *testing.T) {
	st := &status.Status{Hostname: "h", Time: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	st.Config.Hash = "abc"
	page := render(t, st)
	if n := findAll(t, page, "g", "node"); len(n) != 1 || n[0].attr["class"] != "node pipeline running" {
		t.Errorf("nodes %v, want the pipeline alone", n)
	}
	if e := findAll(t, page, "g", "edge"); len(e) != 0 {
		t.Errorf("edges %v, want none", e)
	}
	for _, s := range []string{"no sources", "no sinks", "abc", "the embedded default pipeline"} {
		if !strings.Contains(page, s) {
			t.Errorf("the page does not show %q", s)
		}
	}
}

// TestAgo checks how long ago the page says things happened.
func TestAgo(t *testing.T) {
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "now"}, {3 * time.Second, "3 s ago"}, {5 * time.Minute, "5 min ago"}, {3 * time.Hour, "3 h ago"}, {72 * time.Hour, "3 d ago"}} {
		if got := ago(now.Add(-c.d), now); got != c.want {
			t.Errorf("ago(%s) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := ago(time.Time{}, now); got != "—" {
		t.Errorf("ago(zero) = %q", got)
	}
}

// TestCutSpans: a node's line is cut to its width, the cut marked.
func TestCutSpans(t *testing.T) {
	l := []span{{"abcd", "a"}, {"efgh", "b"}, {"ij", "c"}}
	for n, want := range map[int]string{10: "abcd|efgh|ij", 9: "abcd|efgh|…", 8: "abcd|efg…", 5: "abcd|…", 4: "abc…"} {
		var got []string
		for _, s := range cutSpans(l, n) {
			got = append(got, s.Text)
		}
		if strings.Join(got, "|") != want {
			t.Errorf("cut to %d: %q, want %q", n, strings.Join(got, "|"), want)
		}
	}
}
