package openmetrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

// gate stands between veneurd and a real target: it forwards scrapes while
// open and keeps each body it handed over, so that the test knows exactly
// what veneurd scraped; closed, it answers 503, which changes nothing
// veneurd remembers, so the test can take its own scrape of the target
// knowing that veneurd took no more.
type gate struct {
	upstream string
	srv      *httptest.Server
	mu       sync.RWMutex // held for reading by each forwarded scrape
	open     bool
	bmu      sync.Mutex
	bodies   [][]byte
}

func newGate(t *testing.T, upstream string) *gate {
	g := &gate{upstream: upstream, open: true}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if !g.open {
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, g.upstream, nil)
		req.Header.Set("Accept", r.Header.Get("Accept"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("%s %v", resp.Status, err), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		if _, err := w.Write(body); err == nil {
			g.bmu.Lock()
			g.bodies = append(g.bodies, body)
			g.bmu.Unlock()
		}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// close stops forwarding, once the scrapes in flight are through.
func (g *gate) close() {
	g.mu.Lock()
	g.open = false
	g.mu.Unlock()
}

func (g *gate) scraped() [][]byte {
	g.bmu.Lock()
	defer g.bmu.Unlock()
	return slices.Clone(g.bodies)
}

// instance is the gate's host:port, the instance tag of what veneurd
// scraped through it.
func (g *gate) instance() string { return strings.TrimPrefix(g.srv.URL, "http://") }

// scrape fetches url's text and parses it.
func scrapeNow(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return parseText(t, resp.Body)
}

func parseText(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// sample finds the value of a counter, gauge or untyped series of fams
// with exactly labels (name=value pairs).
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	for _, m := range f.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		slices.Sort(got)
		if slices.Equal(got, labels) {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			default:
				return m.GetUntyped().GetValue()
			}
		}
	}
	t.Fatalf("no %s%v in the scrape", name, labels)
	return 0
}

// oracle replays the bodies veneurd scraped by the README's mapping, on
// its own: the sum of each cumulative series' increases (the first body
// only remembered, a later newcomer counted whole, a decrease a reset) and
// each gauge's last value, by "name tags".
type oracle struct {
	counters map[string]float64
	prev     map[string]float64
	gauges   map[string]float64
}

func replay(t *testing.T, instance string, bodies [][]byte) *oracle {
	o := &oracle{counters: map[string]float64{}, prev: map[string]float64{}, gauges: map[string]float64{}}
	for i, body := range bodies {
		for name, f := range parseText(t, bytes.NewReader(body)) {
			for _, m := range f.GetMetric() {
				tags := []string{"instance:" + instance}
				for _, l := range m.GetLabel() {
					if l.GetValue() != "" {
						tags = append(tags, l.GetName()+":"+strings.ReplaceAll(l.GetValue(), ",", "_"))
					}
				}
				key := func(suffix string, extra ...string) string {
					ts := append(slices.Clone(tags), extra...)
					slices.Sort(ts)
					return name + suffix + " " + strings.Join(ts, ",")
				}
				switch f.GetType() {
				case dto.MetricType_COUNTER:
					o.counter(i, key(""), m.GetCounter().GetValue())
				case dto.MetricType_GAUGE:
					o.gauge(key(""), m.GetGauge().GetValue())
				case dto.MetricType_UNTYPED:
					o.gauge(key(""), m.GetUntyped().GetValue())
				case dto.MetricType_SUMMARY:
					for _, q := range m.GetSummary().GetQuantile() {
						o.gauge(key("."+strconv.FormatFloat(q.GetQuantile()*100, 'f', -1, 64)+"percentile"), q.GetValue())
					}
					o.gauge(key(".sum"), m.GetSummary().GetSampleSum())
					o.counter(i, key(".count"), float64(m.GetSummary().GetSampleCount()))
				case dto.MetricType_HISTOGRAM:
					h := m.GetHistogram()
					o.gauge(key(".sum"), h.GetSampleSum())
					o.counter(i, key(".count"), float64(h.GetSampleCount()))
					for _, b := range h.GetBucket() {
						o.counter(i, key(".bucket", "le:"+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)), float64(b.GetCumulativeCount()))
					}
				default:
					t.Fatalf("%s: type %s", name, f.GetType())
				}
			}
		}
	}
	return o
}

