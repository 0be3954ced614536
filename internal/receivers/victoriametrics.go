package receivers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// VM is a running single-node VictoriaMetrics v1.151.0 (built by
// scripts/test-deps.sh from its Go module). One VictoriaMetrics takes the
// Datadog, InfluxDB, Graphite, Prometheus remote write and OpenTelemetry
// protocols, so the sinks for all of them can be tested against it; Export
// reads back what it stored, as series of (name, labels, samples).
//
// Endpoints, all on HTTP unless said:
//
//   - Datadog v1 series: POST HTTP+"/datadog/api/v1/series" (JSON), 202
//     {"status":"ok"}. It takes Content-Encoding gzip, deflate (zlib) and
//     zstd, and ignores the API key (DD-API-KEY header or api_key
//     parameter). Also answered: /datadog/api/v1/validate (200
//     {"valid":true}), POST /datadog/api/v1/check_run (202) and
//     /datadog/intake (200).
//   - Datadog v2 series: POST HTTP+"/datadog/api/v2/series" (JSON), 202.
//     Sketches: /datadog/api/beta/sketches (protobuf). There is no
//     /datadog/api/v1/distribution_points (400).
//   - InfluxDB line protocol: POST HTTP+"/write?db=NAME" (also
//     /influx/write and /api/v2/write), 204. precision= is honoured.
//   - Graphite plaintext: TCP or UDP at Graphite ("name;k=v value ts\n").
//   - Prometheus remote write: POST HTTP+"/api/v1/write" (snappy protobuf).
//   - OpenTelemetry: POST HTTP+"/opentelemetry/v1/metrics" (protobuf).
//
// How what is written lands, as seen in Export (found by experiment with
// these flags; the tests check the main ones):
//
// Datadog v1 (/datadog/api/v1/series):
//   - The name is sanitized the way Datadog does (-datadog.sanitizeMetricName,
//     on by default): every run of characters other than [0-9A-Za-z_.]
//     becomes one "_", runs of "_" become one, and a "_" next to a "." is
//     dropped. Dots and case are kept: "a.b-c_D" lands as "a.b_c_D",
//     "x!y" as "x_y", "a/b", "a b", "a:b" and "a__b" all as "a_b", "p._x"
//     as "p.x", "p.é" as "p.", "a..b" stays "a..b".
//   - "host" becomes label host, "device" label device (each only when not
//     empty).
//   - Each tag "k:v" becomes label k="v", split at the first colon
//     ("k2:v:x" is k2="v:x"); tag keys and values are not sanitized ("a.b/c-d"
//     stays a label name). A tag without a colon ("bare") becomes
//     bare="no_label_value". A tag "k:" (empty value) is dropped, as VM drops
//     every empty label. A tag "host:x" becomes label exported_host="x".
//     A tag with an empty key (":x") becomes the metric name: the series is
//     stored as "x". A repeated key keeps its last value ("env:prod",
//     "env:dev" is env="dev").
//   - "type", "interval", "source_type_name" are dropped: the value is
//     stored as sent, a count or rate is not converted and gets no label.
//   - Timestamps are float seconds, stored in milliseconds: 1700000000.75 is
//     1700000000750. A timestamp <= 0 is replaced by the time of arrival,
//     in whole seconds of a clock VM reads once a second.
//   - Points of one series with equal timestamps are all kept (no dedup).
//
// Datadog v2 (/datadog/api/v2/series):
//   - Name and tags as in v1 (same sanitizer and tag split; tag "host:x" is
//     exported_host).
//   - Each resource {"name":N,"type":T} becomes label T=N: a host resource
//     is label host; "source_type_name" becomes a label of that name. "type"
//     (the integer metric type), "interval" and "unit" are dropped.
//   - "timestamp" is integer seconds, stored in milliseconds.
//
// InfluxDB line protocol (/write?db=x):
//   - Each field becomes a series named MEASUREMENT_FIELD: "m.a,k=v value=1"
//     lands as "m.a_value"; "m2 a=1,b=2i" as "m2_a" and "m2_b". Dots are kept,
//     nothing is sanitized.
//   - Tags become labels, unescaped ("a\ b=c\,d" is label "a b"="c,d").
//   - The db parameter becomes label db="x" (only when given; the bucket of
//     /api/v2/write is not a label).
//   - Integer fields (2i) are stored as numbers, true as 1, strings as 0.
//   - Timestamps are nanoseconds by default (precision= is honoured) and
//     kept to the millisecond; a line without one gets the time of arrival.
//
// Graphite plaintext (TCP or UDP at Graphite):
//   - The name is kept as sent ("c-d_e:f" stays), not sanitized.
//   - "name;k=v;k2=v2" becomes name with labels k, k2; a repeated key keeps
//     its last value; a tag value may contain spaces (the value and
//     timestamp are taken from the end of the line).
//   - Timestamps are seconds, truncated to the second
//     (-graphiteTrimTimestamp=1s): "1700000000.6" is 1700000000000. A line
//     with no timestamp or -1 gets the server's clock, which VM reads once a
//     second, so it can be up to a second behind.
//   - A value "nan" is dropped; "inf" and "-inf" are stored (and exported as
//     the strings "Infinity" and "-Infinity", which Export turns back into
//     ±Inf).
//
// Prometheus remote write (/api/v1/write) lands as sent: the name
// (__name__) and label names are not sanitized ("rw.a-b" with label "k.x"
// stays; -usePromCompatibleNaming is off), millisecond timestamps are kept.
//
// OpenTelemetry (/opentelemetry/v1/metrics, protobuf) lands as sent too:
// the metric name is kept ("otel.gauge-x"; the unit is not appended and no
// _total is added, -opentelemetry.usePrometheusNaming is off), data point
// attributes become labels, and so do all resource attributes
// ("service.name", "host.name": -opentelemetry.promoteAllResourceAttributes)
// and the scope's name and version as labels "scope.name" and
// "scope.version" ("unknown" when empty: -opentelemetry.promoteScopeMetadata).
// Timestamps are nanoseconds, kept to the millisecond. A gauge and a
// cumulative sum land alike, as their values.
//
// Common to all:
//   - Timestamps of any age are taken (-retentionPeriod=100y, so even 1970
//     is kept). Timestamps more than two days ahead of VM's clock are
//     dropped (logged as "too big timestamp"; the request is still
//     answered 202/204); up to two days ahead is stored, and Export reads
//     that far ahead.
//   - What an HTTP write was answered for is searchable once Export has
//     asked VM to flush (/internal/force_flush). A Graphite line is not:
//     closing the connection does not mean VM has read it. A sink's writes
//     are asynchronous anyway, so tests wait with WaitExport.
//   - A series is its name and label set: the order tags are sent in does
//     not matter. Samples at the same timestamp are all kept.
type VM struct {
	// HTTP is the base URL of the HTTP API, "http://127.0.0.1:PORT".
	HTTP string
	// Graphite is the Graphite plaintext address, "127.0.0.1:PORT", on TCP
	// and UDP.
	Graphite string
	// Dir is the storage directory.
	Dir string

	proc *process
}

