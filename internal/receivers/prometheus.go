package receivers

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// Prom is a running Prometheus (Debian's prometheus 2.42) that takes remote
// write: the receiver for a Prometheus remote-write sink.
//
// How remote write lands (found by experiment; the tests check them):
//   - Names and label names are kept as sent, not checked: "rw.a-b" with
//     label "k.x" is stored so. (PromQL cannot name such a metric bare; select
//     it as {__name__="rw.a-b"}.) Series are their label sets: the order
//     labels are sent in does not matter. A label with an empty value is
//     dropped. Samples are float64 values at millisecond timestamps, kept
//     exactly.
//   - The request is answered 204 when it was stored. A sample Prometheus
//     will not take fails the whole request with 400 and the reason in the
//     body ("out of bounds", "out of order sample", "duplicate sample for
//     timestamp"), and none of the request is stored (it is rolled back):
//     one bad sample loses the whole request.
//     A sample at a timestamp the series already has, with the same value,
//     is accepted and changes nothing; with another value it is a duplicate.
//   - How old a sample may be: the head block takes samples no older than
//     one hour (half its two-hour chunk range) before the newest sample it
//     holds of any series. A fresh Prometheus takes the first request's
//     samples whatever their age, and then measures from them: after a
//     sample at now, one at now-59m is stored and one at now-61m is "out
//     of bounds". Within a series, samples must come in time order: one
//     older than the series' newest is "out of order" (this Prometheus has
//     no out-of-order window configured). Future timestamps are taken, and
//     move the bound with them: after a sample at now+90m, one at now is
//     "out of bounds". A sink that stamps points ahead of the clock can
//     lock out the others.
//   - Prometheus 2.42 has no OpenTelemetry receiver (that came in 2.47).
type Prom struct {
	// URL is the base URL, "http://127.0.0.1:PORT".
	URL string
	// RemoteWrite is the remote-write endpoint, URL+"/api/v1/write".
	RemoteWrite string
	// Dir is the TSDB directory.
	Dir string

	proc *process
}