func (o *oracle) counter(i int, key string, v float64) {
	prev, seen := o.prev[key]
	o.prev[key] = v
	switch {
	case i == 0:
		o.counters[key] += 0
	case !seen:
		o.counters[key] += v
	case v < prev:
		o.counters[key] += v
	default:
		o.counters[key] += v - prev
	}
}

func (o *oracle) gauge(key string, v float64) {
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		o.gauges[key] = v
	}
}

// check compares what veneurd wrote of one target (its lines tagged with
// the instance) with the oracle: every counter's sum over the flushes,
// every gauge's last value, and nothing else.
func (o *oracle) check(t *testing.T, what, instance string, lines []daemontest.Line) {
	t.Helper()
	sums, last, types := map[string]float64{}, map[string]float64{}, map[string]string{}
	for _, l := range lines {
		if !slices.Contains(l.Tags, "instance:"+instance) {
			continue
		}
		k := l.Name + " " + strings.Join(l.Tags, ",")
		types[k] = l.Type
		sums[k] += l.Value
		last[k] = l.Value
	}
	for k, typ := range types {
		_, isCounter := o.counters[k]
		_, isGauge := o.gauges[k]
		if typ == "counter" && !isCounter || typ == "gauge" && !isGauge {
			t.Errorf("%s: veneurd wrote %s %s, which the scrapes do not explain", what, typ, k)
		}
	}
	for k, want := range o.counters {
		if got := sums[k]; math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: counter %s sums to %v over the flushes, want %v", what, k, got, want)
		}
	}
	for k, want := range o.gauges {
		if got, ok := last[k]; !ok || got != want {
			t.Errorf("%s: gauge %s last %v (present %v), want %v", what, k, got, ok, want)
		}
	}
}

// nodeExporter starts Debian's prometheus-node-exporter on a free port with
// a few collectors, and returns its /metrics URL.
func nodeExporter(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Skip("prometheus-node-exporter is not installed (scripts/test-deps.sh installs Debian's as root)")
	}
	addr := daemontest.FreePort(t, "tcp")
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults",
		"--collector.cpu", "--collector.meminfo", "--collector.stat", "--collector.loadavg", "--collector.netdev", "--collector.vmstat")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr + "/metrics"
	if !daemontest.Until(15*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("node exporter did not answer on %s:\n%s", url, out.String())
	}
	return url
}

