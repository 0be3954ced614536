package forward

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/internal/state"
)

// End-to-end tests against Veneur v14.2.0, which scripts/test-deps.sh
// builds into $HOME/.cache/veneurd-test/bin/veneur (or under
// $VENEURD_TEST_CACHE): a Veneur local forwarding to a Receiver serving
// Veneur's protocol, and veneurSender sending to a Veneur global.

// The bounds of the end-to-end tests: a percentile's rank within
// veneurE2ERankBound of the exact quantile's and its value within
// veneurE2EValueBound of it, relatively (the digests go through Veneur's
// merges, and the samples through DogStatsD's text, as well as through the
// conversions); a set's cardinality within 2%. At the p99 of the lognormal
// samples here a rank error of 0.001 is a value error of about 4%.
const (
	veneurE2ERankBound  = 0.002
	veneurE2EValueBound = 0.05
	veneurSetBound      = 0.02
)

// veneurBin returns the path of the Veneur build, or skips the test.
func veneurBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	return receivers.VeneurBinary(t)
}

// lastValues returns the last value posted of each series name.
func lastValues(series []receivers.DatadogSeries) map[string]float64 {
	m := map[string]float64{}
	for _, s := range series {
		if len(s.Points) > 0 {
			m[s.Metric] = s.Points[0][1]
		}
	}
	return m
}

// veneurProc is a running Veneur.
type veneurProc struct {
	statsd string // its DogStatsD UDP address
}

// startVeneur runs Veneur with a configuration of a 1s interval, a
// DogStatsD UDP listener, a datadog sink posting to api and extra, and
// waits until it answers its health check. It is killed at the end of the
// test, and its configuration and log are shown if the test failed.
func startVeneur(t *testing.T, api, extra string) *veneurProc {
	t.Helper()
	v := &veneurProc{statsd: daemontest.FreePort(t, "udp")}
	httpAddr := daemontest.FreePort(t, "tcp")
	cfg := fmt.Sprintf(`statsd_listen_addresses:
  - udp://%s
http_address: %q
interval: 1s
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
%s`, v.statsd, httpAddr, daemontest.FreePort(t, "udp"), api, extra)
	receivers.StartVeneur(t, cfg, httpAddr)
	return v
}