// Prometheus starts a Prometheus with no scrape jobs, its TSDB in a
// temporary directory, the remote-write receiver on, and returns once it
// answers /-/ready. It is stopped when the test ends. The test is skipped
// when prometheus is not installed.
//
// Flags:
//
//	--config.file=DIR/prometheus.yml   (global: {}, no scrape_configs)
//	--storage.tsdb.path=DIR/data --web.listen-address=127.0.0.1:P
//	--web.enable-remote-write-receiver
//	--storage.tsdb.retention.time=100y  keep whatever was written
func Prometheus(t testing.TB) *Prom {
	t.Helper()
	bin := systemBinary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("# no scrape jobs: the tests write through remote write\nglobal: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := daemontest.FreePort(t, "tcp")
	p := &Prom{URL: "http://" + addr, Dir: filepath.Join(dir, "data")}
	p.RemoteWrite = p.URL + "/api/v1/write"
	p.proc = startProcess(t, "prometheus", dir, nil, func() error {
		return httpOK(p.URL + "/-/ready")
	},
		bin,
		"--config.file="+config,
		"--storage.tsdb.path="+p.Dir,
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--storage.tsdb.retention.time=100y",
	)
	return p
}

// Stop stops Prometheus (SIGTERM; its WAL keeps what it had).
func (p *Prom) Stop() { p.proc.Stop() }

// Start starts a stopped Prometheus again on the same port and TSDB, and
// waits until it is ready (it replays its WAL first).
func (p *Prom) Start() { p.proc.Start() }

// Output returns what Prometheus logged.
func (p *Prom) Output() string { return p.proc.Output() }

// Sample is one sample of a query's result.
type Sample struct {
	Labels map[string]string // with __name__ when the series has one
	Value  float64
	// Timestamp is in milliseconds: the query's evaluation time for an
	// instant vector, the sample's own time for a range vector.
	Timestamp int64
}

// Query runs the PromQL query at time at (/api/v1/query) and returns its
// samples sorted by labels then time. An instant vector gives one sample a
// series, the newest within the lookback (5 minutes) before at, stamped with
// at. A range vector (m[1h]) gives the raw samples in the range, each with
// its own timestamp: the way to check exact timestamps. A scalar gives one
// sample without labels.
func (p *Prom) Query(t testing.TB, promql string, at time.Time) []Sample {
	t.Helper()
	s, err := p.query(promql, at)
	if err != nil {
		t.Fatalf("prometheus query %s: %v", promql, err)
	}
	return s
}

// WaitQuery polls Query (at the time of each poll) until cond holds of its
// result, and returns it; after timeout it fails the test, showing what it
// last saw.
func (p *Prom) WaitQuery(t testing.TB, promql string, timeout time.Duration, cond func([]Sample) bool) []Sample {
	t.Helper()
	return waitFor(t, timeout, "prometheus query "+promql, func() ([]Sample, error) { return p.query(promql, time.Now()) }, cond)
}

func (p *Prom) query(promql string, at time.Time) ([]Sample, error) {
	q := url.Values{"query": {promql}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	body, err := httpGet(p.URL + "/api/v1/query?" + q.Encode())
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("query answer %s: %v", body, err)
	}
	var out []Sample
	switch resp.Data.ResultType {
	case "vector":
		var r []struct {
			Metric map[string]string `json:"metric"`
			Value  promPoint         `json:"value"`
		}
		if err := json.Unmarshal(resp.Data.Result, &r); err != nil {
			return nil, err
		}
		for _, s := range r {
			out = append(out, Sample{Labels: s.Metric, Value: s.Value.v, Timestamp: s.Value.ms})
		}
	case "matrix":
		var r []struct {
			Metric map[string]string `json:"metric"`
			Values []promPoint       `json:"values"`
		}
		if err := json.Unmarshal(resp.Data.Result, &r); err != nil {
			return nil, err
		}
		for _, s := range r {
			for _, v := range s.Values {
				out = append(out, Sample{Labels: s.Metric, Value: v.v, Timestamp: v.ms})
			}
		}
	case "scalar":
		var v promPoint
		if err := json.Unmarshal(resp.Data.Result, &v); err != nil {
			return nil, err
		}
		out = append(out, Sample{Labels: map[string]string{}, Value: v.v, Timestamp: v.ms})
	default:
		return nil, fmt.Errorf("query answer of type %q: %s", resp.Data.ResultType, body)
	}
	slices.SortStableFunc(out, func(a, b Sample) int {
		if c := strings.Compare(formatLabels(a.Labels), formatLabels(b.Labels)); c != 0 {
			return c
		}
		return int(a.Timestamp - b.Timestamp)
	})
	return out, nil
}

// Series returns the label sets of the series matching the selector match
// (/api/v1/series over all time), sorted.
func (p *Prom) Series(t testing.TB, match string) []map[string]string {
	t.Helper()
	q := url.Values{"match[]": {match}}
	body, err := httpGet(p.URL + "/api/v1/series?" + q.Encode())
	if err != nil {
		t.Fatalf("prometheus series %s: %v", match, err)
	}
	var resp struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("prometheus series %s: %s: %v", match, body, err)
	}
	slices.SortFunc(resp.Data, func(a, b map[string]string) int {
		return strings.Compare(formatLabels(a), formatLabels(b))
	})
	return resp.Data
}

// promPoint is a [seconds, "value"] pair of the query API.
type promPoint struct {
	ms int64
	v  float64
}

func (p *promPoint) UnmarshalJSON(b []byte) error {
	var pair [2]any
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	sec, ok := pair[0].(float64)
	str, ok2 := pair[1].(string)
	if !ok || !ok2 {
		return fmt.Errorf("point %s", b)
	}
	p.ms = int64(math.Round(sec * 1000))
	v, err := strconv.ParseFloat(str, 64)
	p.v = v
	return err
}