// TestDaemonRealTargets: veneurd scrapes Debian's prometheus-node-exporter
// and Prometheus's own /metrics, through gates that keep what each scrape
// returned. Every series veneurd wrote is checked against those bodies
// (counter sums, last gauges, histogram buckets, summary quantiles), and
// against the test's own scrapes of the targets, before veneurd's first
// and after its last: Prometheus's /metrics request counters moved by
// exactly the scrapes, the node's memory size is the one the test reads,
// and the CPU seconds counted are within what passed.
func TestDaemonRealTargets(t *testing.T) {
	neURL := nodeExporter(t)
	prom := receivers.Prometheus(t)
	promURL := prom.URL + "/metrics"
	ne, pr := newGate(t, neURL), newGate(t, promURL)

	// Prometheus makes its /metrics series at the first request.
	scrapeNow(t, promURL)
	began := time.Now()
	ne0, pr0 := scrapeNow(t, neURL), scrapeNow(t, promURL)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname = "om"
  interval = "1s"
}
source "openmetrics" "real" {
  targets         = [%q, %q]
  scrape_interval = "700ms"
  instance_tag    = "instance"
}
sink "localfile" "out" {
  path = %q
}
`, ne.srv.URL+"/metrics", pr.srv.URL+"/metrics", out))
	if !daemontest.Until(30*time.Second, func() bool { return len(ne.scraped()) >= 5 && len(pr.scraped()) >= 5 }) {
		t.Fatalf("veneurd scraped the node exporter %d times and Prometheus %d times in 30s", len(ne.scraped()), len(pr.scraped()))
	}
	ne.close()
	pr.close()
	// Two flushes cut after the gates closed hold all veneurd scraped.
	lines := d.WaitFlushed(out, 2, 20*time.Second)
	ne1, pr1 := scrapeNow(t, neURL), scrapeNow(t, promURL)
	wall := time.Since(began).Seconds()

	// Before the gates closed, every scrape succeeded (after, they answer
	// 503): a scrape veneurd gave up on after the gate handed its body
	// over would make the bodies say more than veneurd took.
	for _, l := range lines {
		if l.Name == ScrapeErrors && !slices.Contains(l.Tags, "reason:"+ReasonStatus) {
			t.Fatalf("veneurd failed a scrape: %v; the comparison with the bodies would not hold", l.Tags)
		}
	}
	neBodies, prBodies := ne.scraped(), pr.scraped()
	neOracle, prOracle := replay(t, ne.instance(), neBodies), replay(t, pr.instance(), prBodies)
	neOracle.check(t, "node exporter", ne.instance(), lines)
	prOracle.check(t, "prometheus", pr.instance(), lines)

	sum := func(name string, tags ...string) float64 {
		var s float64
		for _, l := range lines {
			if l.Name == name && slices.Equal(l.Tags, tags) {
				s += l.Value
			}
		}
		return s
	}
	lastOf := func(name string, tags ...string) (float64, bool) {
		v, ok := 0.0, false
		for _, l := range lines {
			if l.Name == name && slices.Equal(l.Tags, tags) {
				v, ok = l.Value, true
			}
		}
		return v, ok
	}

	// Prometheus counts each /metrics request once it answered it: the
	// test's first scrape and veneurd's N are in the test's second.
	n := float64(len(prBodies))
	pin := "instance:" + pr.instance()
	for _, c := range []struct {
		name   string
		labels []string
		tags   []string
	}{
		{"prometheus_http_requests_total", []string{"code=200", "handler=/metrics"}, []string{"code:200", "handler:/metrics", pin}},
		{"promhttp_metric_handler_requests_total", []string{"code=200"}, []string{"code:200", pin}},
	} {
		before, after := sample(t, pr0, c.name, c.labels...), sample(t, pr1, c.name, c.labels...)
		if after-before != n+1 {
			t.Errorf("%s%v went from %g to %g, want %g more: veneurd's %g scrapes and the test's first", c.name, c.labels, before, after, n+1, n)
		}
		if got := sum(c.name, c.tags...); got != n-1 {
			t.Errorf("%s%v: veneurd counted %g, want %g (its %g scrapes less the first, which only remembers)", c.name, c.tags, got, n-1, n)
		}
	}
	// The request duration histogram's +Inf bucket and count take every
	// request too.
	for _, name := range []string{"prometheus_http_request_duration_seconds.count", "prometheus_http_request_duration_seconds.bucket"} {
		tags := []string{"handler:/metrics", pin}
		if strings.HasSuffix(name, ".bucket") {
			tags = []string{"handler:/metrics", pin, "le:+Inf"}
		}
		if got := sum(name, tags...); got != n-1 {
			t.Errorf("%s%v: %g, want %g", name, tags, got, n-1)
		}
	}

	nin := "instance:" + ne.instance()
	memTotal := sample(t, ne1, "node_memory_MemTotal_bytes")
	if got, ok := lastOf("node_memory_MemTotal_bytes", nin); !ok || got != memTotal {
		t.Errorf("node_memory_MemTotal_bytes: veneurd %g (present %v), the test's scrape %g", got, ok, memTotal)
	}
	var cpuTotal float64
	cpus := map[string]bool{}
	for _, m := range ne1["node_cpu_seconds_total"].GetMetric() {
		var labels, tags []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
			tags = append(tags, l.GetName()+":"+l.GetValue())
			if l.GetName() == "cpu" {
				cpus[l.GetValue()] = true
			}
		}
		slices.Sort(labels)
		tags = append(tags, nin)
		slices.Sort(tags)
		got := sum("node_cpu_seconds_total", tags...)
		most := m.GetCounter().GetValue() - sample(t, ne0, "node_cpu_seconds_total", labels...)
		if got < 0 || got > most+1e-9 {
			t.Errorf("node_cpu_seconds_total%v: veneurd counted %g, the test's scrapes moved %g", labels, got, most)
		}
		cpuTotal += got
	}
	if len(cpus) == 0 || cpuTotal > wall*float64(len(cpus)) {
		t.Errorf("%g CPU seconds counted on %d CPUs in %.1fs", cpuTotal, len(cpus), wall)
	}
	t.Logf("node exporter: %d scrapes, %d cumulative series and %d gauges checked; Prometheus: %d scrapes, %d and %d; %.2f CPU seconds counted on %d CPUs in %.1fs",
		len(neBodies), len(neOracle.counters), len(neOracle.gauges), len(prBodies), len(prOracle.counters), len(prOracle.gauges), cpuTotal, len(cpus), wall)
}
