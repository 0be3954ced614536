package openmetrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// running is a source under Run, with what it wrote and logged.
type running struct {
	t      *testing.T
	c      *sdktest.Collector
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// syncBuffer is a bytes.Buffer that the source's goroutines may log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, cfg *Config) *running {
	t.Helper()
	log := &syncBuffer{}
	s := New()
	env := sdk.Env{Address: "source.openmetrics.test", Logger: hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Info})}
	if err := s.Configure(context.Background(), env, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, c: &sdktest.Collector{}, log: log, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, nil, r.c) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels Run and checks that it returns at once and kept the Writer
// contract.
func (r *running) stop() { r.once.Do(r.stopOnce) }

func (r *running) stopOnce() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		r.t.Fatal("Run did not return within 5s of its context's end")
	}
	r.c.Close()
	for _, p := range r.c.Problems() {
		r.t.Errorf("Writer contract: %s", p)
	}
}

// until waits for cond, failing the test after 15s.
func (r *running) until(what string, cond func() bool) {
	r.t.Helper()
	if !daemontest.Until(15*time.Second, cond) {
		r.t.Fatalf("%s: not within 15s; collected %s\nlog:\n%s", what, r.c, r.log)
	}
}

// count sums the values of the samples named name whose tags are tags.
func count(c *sdktest.Collector, name, tags string) (sum float64, n int) {
	for _, m := range c.Metrics() {
		if m.Name == name && m.Tags == tags {
			sum += m.Value
			n++
		}
	}
	return sum, n
}

func testConfig(targets ...string) *Config {
	c := defaultConfig()
	c.Targets = targets
	c.ScrapeInterval = "100ms"
	return c
}

func selfTags(target string) string { return "target:" + target + ",veneurd:self" }
func errTags(reason, target string) string {
	return "reason:" + reason + ",target:" + target + ",veneurd:self"
}