// VictoriaMetrics starts a VictoriaMetrics with its storage in a temporary
// directory, and returns once it answers /health. It is stopped when the
// test ends. The test is skipped when scripts/test-deps.sh has not built it.
//
// Flags, and why:
//
//	-storageDataPath=DIR -httpListenAddr=127.0.0.1:P -graphiteListenAddr=127.0.0.1:G
//	-retentionPeriod=100y            samples of any age (tests may send old timestamps)
//	-search.latencyOffset=0s         queries see the newest samples (the default hides the last 30s)
//	-search.disableCache             no response cache that misses fresh samples
//	-http.maxGracefulShutdownDuration=1s  Stop does not wait 7s for idle keep-alive clients
//
// Deduplication is off by default (no -dedup.minScrapeInterval): every
// sample written is kept.
func VictoriaMetrics(t testing.TB) *VM {
	t.Helper()
	bin := cachedBinary(t, "victoria-metrics", "VictoriaMetrics v1.151.0")
	dir := t.TempDir()
	v := &VM{
		HTTP:     "http://" + daemontest.FreePort(t, "tcp"),
		Graphite: freeTCPUDP(t),
		Dir:      filepath.Join(dir, "data"),
	}
	v.proc = startProcess(t, "victoria-metrics", dir, nil, func() error {
		return httpOK(v.HTTP + "/health")
	},
		bin,
		"-storageDataPath="+v.Dir,
		"-httpListenAddr="+strings.TrimPrefix(v.HTTP, "http://"),
		"-graphiteListenAddr="+v.Graphite,
		"-retentionPeriod=100y",
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-http.maxGracefulShutdownDuration=1s",
	)
	return v
}

// Stop stops VictoriaMetrics (SIGTERM, which flushes its data to disk).
func (v *VM) Stop() { v.proc.Stop() }

