package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/websocket"

	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/internal/daemontest"
)

// TestStatusPage opens the admin address's status page in a real headless
// Chromium, with JavaScript switched off, and reads what it shows while the
// daemon runs a routed pipeline of three sinks: every block and edge of the
// graph, the source's rate following the traffic sent, and a sink whose
// process is killed shown down and then back. The page is loaded once: every
// later view comes from its own meta refresh.
//
// With VENEURD_WRITE_SCREENSHOT=1 it also writes docs/status-page.png, the
// page under load.
func TestStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	chromium := findChromium()
	if chromium == "" {
		t.Skip("chromium is not installed (scripts/test-deps.sh installs it)")
	}
	dir := t.TempDir()
	// The vendor sink runs from its own binary, which the test swaps for
	// one that cannot start, to hold the sink down for as long as it takes
	// to see it down.
	vendor := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	const token = "statuspage-t0ken"
	ep := newEndpoint(t, token)
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	all, payments := filepath.Join(dir, "all.jsonl"), filepath.Join(dir, "payments.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
plugin "sink" "example" { path = %q }
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "all" { path = %q }
sink "localfile" "payments" { path = %q }
sink "example" "vendor" {
  url   = %q
  token = %q
}
metric_sink_routing "payments" {
  match {
    name = prefix("pay.")
  }
  matched     = [sink.localfile.payments, sink.example.vendor]
  not_matched = [sink.localfile.all, sink.example.vendor]
}
drop "debug" {
  match {
    name = prefix("debug.")
  }
}
`, admin, vendor, udp, all, payments, ep.URL, token))

	send := startTraffic(t, udp)
	send.rate.Store(200)
	b := startBrowser(t, chromium)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// Not in t.TempDir, which goes with the test.
		shots, err := os.MkdirTemp("", "veneurd-statuspage-")
		if err == nil {
			path := filepath.Join(shots, "status-page.png")
			if err = b.screenshot(path); err == nil {
				t.Logf("the page as the test failed: %s", path)
			}
		}
		if err != nil {
			t.Logf("no screenshot: %v", err)
		}
	})
	url := "http://" + admin + "/"
	if err := b.call("Emulation.setScriptExecutionDisabled", map[string]any{"value": true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.navigate(url); err != nil {
		t.Fatal(err)
	}

	// The graph: every block, every edge, each node of its kind.
	const (
		source = "source.dogstatsd.in"
		sinkA  = "sink.localfile.all"
		sinkP  = "sink.localfile.payments"
		sinkV  = "sink.example.vendor"
	)
	p := b.waitPage(t, 10*time.Second, "every block drawn, running", func(p *pageView) bool {
		return len(p.nodes) == 5 && p.allRunning()
	})
	wantNodes := map[string]string{
		source:     "node source running",
		"pipeline": "node pipeline running",
		sinkA:      "node sink running",
		sinkP:      "node sink running",
		sinkV:      "node sink running",
	}
	for addr, class := range wantNodes {
		if got := p.nodes[addr].class; got != class {
			t.Errorf("node %s: class %q, want %q", addr, got, class)
		}
	}
	wantEdges := []string{source + " -> pipeline", "pipeline -> " + sinkA, "pipeline -> " + sinkP, "pipeline -> " + sinkV}
	if got := slices.Sorted(maps.Keys(p.edges)); !slices.Equal(got, slices.Sorted(slices.Values(wantEdges))) {
		t.Errorf("edges %q, want %q", got, wantEdges)
	}
	for _, s := range []string{"× debug", "→ payments 2 matched · 2 not"} {
		if !strings.Contains(p.nodes["pipeline"].text, s) {
			t.Errorf("the pipeline node does not show %q: %q", s, p.nodes["pipeline"].text)
		}
	}

	// The rates follow the traffic: about 180 samples/s aggregated (a
	// tenth of the lines are dropped by the rule), then about 900; and
	// points flow to every sink.
	edge := source + " -> pipeline"
	p = b.waitPage(t, 15*time.Second, "the source's rate near 180/s and points to every sink", func(p *pageView) bool {
		r := p.edges[edge]
		return r > 100 && r < 300 && p.edges["pipeline -> "+sinkA] > 0 &&
			p.edges["pipeline -> "+sinkP] > 0 && p.edges["pipeline -> "+sinkV] > 0
	})
	slow := p.edges[edge]
	send.rate.Store(1000)
	p = b.waitPage(t, 15*time.Second, "the source's rate near 900/s", func(p *pageView) bool {
		r := p.edges[edge]
		return r > 500 && r < 1500
	})
	if fast := p.edges[edge]; fast == slow {
		t.Errorf("the source's rate is %v at both 200 and 1,000 lines/s", fast)
	}
	if os.Getenv("VENEURD_WRITE_SCREENSHOT") != "" {
		b.waitPage(t, 10*time.Second, "every block running", (*pageView).allRunning)
		_, file, _, _ := runtime.Caller(0)
		path := filepath.Join(filepath.Dir(file), "..", "..", "docs", "status-page.png")
		if err := b.screenshot(path); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}

	// The vendor sink killed, and kept from starting: down, then back.
	var st status.Status
	if err := json.Unmarshal([]byte(d.Get("/api/status")), &st); err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, s := range st.Sinks {
		if s.Address == sinkV {
			pid = s.Pid
		}
	}
	if pid == 0 {
		t.Fatalf("/api/status gives no pid for %s", sinkV)
	}
	if got := b.waitPage(t, 5*time.Second, "the sink's pid", func(p *pageView) bool { return p.nodes[sinkV].pid == pid }); got.nodes[sinkV].restarts != 0 {
		t.Errorf("%s: %d restarts before any", sinkV, got.nodes[sinkV].restarts)
	}
	good := vendor + ".good"
	if err := os.Rename(vendor, good); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vendor, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p = b.waitPage(t, 10*time.Second, sinkV+" down", func(p *pageView) bool {
		return p.nodes[sinkV].class == "node sink down"
	})
	if n := p.nodes[sinkV]; n.pid != 0 {
		t.Errorf("%s down with pid %d", sinkV, n.pid)
	}
	if _, ok := p.edges["pipeline -> "+sinkV]; !ok {
		t.Errorf("the edge to %s is not drawn while it is down", sinkV)
	}
	if err := os.Rename(good, vendor); err != nil {
		t.Fatal(err)
	}
	p = b.waitPage(t, 20*time.Second, sinkV+" running again", func(p *pageView) bool {
		n := p.nodes[sinkV]
		return n.class == "node sink running" && n.restarts >= 1 && n.pid != 0 && n.pid != pid
	})
	for _, addr := range []string{source, sinkA, sinkP} {
		if n := p.nodes[addr]; n.class != wantNodes[addr] || n.restarts != 0 {
			t.Errorf("%s: class %q, %d restarts; want %q and none", addr, n.class, n.restarts, wantNodes[addr])
		}
	}
}

// findChromium returns the path of Debian's chromium, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// traffic sends DogStatsD lines to a source at rate lines per second, in a
// datagram every 10 ms, until the test ends: web requests by endpoint,
// payments routed apart, and one line in ten a debug gauge the drop rule
// takes.
type traffic struct {
	rate atomic.Int64
}

func startTraffic(t *testing.T, addr string) *traffic {
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &traffic{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var owed float64 // lines due and not yet sent
		var buf []byte
		for i := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			owed += float64(tr.rate.Load()) / 100
			buf = buf[:0]
			for ; owed >= 1; owed-- {
				buf = appendLine(buf, i)
				i++
			}
			if len(buf) > 0 {
				c.Write(buf) // a refused datagram (the source restarting) is only a lost one
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; c.Close() })
	return tr
}

// appendLine appends the i-th line of the traffic.
func appendLine(b []byte, i int) []byte {
	endpoints := []string{"/v1/items", "/v1/items/:id", "/v1/cart", "/v1/search", "/v1/login", "/v2/feed"}
	ep := endpoints[i/7%len(endpoints)]
	switch i % 10 {
	case 0:
		return fmt.Appendf(b, "debug.cache.size:%d|g\n", i%100)
	case 1, 5:
		return fmt.Appendf(b, "pay.charge.amount:%d|h|#currency:%s\n", 5+i%50, []string{"usd", "eur", "gbp"}[i%3])
	case 2, 4, 6, 8:
		return fmt.Appendf(b, "web.request.duration:%d|ms|#endpoint:%s,status:200\n", 3+i%40, ep)
	default:
		return fmt.Appendf(b, "web.request.count:1|c|#endpoint:%s,status:%d,region:%s\n",
			ep, []int{200, 200, 200, 404, 500}[i%5], []string{"eu-west", "us-east", "ap-south"}[i/11%3])
	}
}

// pageView is what the browser shows of the status page's graph: its nodes
// by address and its edges' rates by "from -> to".
type pageView struct {
	nodes map[string]pageNode
	edges map[string]float64
}

type pageNode struct {
	class         string
	pid, restarts int
	text          string
}

// allRunning reports whether every node is running.
func (p *pageView) allRunning() bool {
	for _, n := range p.nodes {
		if !strings.HasSuffix(n.class, " running") {
			return false
		}
	}
	return true
}

func (p *pageView) String() string {
	var b strings.Builder
	for _, a := range slices.Sorted(maps.Keys(p.nodes)) {
		n := p.nodes[a]
		fmt.Fprintf(&b, "\n  %s: %q pid %d restarts %d", a, n.class, n.pid, n.restarts)
	}
	for _, e := range slices.Sorted(maps.Keys(p.edges)) {
		fmt.Fprintf(&b, "\n  %s: %v/s", e, p.edges[e])
	}
	return b.String()
}

// parsePage reads the graph out of the page's HTML; false when the page is
// not whole (read while the browser loads it again).
func parsePage(s string) (*pageView, bool) {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return nil, false
	}
	p := &pageView{nodes: map[string]pageNode{}, edges: map[string]float64{}}
	whole := false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		attr := map[string]string{}
		for _, a := range n.Attr {
			attr[a.Key] = a.Val
		}
		class := strings.Fields(attr["class"])
		switch {
		case n.Data == "footer" && attr["id"] == "end":
			whole = true
		case n.Data == "g" && slices.Contains(class, "node"):
			pn := pageNode{class: attr["class"]}
			pn.pid, _ = strconv.Atoi(attr["data-pid"])
			pn.restarts, _ = strconv.Atoi(attr["data-restarts"])
			var text strings.Builder
			for d := range n.Descendants() {
				if d.Type == html.TextNode {
					text.WriteString(d.Data)
				}
			}
			pn.text = strings.Join(strings.Fields(text.String()), " ")
			p.nodes[attr["data-address"]] = pn
		case n.Data == "g" && slices.Contains(class, "edge"):
			r, err := strconv.ParseFloat(attr["data-rate"], 64)
			if err != nil {
				return nil, false
			}
			p.edges[attr["data-from"]+" -> "+attr["data-to"]] = r
		}
	}
	return p, whole
}

// browser is a headless Chromium driven over the DevTools protocol: one
// page, whose document and screenshots the test reads.
type browser struct {
	ws     *websocket.Conn
	mu     sync.Mutex
	nextID int
	calls  map[int]chan cdpMessage
	events chan cdpMessage
	// loads counts the page's load events: a document read again before
	// the next one is the same.
	loads  atomic.Int64
	stderr *tail
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params any             `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// tail keeps the last few KB written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string { t.mu.Lock(); defer t.mu.Unlock(); return string(t.b) }

var devtoolsURL = regexp.MustCompile(`DevTools listening on ws://([^/\s]+)/`)

// startBrowser runs chromium in its own process group, which the test's
// cleanup ends, and connects to its page.
func startBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0", "--remote-allow-origins=*",
		"--user-data-dir="+t.TempDir(), "--window-size=1400,1000", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	b := &browser{calls: map[int]chan cdpMessage{}, events: make(chan cdpMessage, 64), stderr: &tail{}}
	found := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.stderr.Write(append(sc.Bytes(), '\n'))
			if m := devtoolsURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		if b.ws != nil {
			b.ws.Close()
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	var host string
	select {
	case host = <-found:
	case <-exited:
		t.Fatalf("chromium exited before it listened:\n%s", b.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("chromium did not listen within 20s:\n%s", b.stderr)
	}

	// The page it opened, by the HTTP side of its DevTools endpoint.
	var targets []struct{ Type, WebSocketDebuggerURL string }
	resp, err := http.Get("http://" + host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&targets)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var page string
	for _, tg := range targets {
		if tg.Type == "page" {
			page = tg.WebSocketDebuggerURL
		}
	}
	if page == "" {
		t.Fatalf("chromium has no page: %+v", targets)
	}
	if b.ws, err = websocket.Dial(page, "", "http://"+host); err != nil {
		t.Fatal(err)
	}
	b.ws.MaxPayloadBytes = 64 << 20 // screenshots
	go b.read()
	if err := b.call("Page.enable", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// read hands each reply to its call and each event to b.events, until the
// connection closes.
func (b *browser) read() {
	for {
		var m cdpMessage
		if err := websocket.JSON.Receive(b.ws, &m); err != nil {
			b.mu.Lock()
			for id, c := range b.calls {
				close(c)
				delete(b.calls, id)
			}
			b.calls = nil
			b.mu.Unlock()
			return
		}
		if m.ID == 0 {
			if m.Method == "Page.loadEventFired" {
				b.loads.Add(1)
			}
			select {
			case b.events <- m:
			default: // nobody waits for it
			}
			continue
		}
		b.mu.Lock()
		c := b.calls[m.ID]
		delete(b.calls, m.ID)
		b.mu.Unlock()
		if c != nil {
			c <- m
		}
	}
}

// call runs a DevTools method and decodes its result into result (unless
// nil).
func (b *browser) call(method string, params, result any) error {
	b.mu.Lock()
	if b.calls == nil {
		b.mu.Unlock()
		return errors.New("the browser's connection is closed")
	}
	b.nextID++
	id := b.nextID
	c := make(chan cdpMessage, 1)
	b.calls[id] = c
	b.mu.Unlock()
	if err := websocket.JSON.Send(b.ws, cdpMessage{ID: id, Method: method, Params: params}); err != nil {
		return err
	}
	select {
	case m, ok := <-c:
		switch {
		case !ok:
			return errors.New("the browser's connection closed")
		case m.Error != nil:
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		case result != nil:
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-time.After(10 * time.Second):
		b.mu.Lock()
		delete(b.calls, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: no reply within 10s", method)
	}
}

// navigate loads url and waits for its load event.
func (b *browser) navigate(url string) error {
	for len(b.events) > 0 {
		<-b.events
	}
	var r struct{ ErrorText string }
	if err := b.call("Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("navigate %s: %s", url, r.ErrorText)
	}
	return b.awaitLoad(10 * time.Second)
}

// awaitLoad waits for the page's next load event.
func (b *browser) awaitLoad(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-b.events:
			if m.Method == "Page.loadEventFired" {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("the page did not load within %s", timeout)
		}
	}
}

// document returns the HTML of the document the page shows now.
func (b *browser) document() (string, error) {
	var doc struct{ Root struct{ NodeID int } }
	if err := b.call("DOM.getDocument", map[string]any{"depth": 0}, &doc); err != nil {
		return "", err
	}
	var out struct{ OuterHTML string }
	err := b.call("DOM.getOuterHTML", map[string]any{"nodeId": doc.Root.NodeID}, &out)
	return out.OuterHTML, err
}

// waitPage waits until the page shows what cond wants, and returns that
// view; it fails the test after timeout.
func (b *browser) waitPage(t *testing.T, timeout time.Duration, what string, cond func(*pageView) bool) *pageView {
	t.Helper()
	var last *pageView
	var err error
	read := int64(-1) // the load last read
	ok := daemontest.Until(timeout, func() bool {
		loads := b.loads.Load()
		if loads == read {
			return false // the page has not refreshed since
		}
		var s string
		if s, err = b.document(); err != nil {
			return false // between two loads
		}
		p, whole := parsePage(s)
		if !whole {
			return false
		}
		last, read = p, loads
		return cond(p)
	})
	if !ok {
		if last == nil {
			t.Fatalf("waiting for %s: the browser showed no whole page within %s (%v); chromium said:\n%s", what, timeout, err, b.stderr)
		}
		t.Fatalf("waiting for %s: not shown within %s; the page's graph:%s", what, timeout, last)
	}
	return last
}

// screenshot writes what the page shows as a PNG. It waits for the page's
// next load first: Chromium drops a capture that a meta refresh's navigation
// overtakes, and never answers it.
func (b *browser) screenshot(path string) error {
	for len(b.events) > 0 {
		<-b.events
	}
	if err := b.awaitLoad(5 * time.Second); err != nil {
		return err
	}
	var r struct{ Data string }
	if err := b.call("Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