// TestScrapeErrorsByReason runs one good target beside one of each kind of
// failure: each failure is counted under its reason and target, in
// veneur.packet.error_total too, logged once, and costs the good target
// nothing.
func TestScrapeErrorsByReason(t *testing.T) {
	var goodN atomic.Int64
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := goodN.Add(1)
		fmt.Fprintf(w, "# TYPE c_total counter\nc_total %d\n# TYPE g gauge\ng %d\n", 2*n, n)
	}))
	defer good.Close()
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer status.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("this is { not metrics\x00\xff"))
	}))
	defer garbage.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers within the timeout
	}))
	defer slow.Close()
	big := strings.Repeat("# a comment line to make the body larger than the limit\n", (DefaultMaxBodyBytes/56)+2)
	// A body longer than max_body_bytes, announced (Content-Length), sent
	// chunked (no length), and gzipped small but larger unpacked.
	announced := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write([]byte(big))
	}))
	defer announced.Close()
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(big); i += 1 << 20 {
			w.Write([]byte(big[i:min(i+1<<20, len(big))]))
			w.(http.Flusher).Flush()
		}
	}))
	defer chunked.Close()
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte("# TYPE x gauge\n"))
	zw.Write(bytes.Repeat([]byte("\n"), 11<<20))
	zw.Close()
	bomb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Errorf("Accept-Encoding %q: the transport's gzip was expected", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zipped.Bytes())
	}))
	defer bomb.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/metrics"
	l.Close()

	cases := map[string]string{ // target -> reason
		status.URL:    ReasonStatus,
		garbage.URL:   ReasonParse,
		slow.URL:      ReasonTimeout,
		announced.URL: ReasonTooLarge,
		chunked.URL:   ReasonTooLarge,
		bomb.URL:      ReasonTooLarge,
		refused:       ReasonConnect,
	}
	targets := []string{good.URL}
	for u := range cases {
		targets = append(targets, u)
	}
	cfg := testConfig(targets...)
	// Three 10 MB bodies a scrape keep a small machine busy: the timeout
	// leaves them room.
	cfg.ScrapeInterval, cfg.Timeout = "1s", "1s"
	r := start(t, cfg)
	r.until("three failures of each bad target and five good scrapes", func() bool {
		for u, reason := range cases {
			if _, n := count(r.c, ScrapeErrors, errTags(reason, u)); n < 3 {
				return false
			}
		}
		return goodN.Load() >= 5
	})
	r.stop()

	// The good target: every scrape but the first counted exactly its
	// increase of 2, and each was up.
	ups, nUp := count(r.c, Up, selfTags(good.URL))
	inc, nInc := count(r.c, "c_total", "")
	if nUp < 4 || ups != float64(nUp) || inc != 2*float64(nUp-1) || nInc != nUp-1 {
		t.Errorf("good target: %d up gauges summing to %g, %d counters summing to %g; want every up 1 and %d counters of 2",
			nUp, ups, nInc, inc, nUp-1)
	}
	if _, n := count(r.c, ScrapeErrors, errTags(ReasonTimeout, good.URL)); n != 0 {
		t.Errorf("the good target had %d timeouts", n)
	}

	byReason := map[string]float64{}
	for u, reason := range cases {
		errs, _ := count(r.c, ScrapeErrors, errTags(reason, u))
		downs, nDown := count(r.c, Up, selfTags(u))
		if downs != 0 || float64(nDown) != errs {
			t.Errorf("%s: %g errors (%s) but %d up gauges summing to %g; want one 0 per error", u, errs, reason, nDown, downs)
		}
		for _, m := range r.c.Metrics() {
			if m.Name == ScrapeErrors && strings.Contains(m.Tags, "target:"+u+",") && m.Tags != errTags(reason, u) {
				t.Errorf("%s: counted as %s, want only %s", u, m.Tags, reason)
			}
		}
		byReason[reason] += errs
		// Logged once, however many scrapes failed.
		if n := strings.Count(r.log.String(), "target is down"); n == 0 || strings.Count(r.log.String(), "target="+u+" ") != 1 {
			t.Errorf("%s: logged %d times, want once:\n%s", u, strings.Count(r.log.String(), "target="+u+" "), r.log)
		}
	}
	// veneur.packet.error_total{packet_type:scrape} counts the same.
	gotErrs := map[string]float64{}
	for _, e := range r.c.Errors() {
		if e.PacketType != PacketType {
			t.Errorf("error %+v, want packet type %s", e, PacketType)
		}
		gotErrs[e.Reason]++
	}
	for reason, n := range byReason {
		if gotErrs[reason] != n {
			t.Errorf("packet errors of reason %s: %g, want %g", reason, gotErrs[reason], n)
		}
	}
}

// TestSlowTargetDelaysNoOther: while one target never answers, the other
// is scraped on time: its scrapes happen while the slow one's are in
// flight, which a source scraping its targets in turn could not do.
func TestSlowTargetDelaysNoOther(t *testing.T) {
	var inFlight atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		<-r.Context().Done()
	}))
	defer slow.Close()
	var during atomic.Int64
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight.Load() > 0 {
			during.Add(1)
		}
		fmt.Fprintln(w, "g 1")
	}))
	defer good.Close()
	cfg := testConfig(slow.URL, good.URL)
	cfg.ScrapeInterval = "200ms" // the timeout too: the slow target is always in flight
	r := start(t, cfg)
	r.until("five scrapes of the good target while the slow one hangs", func() bool { return during.Load() >= 5 })
}

// TestDownThenUpLoggedOnce: a target that fails three scrapes and then
// answers is logged down once and up once; its counter's increase spans
// the failed scrapes, none lost.
func TestDownThenUpLoggedOnce(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i >= 2 && i <= 4 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "# TYPE c_total counter\nc_total %d\n", 10*i)
	}))
	defer srv.Close()
	r := start(t, testConfig(srv.URL))
	r.until("seven scrapes", func() bool { return n.Load() >= 7 })
	r.stop()
	if d, u := strings.Count(r.log.String(), "target is down"), strings.Count(r.log.String(), "target is up again"); d != 1 || u != 1 {
		t.Errorf("logged down %d times and up %d times, want once each:\n%s", d, u, r.log)
	}
	// Scrape 1 remembered 10; scrapes 2-4 failed; scrape 5 counts 50-10.
	sum, _ := count(r.c, "c_total", "")
	last := float64(n.Load())
	if _, errs := count(r.c, ScrapeErrors, errTags(ReasonStatus, srv.URL)); errs != 3 {
		t.Errorf("%d errors, want 3", errs)
	}
	// The last request may have been cut by the stop; the counters then
	// end one scrape earlier.
	if sum != 10*(last-1) && sum != 10*(last-2) {
		t.Errorf("counted %g over %g scrapes, want %g", sum, last, 10*(last-1))
	}
}

