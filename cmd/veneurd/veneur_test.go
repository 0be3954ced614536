package main

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

// veneurSentinel is the counter sent after an archive's input: the flush
// that holds it holds the input.
const veneurSentinel = "veneurd_test.sentinel"

// TestPipelinesVeneur runs the input of each pipeline archive that has a
// "veneur" section through Veneur v14.2.0, the release veneurd is compared
// with in docs/veneur-differences.md, and checks that Veneur flushes exactly
// that section, written as "want" is. The archive's "veneur.yaml" section, if
// any, is added to Veneur's configuration (percentiles, aggregates,
// metric_max_length). scripts/test-deps.sh builds Veneur into
// $HOME/.cache/veneurd-test/bin/veneur; without it the test is skipped.
//
// Veneur flushes to its Datadog sink, pointed at a fake Datadog API that
// records what it is sent; counters arrive as rates per second of a 1s
// interval, so their values are the counts. Veneur's flushes are aligned on
// whole seconds: the input is sent just after one, followed by a sentinel
// counter, and the flush holding the sentinel must be the first to hold
// anything.
func TestPipelinesVeneur(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := receivers.VeneurBinary(t)
	for _, ar := range pipelineArchives(t) {
		want, ok := ar.files["veneur"]
		if !ok {
			continue
		}
		t.Run(ar.name, func(t *testing.T) {
			got := runVeneur(t, bin, ar)
			compareLines(t, "Veneur flushed", got, want)
		})
	}
}

// flushOrder ranks the Datadog sink's requests in the order a flush sends
// them: events, service checks, series.
var flushOrder = map[string]int{"/intake": 1, "/api/v1/check_run": 2, "/api/v1/series": 3}

// The bodies of the Datadog sink's requests.
type (
	ddCheck struct {
		Check  string   `json:"check"`
		Status int      `json:"status"`
		Tags   []string `json:"tags"`
	}
	ddEvents struct {
		Events struct {
			API []struct {
				Title string   `json:"msg_title"`
				Text  string   `json:"msg_text"`
				Tags  []string `json:"tags"`
			} `json:"api"`
		} `json:"events"`
	}
)

// runVeneur feeds ar's input to a new Veneur and returns the flush that
// holds it, as lines formatted like the "want" section.
func runVeneur(t *testing.T, bin string, ar pipelineArchive) []string {
	t.Helper()
	dd := receivers.StartDatadogAPI(t)

	udp := daemontest.FreePort(t, "udp")
	tcp := daemontest.FreePort(t, "tcp")
	httpAddr := daemontest.FreePort(t, "tcp")
	stats := daemontest.FreePort(t, "udp") // Veneur's own statsd metrics go nowhere
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "statsd_listen_addresses:\n  - udp://%s\n", udp)
	if _, ok := ar.files["input.tcp"]; ok {
		fmt.Fprintf(&cfg, "  - tcp://%s\n", tcp)
	}
	fmt.Fprintf(&cfg, `http_address: %q
interval: 1s
synchronize_with_interval: true
hostname: h
stats_address: %q
num_workers: 1
num_readers: 1
metric_sinks:
  - kind: datadog
    name: datadog
    config:
      api_key: test
      api_hostname: %q
      flush_max_per_body: 25000
`, httpAddr, stats, dd.URL)
	cfg.WriteString(ar.files["veneur.yaml"])
	receivers.StartVeneur(t, cfg.String(), httpAddr)

	// Send just after one of Veneur's flushes: the one that brings a
	// sentinel sent first. On a loaded machine the input may still straddle
	// two flushes, and is then sent again.
	for attempt := 1; ; attempt++ {
		dd.Reset()
		sendSentinel(t, udp)
		awaitSentinel(t, dd)
		dd.Reset()
		sendInput(t, ar, udp, tcp)
		sendSentinel(t, udp)

		posts, last := awaitSentinel(t, dd)
		if out, whole := veneurFlush(t, posts, last); whole {
			return out
		}
		if attempt == 3 {
			t.Fatalf("the input straddled two of Veneur's flushes %d times in a row", attempt)
		}
		t.Logf("the input straddled two of Veneur's flushes; sending it again")
	}
}

// sendSentinel sends the sentinel counter, which marks the end of an input.
func sendSentinel(t *testing.T, udp string) {
	t.Helper()
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(veneurSentinel + ":1|c")); err != nil {
		t.Fatal(err)
	}
}

// awaitSentinel waits for the series request holding the sentinel and
// returns the requests so far and its index.
func awaitSentinel(t *testing.T, dd *receivers.DatadogAPI) ([]receivers.DatadogPost, int) {
	t.Helper()
	var posts []receivers.DatadogPost
	last := -1
	if !daemontest.Until(10*time.Second, func() bool {
		posts = dd.Posts()
		last = sentinelPost(t, posts)
		return last >= 0
	}) {
		t.Fatalf("Veneur flushed no series holding the sentinel within 10s; it sent %d requests", len(posts))
	}
	return posts, last
}

// sentinelPost returns the index of the series request holding the
// sentinel, or -1.
func sentinelPost(t *testing.T, posts []receivers.DatadogPost) int {
	for i, p := range posts {
		if p.Path != "/api/v1/series" {
			continue
		}
		for _, m := range receivers.DecodeDatadogSeries(t, p.Body) {
			if m.Metric == veneurSentinel {
				return i
			}
		}
	}
	return -1
}

// veneurFlush formats the requests of the flush that ends with series
// request last. A flush sends at most one request of each kind, in the order
// of flushOrder, and the sentinel's flush must be the first to send any:
// whole is false when an earlier flush took part of the input.
func veneurFlush(t *testing.T, posts []receivers.DatadogPost, last int) (out []string, whole bool) {
	t.Helper()
	for i, rank := 0, 0; i <= last; i++ {
		r, ok := flushOrder[posts[i].Path]
		if !ok {
			t.Fatalf("Veneur sent a request to %s", posts[i].Path)
		}
		if r <= rank {
			return nil, false
		}
		rank = r
	}
	for _, p := range posts[:last+1] {
		switch p.Path {
		case "/api/v1/series":
			for _, m := range receivers.DecodeDatadogSeries(t, p.Body) {
				if m.Metric == veneurSentinel {
					continue
				}
				typ := m.Type
				if typ == "rate" { // a counter, per second of the 1s interval
					typ = "counter"
				}
				out = append(out, pipelinePoint(m.Metric, sortedTags(m.Tags), typ, m.Points[0][1]))
			}
		case "/api/v1/check_run":
			var checks []ddCheck
			if err := json.Unmarshal(p.Body, &checks); err != nil {
				t.Fatalf("Veneur sent a bad check_run body: %v\n%s", err, p.Body)
			}
			for _, c := range checks {
				out = append(out, pipelinePoint(c.Check, sortedTags(c.Tags), "status", float64(c.Status)))
			}
		case "/intake":
			var e ddEvents
			if err := json.Unmarshal(p.Body, &e); err != nil {
				t.Fatalf("Veneur sent a bad intake body: %v\n%s", err, p.Body)
			}
			for _, ev := range e.Events.API {
				out = append(out, pipelineEvent(ev.Title, ev.Text, sortedTags(ev.Tags)))
			}
		}
	}
	return out, true
}

// sortedTags sorts tags in place; Veneur sends an event's in map order.
func sortedTags(tags []string) []string {
	sort.Strings(tags)
	return tags
}