// sendLines sends DogStatsD lines to addr over UDP, as many a packet as
// fit in 1400 bytes.
func sendLines(t *testing.T, addr string, lines []string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var p []byte
	for i, l := range lines {
		if len(p) > 0 && len(p)+1+len(l) > 1400 {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
			p = p[:0]
		}
		if len(p) > 0 {
			p = append(p, '\n')
		}
		p = append(p, l...)
		if i == len(lines)-1 {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// collector merges the frames a Receiver merges and keeps every series
// merged so far, across Veneur's flushes.
type collector struct {
	tb    *state.Table
	mu    sync.Mutex
	total map[string]*state.Series // by identity
}

// series takes what was merged since the last call into the total, and
// returns the series named name (of any type), nil if none.
func (c *collector) series(name string) *state.Series {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.tb.Shards() {
		for _, se := range c.tb.Take(i) {
			if prev := c.total[se.ID()]; prev != nil {
				prev.Merge(&se)
			} else {
				c.total[se.ID()] = &se
			}
		}
	}
	for _, se := range c.total {
		if se.Name() == name {
			return se
		}
	}
	return nil
}

// checkQuantiles compares the quantiles got returns with the exact ones
// of sorted.
func checkQuantiles(t *testing.T, what string, sorted []float64, got func(q float64) float64) {
	t.Helper()
	for _, q := range []float64{0.5, 0.9, 0.99} {
		v, exact := got(q), exactQuantile(sorted, q)
		rank, rel := rankError(sorted, v, q), math.Abs(v-exact)/exact
		t.Logf("%s p%v: %.5f, exact %.5f: rank error %.5f, value error %.3f%%", what, q*100, v, exact, rank, 100*rel)
		if rank > veneurE2ERankBound || rel > veneurE2EValueBound {
			t.Errorf("%s p%v: %v, exact %v: rank error %.5f (bound %v), value error %.4f (bound %v)",
				what, q*100, v, exact, rank, veneurE2ERankBound, rel, veneurE2EValueBound)
		}
	}
}

// TestVeneurLocalsForwardToReceiver runs two Veneur locals, one forwarding
// with SendMetrics (forward_use_grpc) and one with SendMetricsV2
// (proxy_protocol grpc-stream), to a Receiver serving Veneur's protocol,
// and sends each half of the samples as DogStatsD over UDP: the
// veneurglobalonly counter is summed exactly, the gauge kept, the
// histogram's and timer's percentiles from the merged digests are within
// the bounds of the exact ones, the set's cardinality within 2%.
func TestVeneurLocalsForwardToReceiver(t *testing.T) {
	veneurBin(t)
	col := &collector{tb: state.New(state.Params{}, 4), total: map[string]*state.Series{}}
	tel := telemetry.New()
	var callsMu sync.Mutex
	calls := map[string]int{}
	count := func(method string) {
		callsMu.Lock()
		calls[method]++
		callsMu.Unlock()
	}
	addr := serveVeneur(t, NewReceiver(col.tb.MergeRecords, tel), tel,
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			count(info.FullMethod)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			count(info.FullMethod)
			return h(srv, ss)
		}))

	dd := receivers.StartDatadogAPI(t)
	locals := []*veneurProc{
		startVeneur(t, dd.URL, fmt.Sprintf("forward_address: %q\nforward_use_grpc: true\n", addr)),
		startVeneur(t, dd.URL, fmt.Sprintf("forward_address: %q\nfeatures:\n  proxy_protocol: grpc-stream\n", addr)),
	}

	const (
		counterLines = 400 // of each local
		histoSamples = 20000
		timerSamples = 20000
		setMembers   = 5000
	)
	histo, histoSorted := lognormal(11, histoSamples)
	timer, timerSorted := lognormal(12, timerSamples)
	wantCounter := 0
	for i, l := range locals {
		var lines []string
		for j := range counterLines {
			n := 1 + (i+j)%5
			wantCounter += n
			lines = append(lines, fmt.Sprintf("e2e.counter:%d|c|#veneurglobalonly,b:2,a:1", n))
		}
		lines = append(lines, "e2e.gauge:42.5|g|#veneurglobalonly",
			"e2e.not_utf8.\xff:1|c|#veneurglobalonly") // not a valid protobuf string
		for _, v := range histo[i*histoSamples/2 : (i+1)*histoSamples/2] {
			lines = append(lines, fmt.Sprintf("e2e.histo:%v|h|#k:v", v))
		}
		for _, v := range timer[i*timerSamples/2 : (i+1)*timerSamples/2] {
			lines = append(lines, fmt.Sprintf("e2e.timer:%v|ms", v))
		}
		// The two locals' members overlap by a fifth.
		for m := i * setMembers * 2 / 5; m < setMembers*3/5+i*setMembers*2/5; m++ {
			lines = append(lines, fmt.Sprintf("e2e.set:member-%d|s", m))
		}
		sendLines(t, l.statsd, lines)
	}

	// Wait for everything, over however many of Veneur's flushes.
	var counter, gauge, h, tm, set *state.Series
	if !daemontest.Until(30*time.Second, func() bool {
		counter, gauge = col.series("e2e.counter"), col.series("e2e.gauge")
		h, tm, set = col.series("e2e.histo"), col.series("e2e.timer"), col.series("e2e.set")
		return counter != nil && counter.Value >= float64(wantCounter) && gauge != nil && set != nil &&
			h != nil && h.Digest.Count() >= histoSamples && tm != nil && tm.Digest.Count() >= timerSamples
	}) {
		t.Fatalf("within 30s the receiver merged counter %v, histogram %v, timer %v, set %v, gauge %v",
			counter, h, tm, set, gauge)
	}
	// Then for a sentinel sent after everything: what would come later,
	// counted twice, has come.
	for _, l := range locals {
		sendLines(t, l.statsd, []string{"e2e.sentinel:1|c|#veneurglobalonly"})
	}
	if !daemontest.Until(30*time.Second, func() bool {
		s := col.series("e2e.sentinel")
		return s != nil && s.Value == 2
	}) {
		t.Fatal("the sentinels did not arrive within 30s")
	}

	if counter.Value != float64(wantCounter) || counter.Scope() != state.ScopeGlobal || counter.Tags() != "a:1,b:2" {
		t.Errorf("counter %v, scope %d, tags %q; want %d, global, a:1,b:2", counter.Value, counter.Scope(), counter.Tags(), wantCounter)
	}
	if gauge.Value != 42.5 || gauge.Type() != state.Gauge || gauge.Scope() != state.ScopeGlobal {
		t.Errorf("gauge %v type %d scope %d", gauge.Value, gauge.Type(), gauge.Scope())
	}
	if h.Type() != state.Histogram || h.Scope() != state.ScopeDefault || h.Tags() != "k:v" || h.Digest.Count() != histoSamples ||
		h.Digest.Min() != histoSorted[0] || h.Digest.Max() != histoSorted[histoSamples-1] {
		t.Errorf("histogram type %d scope %d tags %q count %v min %v max %v", h.Type(), h.Scope(), h.Tags(),
			h.Digest.Count(), h.Digest.Min(), h.Digest.Max())
	}
	checkQuantiles(t, "histogram", histoSorted, h.Digest.Quantile)
	if tm.Type() != state.Timer || tm.Digest.Count() != timerSamples {
		t.Errorf("timer type %d count %v", tm.Type(), tm.Digest.Count())
	}
	checkQuantiles(t, "timer", timerSorted, tm.Digest.Quantile)
	est := set.Set.Estimate()
	t.Logf("set: estimate %d of %d members", est, setMembers)
	if set.Type() != state.Set || set.Scope() != state.ScopeDefault || math.Abs(float64(est)-setMembers) > veneurSetBound*setMembers {
		t.Errorf("set type %d: estimate %d, want %d within 2%%", set.Type(), est, setMembers)
	}
	if s := col.series("e2e.not_utf8.\xff"); s == nil || s.Value != 2 {
		t.Errorf("the counter whose name is not UTF-8: %v, want 2", s)
	}
	if n := tel.CounterValue(ImportErrors, "cause:invalid"); n != 0 {
		t.Errorf("%s{cause:invalid} = %d", ImportErrors, n)
	}
	callsMu.Lock()
	defer callsMu.Unlock()
	if calls["/forwardrpc.Forward/SendMetrics"] == 0 || calls["/forwardrpc.Forward/SendMetricsV2"] == 0 {
		t.Errorf("the locals called %v, want both SendMetrics and SendMetricsV2", calls)
	}
}

// TestVeneurSenderToVeneurGlobal sends with veneurSender to a Veneur
// global and reads what it flushes to its datadog sink: the counter
// exact, the gauge, the histogram's percentiles within the bounds of the
// exact ones, the global timer's count, minimum and maximum exact, the
// sets' cardinalities (one sparse sketch, one dense) within 2%.
func TestVeneurSenderToVeneurGlobal(t *testing.T) {
	veneurBin(t)
	dd := receivers.StartDatadogAPI(t)
	grpcAddr := daemontest.FreePort(t, "tcp")
	startVeneur(t, dd.URL, fmt.Sprintf(`grpc_address: %q
percentiles: [0.5, 0.9, 0.99]
aggregates: [min, max, count]
`, grpcAddr))

	const (
		histoSamples = 100000
		timerSamples = 10000
		sparse       = 5000
		dense        = 50000
	)
	histo, histoSorted := lognormal(21, histoSamples)
	timer, timerSorted := lognormal(22, timerSamples)
	var samples []sample
	wantCounter := 0
	for i := range 1000 {
		wantCounter += i
		samples = append(samples, sample{state.Counter, state.ScopeGlobal, "e2e.sent.counter", "a:1,b:2", float64(i)})
	}
	samples = append(samples, sample{state.Gauge, state.ScopeGlobal, "e2e.sent.gauge", "", 3.5})
	for _, v := range histo {
		samples = append(samples, sample{state.Histogram, state.ScopeDefault, "e2e.sent.histo", "", v})
	}
	for _, v := range timer {
		samples = append(samples, sample{state.Timer, state.ScopeGlobal, "e2e.sent.timer", "", v})
	}
	for i := range dense {
		if i < sparse {
			samples = append(samples, sample{state.Set, state.ScopeDefault, "e2e.sent.sparse", "", setMember(i)})
		}
		samples = append(samples, sample{state.Set, state.ScopeDefault, "e2e.sent.dense", "", setMember(i)})
	}
	frame := frameOf(t, samples...)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := veneurSender(conn)
	// Veneur answers its health check before its gRPC server listens: a
	// refused connection merged nothing, and is tried again.
	if !daemontest.Until(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = send(ctx, &forwardpb.Batch{Sender: "s", Seq: 1, Records: frame})
		return err == nil
	}) {
		t.Fatalf("veneurSender: %v", err)
	}

	want := []string{"e2e.sent.counter", "e2e.sent.gauge", "e2e.sent.histo.50percentile", "e2e.sent.histo.90percentile",
		"e2e.sent.histo.99percentile", "e2e.sent.timer.count", "e2e.sent.timer.min", "e2e.sent.timer.max",
		"e2e.sent.sparse", "e2e.sent.dense"}
	var got map[string]float64
	if !daemontest.Until(20*time.Second, func() bool {
		got = lastValues(dd.Series(t))
		for _, name := range want {
			if _, ok := got[name]; !ok {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("Veneur flushed %v, want every one of %v", got, want)
	}
	if got["e2e.sent.counter"] != float64(wantCounter) {
		t.Errorf("counter %v, want %d", got["e2e.sent.counter"], wantCounter)
	}
	if got["e2e.sent.gauge"] != 3.5 {
		t.Errorf("gauge %v, want 3.5", got["e2e.sent.gauge"])
	}
	checkQuantiles(t, "histogram", histoSorted, func(q float64) float64 {
		return got[fmt.Sprintf("e2e.sent.histo.%dpercentile", int(q*100))]
	})
	if got["e2e.sent.timer.count"] != timerSamples || got["e2e.sent.timer.min"] != timerSorted[0] ||
		got["e2e.sent.timer.max"] != timerSorted[timerSamples-1] {
		t.Errorf("timer count %v min %v max %v, want %d %v %v", got["e2e.sent.timer.count"], got["e2e.sent.timer.min"],
			got["e2e.sent.timer.max"], timerSamples, timerSorted[0], timerSorted[timerSamples-1])
	}
	for name, n := range map[string]float64{"e2e.sent.sparse": sparse, "e2e.sent.dense": dense} {
		t.Logf("%s: Veneur's estimate %v of %v members", name, got[name], n)
		if math.Abs(got[name]-n) > veneurSetBound*n {
			t.Errorf("%s: Veneur's estimate %v, want %v within 2%%", name, got[name], n)
		}
	}
	var tags []string
	for _, s := range dd.Series(t) {
		if s.Metric == "e2e.sent.counter" {
			tags = s.Tags
		}
	}
	if strings.Join(tags, ",") != "a:1,b:2" {
		t.Errorf("counter tags %q, want a:1 and b:2", tags)
	}
}