// TestBearerTokenAndTLS scrapes an https target that wants a token, with
// the CA from a file, and checks what the source sends; the token never
// shows in the log.
func TestBearerTokenAndTLS(t *testing.T) {
	const token = "s3cret-token"
	var seen atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "g 42")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv.URL + "/metrics")
	cfg.BearerToken = token
	cfg.ScrapeInterval, cfg.Timeout = "2s", "1500ms"
	cfg.TLS = &delivery.TLS{CAFile: ca}
	r := start(t, cfg)
	r.until("the gauge", func() bool { _, n := count(r.c, "g", ""); return n > 0 })
	r.stop()
	h := seen.Load().(http.Header)
	for k, want := range map[string]string{"Accept": accept, "X-Prometheus-Scrape-Timeout-Seconds": "1.5",
		"User-Agent": "veneurd-source-openmetrics/" + Version} {
		if h.Get(k) != want {
			t.Errorf("%s: %q, want %q", k, h.Get(k), want)
		}
	}

	// Without the CA, the handshake fails: a connect error, logged without
	// the token.
	cfg = testConfig(srv.URL + "/metrics")
	cfg.BearerToken = token
	cfg.ScrapeInterval = "2s" // the handshake, under the race detector, within the timeout
	r = start(t, cfg)
	r.until("a failed scrape", func() bool {
		_, n := count(r.c, ScrapeErrors, errTags(ReasonConnect, srv.URL+"/metrics"))
		return n > 0
	})
	r.stop()
	if strings.Contains(r.log.String(), token) || !strings.Contains(r.log.String(), "certificate") {
		t.Errorf("log shows the token or not the cause:\n%s", r.log)
	}
	// A wrong token: 401, counted as such.
	cfg = testConfig(srv.URL + "/metrics")
	cfg.BearerToken = "wrong-" + token
	cfg.ScrapeInterval = "2s"
	cfg.TLS = &delivery.TLS{InsecureSkipVerify: true}
	r = start(t, cfg)
	r.until("a refused scrape", func() bool { _, n := count(r.c, ScrapeErrors, errTags(ReasonStatus, srv.URL+"/metrics")); return n > 0 })
	r.stop()
	if strings.Contains(r.log.String(), token) || !strings.Contains(r.log.String(), "401") {
		t.Errorf("log shows the token or not the status:\n%s", r.log)
	}
}

// TestGarbageBetweenGoodScrapes: a garbage body between good ones is
// counted, and the good scrapes' data is all there: the counter's increase
// across the garbage is counted once the target is good again.
func TestGarbageBetweenGoodScrapes(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i%2 == 0 {
			fmt.Fprintf(w, "# TYPE c_total counter\nc_total %d\n{{{garbage\n", 5*i)
			return
		}
		fmt.Fprintf(w, "# TYPE c_total counter\nc_total %d\n# TYPE g gauge\ng %d\n", 5*i, i)
	}))
	defer srv.Close()
	r := start(t, testConfig(srv.URL))
	r.until("nine scrapes", func() bool { _, n := count(r.c, "g", ""); return n >= 5 })
	r.stop()
	gs := []float64{}
	for _, m := range r.c.Metrics() {
		if m.Name == "g" {
			gs = append(gs, m.Value)
		}
	}
	for i, g := range gs {
		if g != float64(2*i+1) {
			t.Fatalf("gauges %v, want 1, 3, 5, ...", gs)
		}
	}
	last := gs[len(gs)-1]
	sum, nc := count(r.c, "c_total", "")
	errs, _ := count(r.c, ScrapeErrors, errTags(ReasonParse, srv.URL))
	if sum != 5*(last-1) || nc != len(gs)-1 || errs < float64(len(gs)-1) {
		t.Errorf("%d counters summing to %g, %g parse errors, after good scrapes up to %g; want %d counters summing to %g",
			nc, sum, errs, last, len(gs)-1, 5*(last-1))
	}
}