// Start starts a stopped VictoriaMetrics again, on the same ports and
// storage, and waits until it answers.
func (v *VM) Start() { v.proc.Start() }

// Output returns what VictoriaMetrics logged.
func (v *VM) Output() string { return v.proc.Output() }

// Series is one series read back from a receiver.
type Series struct {
	Name       string
	Labels     map[string]string // without __name__
	Values     []float64
	Timestamps []int64 // milliseconds since the epoch
}

// String formats s as name{k="v",...} [ts:value ...].
func (s Series) String() string {
	var b strings.Builder
	b.WriteString(s.Name)
	b.WriteString(formatLabels(s.Labels))
	b.WriteString(" [")
	for i := range s.Values {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%v", s.Timestamps[i], s.Values[i])
	}
	b.WriteString("]")
	return b.String()
}

// formatLabels formats labels as {k="v",...}, sorted by key.
func formatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteString("}")
	return b.String()
}

// Export returns the series matching the series selector match (a metric
// name, or {__name__=~"a.*",k="v"}), with all their samples from the epoch
// to two days ahead, sorted by name and labels. It asks VictoriaMetrics to
// flush first (/internal/force_flush) so that recent writes are searchable,
// yet a write may still take a moment to show: to wait for one, use
// WaitExport.
func (v *VM) Export(t testing.TB, match string) []Series {
	t.Helper()
	s, err := v.export(match)
	if err != nil {
		t.Fatalf("victoria-metrics export %s: %v", match, err)
	}
	return s
}

// WaitExport polls Export until cond holds of its result, and returns it;
// after timeout it fails the test, showing what it last saw.
func (v *VM) WaitExport(t testing.TB, match string, timeout time.Duration, cond func([]Series) bool) []Series {
	t.Helper()
	return waitFor(t, timeout, "victoria-metrics export "+match, func() ([]Series, error) { return v.export(match) }, cond)
}

func (v *VM) export(match string) ([]Series, error) {
	if err := httpOK(v.HTTP + "/internal/force_flush"); err != nil {
		return nil, err
	}
	q := url.Values{
		"match[]": {match},
		"start":   {"0"},
		"end":     {strconv.FormatInt(time.Now().Add(48*time.Hour).Unix(), 10)},
	}
	body, err := httpGet(v.HTTP + "/api/v1/export?" + q.Encode())
	if err != nil {
		return nil, err
	}
	var out []Series
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []any             `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("export line %q: %v", sc.Bytes(), err)
		}
		s := Series{Name: line.Metric["__name__"], Labels: line.Metric, Timestamps: line.Timestamps}
		delete(s.Labels, "__name__")
		for _, x := range line.Values {
			f, err := exportValue(x)
			if err != nil {
				return nil, err
			}
			s.Values = append(s.Values, f)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Series) int {
		return strings.Compare(a.Name+formatLabels(a.Labels), b.Name+formatLabels(b.Labels))
	})
	return out, nil
}

// exportValue converts a value of /api/v1/export: a number, or the strings
// "Infinity", "-Infinity" and "NaN" VictoriaMetrics writes for what JSON
// has no number for.
func exportValue(x any) (float64, error) {
	switch x := x.(type) {
	case float64:
		return x, nil
	case string:
		switch x {
		case "Infinity", "+Inf":
			return math.Inf(1), nil
		case "-Infinity", "-Inf":
			return math.Inf(-1), nil
		case "NaN":
			return math.NaN(), nil
		}
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("export value %v (%T)", x, x)
}

// client is the HTTP client of the helpers: no request of theirs should
// hang a test.
var client = &http.Client{Timeout: 10 * time.Second}

// httpGet GETs url and returns the body of a 2xx answer; any other status
// is an error quoting the body.
func httpGet(url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	return readResponse(resp)
}

func readResponse(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL, resp.Status, bytes.TrimSpace(b.Bytes()))
	}
	return b.Bytes(), err
}

// httpOK GETs url and reports a status other than 2xx as an error.
func httpOK(url string) error {
	_, err := httpGet(url)
	return err
}

// RowsInserted returns how many samples VictoriaMetrics has taken in, by
// every protocol, from its own vm_rows_inserted_total: a cheap count where
// a query over many series would be slow.
func (v *VM) RowsInserted(t testing.TB) int {
	t.Helper()
	b, err := httpGet(v.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "vm_rows_inserted_total{") {
			continue
		}
		f, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", l, err)
		}
		n += int(f)
	}
	return n
}
