package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/axiomhq/hyperloglog"
	"github.com/dgryski/go-metro"
	vtdigest "github.com/stripe/veneur/v14/tdigest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/forward/veneurpb/forwardrpc"
	"github.com/veneurd/veneurd/core/forward/veneurpb/metricpb"
	"github.com/veneurd/veneurd/core/forward/veneurpb/tdigestpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/internal/tdigest"
)

// sample is one sample of a series, for frames built from samples.
type sample struct {
	typ, scope uint8
	name, tags string
	value      float64
}

// frameOf aggregates samples in a Table and returns its state as one frame.
func frameOf(t testing.TB, samples ...sample) []byte {
	t.Helper()
	var w state.Samples
	for _, s := range samples {
		if err := w.Append(s.typ, s.scope, []byte(s.name), []byte(s.tags), s.value, 1); err != nil {
			t.Fatal(err)
		}
	}
	tb := state.New(state.Params{}, 1)
	tb.AddSamples(&w)
	var frame []byte
	tb.Ship(1<<30, func(b []byte) { frame = b })
	return frame
}

// seriesOf merges frames in a new Table and returns its series by key.
func seriesOf(t testing.TB, frames ...[]byte) map[string]*state.Series {
	t.Helper()
	tb := state.New(state.Params{}, 1)
	for _, f := range frames {
		if _, err := tb.MergeRecords(f); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]*state.Series{}
	for _, se := range tb.Take(0) {
		out[se.Key] = &se
	}
	return out
}

func setMember(i int) float64 {
	return math.Float64frombits(metro.Hash64(fmt.Appendf(nil, "m%d", i), 1337))
}

// everySeries is a frame of a series of every type in every scope, with
// tags; the sets sparse and dense.
func everySeries(t testing.TB) []byte {
	var samples []sample
	for _, scope := range []uint8{state.ScopeDefault, state.ScopeLocal, state.ScopeGlobal} {
		sc := fmt.Sprint(scope)
		samples = append(samples,
			sample{state.Counter, scope, "c" + sc, "a:1,b:2", 3},
			sample{state.Counter, scope, "c" + sc, "a:1,b:2", 4.25},
			sample{state.Counter, scope, "neg" + sc, "", -7},
			sample{state.Gauge, scope, "g" + sc, "z", 1.5},
			sample{state.Gauge, scope, "g" + sc, "z", -2.5e300},
		)
		for i := range 5000 {
			v := math.Exp(float64(i%97) / 10)
			samples = append(samples,
				sample{state.Histogram, scope, "h" + sc, "a:1", v},
				sample{state.Timer, scope, "t" + sc, "", v / 3})
		}
		for i := range 100 {
			samples = append(samples, sample{state.Set, scope, "sparse" + sc, "k:v", setMember(i)})
		}
		for i := range 100000 {
			samples = append(samples, sample{state.Set, scope, "dense" + sc, "", setMember(i)})
		}
	}
	return frameOf(t, samples...)
}

// TestVeneurRoundTrip converts every type in every scope to Veneur's
// metrics and back: the same keys, counters rounded to integers, gauges and
// digests as they were, sets of the same cardinality estimate (exactly for
// a sparse sketch; a dense one loses registers more than 15 above its
// smallest, as Veneur's own sketches do). Each metric also goes through
// protobuf's wire format.
func TestVeneurRoundTrip(t *testing.T) {
	frame := everySeries(t)
	ms, err := veneurMetrics(frame)
	if err != nil {
		t.Fatal(err)
	}
	var back []byte
	for _, m := range ms {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got metricpb.Metric
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if back, err = appendVeneur(back, &got); err != nil {
			t.Fatalf("%s: %v", got.Name, err)
		}
	}
	want, got := seriesOf(t, frame), seriesOf(t, back)
	if len(want) != 3*7 || len(got) != len(want) {
		t.Fatalf("%d series back of %d", len(got), len(want))
	}
	for key, w := range want {
		g, ok := got[key]
		if !ok {
			t.Errorf("%s %q: not back", w.Name(), w.Tags())
			continue
		}
		switch w.Type() {
		case state.Counter:
			if g.Value != math.Round(w.Value) {
				t.Errorf("counter %s: %v, want %v", w.Name(), g.Value, math.Round(w.Value))
			}
		case state.Gauge:
			if g.Value != w.Value {
				t.Errorf("gauge %s: %v, want %v", w.Name(), g.Value, w.Value)
			}
		case state.Histogram, state.Timer:
			wd, gd := w.Digest, g.Digest
			if !slices.Equal(wd.Centroids(), gd.Centroids()) || wd.Min() != gd.Min() || wd.Max() != gd.Max() ||
				wd.ReciprocalSum() != gd.ReciprocalSum() || wd.Count() != gd.Count() || wd.Compression() != gd.Compression() {
				t.Errorf("digest %s changed", w.Name())
			}
			if math.Abs(wd.Sum()-gd.Sum()) > 1e-9*math.Abs(wd.Sum()) {
				t.Errorf("digest %s: sum %v, want %v", w.Name(), gd.Sum(), wd.Sum())
			}
		case state.Set:
			we, ge := w.Set.Estimate(), g.Set.Estimate()
			if strings.HasPrefix(w.Name(), "sparse") && we != ge ||
				math.Abs(float64(ge)-float64(we)) > 0.001*float64(we) {
				t.Errorf("set %s: estimate %d, want %d", w.Name(), ge, we)
			}
		}
	}
}

// TestVeneurMetricFields checks the Veneur side of the conversion: names,
// types, scopes, tags split in order, values.
func TestVeneurMetricFields(t *testing.T) {
	frame := frameOf(t,
		sample{state.Counter, state.ScopeGlobal, "c", "a:1,b:2", 2.5},
		sample{state.Gauge, state.ScopeDefault, "g", "", 3},
		sample{state.Histogram, state.ScopeLocal, "h", "x", 4},
		sample{state.Timer, state.ScopeDefault, "t", "", 5},
		sample{state.Set, state.ScopeGlobal, "s", "", setMember(1)},
	)
	ms, err := veneurMetrics(frame)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*metricpb.Metric{}
	for _, m := range ms {
		byName[string(m.Name)] = m
	}
	c := byName["c"]
	if c.Type != metricpb.Type_Counter || c.Scope != metricpb.Scope_Global || c.GetCounter().GetValue() != 3 ||
		!slices.EqualFunc(c.Tags, []string{"a:1", "b:2"}, func(a []byte, b string) bool { return string(a) == b }) {
		t.Errorf("counter: %v", c)
	}
	if g := byName["g"]; g.Type != metricpb.Type_Gauge || g.Scope != metricpb.Scope_Mixed || g.GetGauge().GetValue() != 3 || g.Tags != nil {
		t.Errorf("gauge: %v", g)
	}
	h := byName["h"]
	if td := h.GetHistogram().GetTDigest(); h.Type != metricpb.Type_Histogram || h.Scope != metricpb.Scope_Local ||
		len(td.GetMainCentroids()) != 1 || td.MainCentroids[0].Mean != 4 || td.MainCentroids[0].Weight != 1 ||
		td.Min != 4 || td.Max != 4 || td.ReciprocalSum != 0.25 || td.Compression != tdigest.DefaultCompression {
		t.Errorf("histogram: %v", h)
	}
	if tm := byName["t"]; tm.Type != metricpb.Type_Timer || tm.GetHistogram() == nil {
		t.Errorf("timer: %v", tm)
	}
	if s := byName["s"]; s.Type != metricpb.Type_Set || s.Scope != metricpb.Scope_Global || len(s.GetSet().GetHyperLogLog()) == 0 {
		t.Errorf("set: %v", s)
	}
}

// TestVeneurCounterRange: a counter's sum is rounded to the nearest int64;
// one outside int64's range is not sent.
func TestVeneurCounterRange(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want int64
		ok   bool
	}{
		{0.5, 1, true}, {-0.5, -1, true}, {1.49, 1, true}, {-1e18, -1e18, true},
		{math.MinInt64, math.MinInt64, true}, {9.2e18, 9.2e18, true},
		{math.MaxInt64, 0, false}, {-1e19, 0, false}, {1e300, 0, false},
	} {
		se := state.Series{Key: state.Key(state.ScopeGlobal, state.Counter, "c", ""), Value: tc.v}
		m, err := veneurMetric(&se)
		if (err == nil) != tc.ok || tc.ok && m.GetCounter().GetValue() != tc.want {
			t.Errorf("%v: %v, %v; want %d, ok %v", tc.v, m, err, tc.want, tc.ok)
		}
	}
}

// TestVeneurNotSent: a gauge that is not finite and an empty digest are
// not sent: Veneur would emit points that are not numbers.
func TestVeneurNotSent(t *testing.T) {
	for _, se := range []state.Series{
		{Key: state.Key(state.ScopeGlobal, state.Gauge, "g", ""), Value: math.NaN()},
		{Key: state.Key(state.ScopeGlobal, state.Gauge, "g", ""), Value: math.Inf(1)},
		{Key: state.Key(state.ScopeDefault, state.Histogram, "h", ""), Digest: tdigest.New(100)},
	} {
		if m, err := veneurMetric(&se); err == nil {
			t.Errorf("%s: sent as %v", se.Name(), m)
		}
	}
}

// TestVeneurTags: Veneur's tags make the key a DogStatsD line's tags make:
// sorted, comma-joined, empty ones dropped, duplicates kept.
func TestVeneurTags(t *testing.T) {
	for _, tc := range []struct {
		tags []string
		want string
	}{
		{nil, ""},
		{[]string{"b:2", "a:1"}, "a:1,b:2"},
		{[]string{"", "z", "", "a"}, "a,z"},
		{[]string{"x:1", "x:1", "a"}, "a,x:1,x:1"},
		{[]string{"host:\xff"}, "host:\xff"},
	} {
		m := &metricpb.Metric{Name: []byte("n\xfe"), Type: metricpb.Type_Gauge, Value: &metricpb.Metric_Gauge{Gauge: &metricpb.GaugeValue{Value: 1}}}
		for _, tag := range tc.tags {
			m.Tags = append(m.Tags, []byte(tag))
		}
		se, err := seriesFromVeneur(m)
		if err != nil {
			t.Fatalf("%q: %v", tc.tags, err)
		}
		if want := state.Key(state.ScopeDefault, state.Gauge, "n\xfe", tc.want); se.Key != want {
			t.Errorf("%q: tags %q, want %q", tc.tags, se.Tags(), tc.want)
		}
	}
}

// TestVeneurInvalid: metrics that do not make a series are refused.
func TestVeneurInvalid(t *testing.T) {
	counter := &metricpb.Metric_Counter{Counter: &metricpb.CounterValue{Value: 1}}
	gauge := func(v float64) *metricpb.Metric_Gauge {
		return &metricpb.Metric_Gauge{Gauge: &metricpb.GaugeValue{Value: v}}
	}
	histo := func(td *tdigestpb.MergingDigestData) *metricpb.Metric_Histogram {
		return &metricpb.Metric_Histogram{Histogram: &metricpb.HistogramValue{TDigest: td}}
	}
	set := func(b []byte) *metricpb.Metric_Set {
		return &metricpb.Metric_Set{Set: &metricpb.SetValue{HyperLogLog: b}}
	}
	name := []byte("n")
	for what, m := range map[string]*metricpb.Metric{
		"no name":          {Type: metricpb.Type_Counter, Value: counter},
		"long name":        {Name: make([]byte, state.MaxNameLen+1), Type: metricpb.Type_Counter, Value: counter},
		"long tags":        {Name: name, Tags: [][]byte{make([]byte, state.MaxTagsLen/2+1), make([]byte, state.MaxTagsLen/2)}, Type: metricpb.Type_Counter, Value: counter},
		"comma in a tag":   {Name: name, Tags: [][]byte{[]byte("a,b")}, Type: metricpb.Type_Counter, Value: counter},
		"unknown type":     {Name: name, Type: 7, Value: counter},
		"unknown scope":    {Name: name, Type: metricpb.Type_Counter, Scope: 3, Value: counter},
		"no value":         {Name: name, Type: metricpb.Type_Counter},
		"counter as gauge": {Name: name, Type: metricpb.Type_Gauge, Value: counter},
		"gauge as counter": {Name: name, Type: metricpb.Type_Counter, Value: gauge(1)},
		"NaN gauge":        {Name: name, Type: metricpb.Type_Gauge, Value: gauge(math.NaN())},
		"infinite gauge":   {Name: name, Type: metricpb.Type_Gauge, Value: gauge(math.Inf(-1))},
		"no digest":        {Name: name, Type: metricpb.Type_Histogram, Value: histo(nil)},
		"digest as set":    {Name: name, Type: metricpb.Type_Set, Value: histo(&tdigestpb.MergingDigestData{})},
		"set as timer":     {Name: name, Type: metricpb.Type_Timer, Value: set(nil)},
		"NaN centroid": {Name: name, Type: metricpb.Type_Histogram, Value: histo(&tdigestpb.MergingDigestData{
			Compression: 100, MainCentroids: []*tdigestpb.Centroid{{Mean: math.NaN(), Weight: 1}}})},
		"zero weight": {Name: name, Type: metricpb.Type_Timer, Value: histo(&tdigestpb.MergingDigestData{
			Compression: 100, MainCentroids: []*tdigestpb.Centroid{{Mean: 1, Weight: 0}}})},
		"nil centroid": {Name: name, Type: metricpb.Type_Timer, Value: histo(&tdigestpb.MergingDigestData{
			Compression: 100, MainCentroids: []*tdigestpb.Centroid{nil}})},
		"no sketch":      {Name: name, Type: metricpb.Type_Set, Value: set(nil)},
		"corrupt sketch": {Name: name, Type: metricpb.Type_Set, Value: set([]byte{1, 14, 0, 0, 0, 0, 0, 9, 1})},
	} {
		if b, err := appendVeneur([]byte{9}, m); !errors.Is(err, errVeneurMetric) || !slices.Equal(b, []byte{9}) {
			t.Errorf("%s: %v (frame %d bytes), want errVeneurMetric", what, err, len(b))
		}
	}
}

// TestVeneurHLLv1 checks the dense encoding made for Veneur's
// hyperloglog: version 1, two registers a byte above a base, which our
// library reads back to the same estimate (up to registers more than 15
// above the base), and sparse sketches passed as they are.
func TestVeneurHLLv1(t *testing.T) {
	for _, n := range []int{0, 10, 1000, 20000, 1000000} {
		sk := hyperloglog.New14()
		for i := range n {
			sk.InsertHash(math.Float64bits(setMember(i)))
		}
		b, err := veneurHLL(sk)
		if err != nil {
			t.Fatal(err)
		}
		own, _ := sk.MarshalBinary()
		dense := own[3] == 0
		if !dense && !slices.Equal(b, own) {
			t.Errorf("n=%d: a sparse sketch was rewritten", n)
		}
		if dense && (b[0] != 1 || b[1] != 14 || b[3] != 0 || len(b) != 8+(1<<14)/2 ||
			int(b[4])<<24|int(b[5])<<16|int(b[6])<<8|int(b[7]) != (1<<14)/2) {
			t.Errorf("n=%d: header % x, %d bytes", n, b[:8], len(b))
		}
		back := new(hyperloglog.Sketch)
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		want, got := sk.Estimate(), back.Estimate()
		if math.Abs(float64(got)-float64(want)) > 0.001*float64(want) {
			t.Errorf("n=%d: estimate %d, want %d", n, got, want)
		}
		t.Logf("n=%d dense=%v base=%d: estimate %d, back %d", n, dense, b[2], want, got)
	}
}

// lognormal returns n samples of a lognormal distribution, and them sorted.
func lognormal(seed uint64, n int) (samples, sorted []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	samples = make([]float64, n)
	for i := range samples {
		samples[i] = math.Exp(r.NormFloat64())
	}
	sorted = slices.Clone(samples)
	sort.Float64s(sorted)
	return samples, sorted
}

// exactQuantile is the sample of rank q*n.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// rankError is how far, in quantile, v is from q in sorted.
func rankError(sorted []float64, v, q float64) float64 {
	lo := sort.SearchFloat64s(sorted, v)
	hi := sort.Search(len(sorted), func(i int) bool { return sorted[i] > v })
	n := float64(len(sorted))
	return max(0, float64(lo)/n-q, q-float64(hi)/n)
}

// The bounds the digest tests assert on the quantiles of 100,000 lognormal
// samples, after conversion from Veneur's digest to ours or the reverse:
// the estimate's rank within veneurRankBound of the quantile's, and its
// value within veneurValueBound of the exact one, relatively. The
// conversions measure rank errors of at most 0.0002 and value errors of at
// most 0.61% (p99 of our digest read by Veneur's), no more than the digests'
// own: the bounds leave a tenfold and threefold margin.
const (
	veneurRankBound  = 0.002
	veneurValueBound = 0.02
)

// TestVeneurDigestAccuracy adds the same 100,000 lognormal samples to a
// Veneur MergingDigest and to ours, converts each to the other through
// the wire format, and compares p50, p90 and p99 with the exact quantiles.
func TestVeneurDigestAccuracy(t *testing.T) {
	samples, sorted := lognormal(7, 100000)
	vd := vtdigest.NewMerging(100, false)
	od := tdigest.New(100)
	for _, v := range samples {
		vd.Add(v, 1)
		od.Add(v, 1)
	}

	// Veneur's digest, read by ours.
	vb, err := vd.Data().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var data tdigestpb.MergingDigestData
	if err := proto.Unmarshal(vb, &data); err != nil {
		t.Fatal(err)
	}
	fromVeneur, err := digestFromVeneur(&data)
	if err != nil {
		t.Fatal(err)
	}
	if fromVeneur.Count() != 100000 {
		t.Fatalf("count %v", fromVeneur.Count())
	}

	// Ours, read by Veneur.
	se := state.Series{Key: state.Key(state.ScopeDefault, state.Histogram, "h", ""), Digest: od}
	m, err := veneurMetric(&se)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := proto.Marshal(m.GetHistogram().GetTDigest())
	if err != nil {
		t.Fatal(err)
	}
	var vdata vtdigest.MergingDigestData
	if err := vdata.Unmarshal(ob); err != nil {
		t.Fatal(err)
	}
	toVeneur := vtdigest.NewMergingFromData(&vdata)
	if toVeneur.Count() != 100000 || toVeneur.Min() != sorted[0] || toVeneur.Max() != sorted[len(sorted)-1] {
		t.Fatalf("Veneur read count %v min %v max %v", toVeneur.Count(), toVeneur.Min(), toVeneur.Max())
	}

	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := exactQuantile(sorted, q)
		for _, d := range []struct {
			name      string
			v         float64
			converted bool
		}{
			{"Veneur's digest", vd.Quantile(q), false},
			{"ours", od.Quantile(q), false},
			{"Veneur's digest read by ours", fromVeneur.Quantile(q), true},
			{"ours read by Veneur", toVeneur.Quantile(q), true},
		} {
			rank, rel := rankError(sorted, d.v, q), math.Abs(d.v-exact)/exact
			t.Logf("p%v %-30s %.5f exact %.5f: rank error %.5f, value error %.3f%%", q*100, d.name, d.v, exact, rank, 100*rel)
			if d.converted && (rank > veneurRankBound || rel > veneurValueBound) {
				t.Errorf("p%v of %s: %v, exact %v: rank error %.5f (bound %v), value error %.4f (bound %v)",
					q*100, d.name, d.v, exact, rank, veneurRankBound, rel, veneurValueBound)
			}
		}
	}
}

// serveVeneur serves r with Veneur's Forward on a loopback address,
// counting invalid metrics in tel, and returns the address.
func serveVeneur(t *testing.T, r *Receiver, tel *telemetry.Registry, opts ...grpc.ServerOption) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	forwardrpc.RegisterForwardServer(s, newVeneurService(r, tel.Counter(ImportErrors, "cause:invalid")))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// veneurServer serves r as serveVeneur does and returns a connection to it.
func veneurServer(t *testing.T, r *Receiver, tel *telemetry.Registry) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(serveVeneur(t, r, tel), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestVeneurSenderToReceiver sends every type and scope with veneurSender
// to a Receiver serving Veneur's protocol: what arrives is what was sent,
// as TestVeneurRoundTrip has it.
func TestVeneurSenderToReceiver(t *testing.T) {
	tb := state.New(state.Params{}, 1)
	tel := telemetry.New()
	conn := veneurServer(t, NewReceiver(tb.MergeRecords, tel), tel)
	frame := everySeries(t)
	if err := veneurSender(conn)(context.Background(), &forwardpb.Batch{Sender: "s", Seq: 1, Records: frame}); err != nil {
		t.Fatal(err)
	}
	want := seriesOf(t, frame)
	got := map[string]*state.Series{}
	for _, se := range tb.Take(0) {
		got[se.Key] = &se
	}
	if len(got) != len(want) {
		t.Fatalf("%d series received of %d", len(got), len(want))
	}
	for key, w := range want {
		g := got[key]
		if g == nil {
			t.Errorf("%s: not received", w.Name())
			continue
		}
		if w.Type() == state.Histogram && g.Digest.Quantile(0.5) != w.Digest.Quantile(0.5) {
			t.Errorf("%s: median %v, want %v", w.Name(), g.Digest.Quantile(0.5), w.Digest.Quantile(0.5))
		}
	}
	if n := tel.CounterValue(MetricsImported); n != uint64(len(want)) {
		t.Errorf("%s = %d, want %d", MetricsImported, n, len(want))
	}
	// Nothing to send is no call; a frame that does not decode is refused.
	if err := veneurSender(conn)(context.Background(), &forwardpb.Batch{}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	if err := veneurSender(conn)(context.Background(), &forwardpb.Batch{Records: []byte{9, 9}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("corrupt batch: %v, want InvalidArgument", err)
	}
}

// failingForward answers every call with err.
type failingForward struct {
	forwardrpc.UnimplementedForwardServer
	err error
}

func (f failingForward) SendMetricsV2(s forwardrpc.Forward_SendMetricsV2Server) error {
	s.Recv()
	return f.err
}

// veneurV14Forward takes SendMetricsV2's metrics and ends the call without
// its response, as Veneur v14's global does.
type veneurV14Forward struct {
	forwardrpc.UnimplementedForwardServer
	got chan int
}

func (f veneurV14Forward) SendMetricsV2(s forwardrpc.Forward_SendMetricsV2Server) error {
	n := 0
	for {
		if _, err := s.Recv(); err != nil {
			f.got <- n
			return nil
		}
		n++
	}
}

// TestVeneurSenderNoResponse: a call that Veneur's global ends with an OK
// status and no response succeeded.
func TestVeneurSenderNoResponse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	got := make(chan int, 1)
	forwardrpc.RegisterForwardServer(s, veneurV14Forward{got: got})
	go s.Serve(l)
	defer s.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := frameOf(t, sample{state.Counter, state.ScopeGlobal, "c", "", 1}, sample{state.Gauge, state.ScopeGlobal, "g", "", 1})
	if err := veneurSender(conn)(context.Background(), &forwardpb.Batch{Records: frame}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 2 {
		t.Errorf("the server received %d metrics, want 2", n)
	}
}

// TestVeneurSenderErrors: veneurSender returns the gRPC error as it is, so
// that the forwarder classifies it by its code.
func TestVeneurSenderErrors(t *testing.T) {
	frame := frameOf(t, sample{state.Counter, state.ScopeGlobal, "c", "", 1})
	batch := &forwardpb.Batch{Sender: "s", Seq: 1, Records: frame}

	down, err := grpc.NewClient(daemontest.FreePort(t, "tcp"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := veneurSender(down)(context.Background(), batch); status.Code(err) != codes.Unavailable {
		t.Errorf("no server: %v, want Unavailable", err)
	}

	for _, code := range []codes.Code{codes.ResourceExhausted, codes.Internal, codes.InvalidArgument} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		forwardrpc.RegisterForwardServer(s, failingForward{err: status.Error(code, "no")})
		go s.Serve(l)
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		err = veneurSender(conn)(context.Background(), batch)
		if st, _ := status.FromError(err); st.Code() != code || st.Message() != "no" {
			t.Errorf("server answering %v: %v", code, err)
		}
		conn.Close()
		s.Stop()
	}
}

// TestVeneurReceiverSkipsInvalid: in both calls, metrics that do not
// convert are counted and skipped, and the others merged; a stream of more
// than a frame's bytes is merged a frame at a time.
func TestVeneurReceiverSkipsInvalid(t *testing.T) {
	tb := state.New(state.Params{}, 1)
	tel := telemetry.New()
	r := NewReceiver(tb.MergeRecords, tel)
	conn := veneurServer(t, r, tel)
	client := forwardrpc.NewForwardClient(conn)
	good := func(i int) *metricpb.Metric {
		return &metricpb.Metric{Name: fmt.Appendf(nil, "c%d", i), Tags: [][]byte{[]byte("pad:" + strings.Repeat("x", 200))},
			Type: metricpb.Type_Counter, Scope: metricpb.Scope_Global,
			Value: &metricpb.Metric_Counter{Counter: &metricpb.CounterValue{Value: int64(i)}}}
	}
	bad := &metricpb.Metric{Name: []byte("bad"), Type: metricpb.Type_Gauge,
		Value: &metricpb.Metric_Gauge{Gauge: &metricpb.GaugeValue{Value: math.NaN()}}}

	// SendMetrics: 100 metrics, every tenth bad.
	var list forwardrpc.MetricList
	for i := range 100 {
		if i%10 == 0 {
			list.Metrics = append(list.Metrics, bad)
		} else {
			list.Metrics = append(list.Metrics, good(i))
		}
	}
	if _, err := client.SendMetrics(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	if n := tel.CounterValue(ImportErrors, "cause:invalid"); n != 10 {
		t.Errorf("%s{cause:invalid} = %d, want 10", ImportErrors, n)
	}
	if n := tel.CounterValue(MetricsImported); n != 90 {
		t.Errorf("%s = %d, want 90", MetricsImported, n)
	}

	// SendMetricsV2: 20,000 metrics of about 250 bytes (five frames), the
	// first bad.
	stream, err := client.SendMetricsV2(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(bad); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		if err := stream.Send(good(100 + i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if got := tel.CounterValue(ImportErrors, "cause:invalid"); got != 11 {
		t.Errorf("%s{cause:invalid} = %d, want 11", ImportErrors, got)
	}
	if got := tel.CounterValue(MetricsImported); got != 90+n {
		t.Errorf("%s = %d, want %d", MetricsImported, got, 90+n)
	}
	var sum float64
	for _, se := range tb.Take(0) {
		sum += se.Value
	}
	want := float64(n*(200+n-1)/2 + 50*99 - 450)
	if sum != want {
		t.Errorf("sum of the counters merged %v, want %v", sum, want)
	}
}

// TestVeneurReceiverMergeFailure: a record that does not merge (a set of
// another precision than the series held) is counted and skipped, and the
// records after it in the same frame still merged.
func TestVeneurReceiverMergeFailure(t *testing.T) {
	tb := state.New(state.Params{}, 1)
	tel := telemetry.New()
	r := NewReceiver(tb.MergeRecords, tel)
	setOf := func(p uint8) []byte {
		sk, _ := hyperloglog.NewSketch(p, true)
		sk.InsertHash(1)
		b, _ := sk.MarshalBinary()
		return b
	}
	set := func(p uint8) *metricpb.Metric {
		return &metricpb.Metric{Name: []byte("s"), Type: metricpb.Type_Set,
			Value: &metricpb.Metric_Set{Set: &metricpb.SetValue{HyperLogLog: setOf(p)}}}
	}
	counter := func(name string) *metricpb.Metric {
		return &metricpb.Metric{Name: []byte(name), Type: metricpb.Type_Counter,
			Value: &metricpb.Metric_Counter{Counter: &metricpb.CounterValue{Value: 1}}}
	}
	v := newVeneurService(r, tel.Counter(ImportErrors, "cause:invalid"))
	if _, err := v.SendMetrics(context.Background(), &forwardrpc.MetricList{Metrics: []*metricpb.Metric{set(14)}}); err != nil {
		t.Fatal(err)
	}
	list := &forwardrpc.MetricList{Metrics: []*metricpb.Metric{
		counter("a"), set(16), counter("b"), set(12), set(16), counter("c"), set(18)}}
	if _, err := v.SendMetrics(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	if n := tel.CounterValue(ImportErrors, "cause:invalid"); n != 4 {
		t.Errorf("%s{cause:invalid} = %d, want 4", ImportErrors, n)
	}
	if n := tel.CounterValue(MetricsImported); n != 4 {
		t.Errorf("%s = %d, want 4", MetricsImported, n)
	}
	names := map[string]bool{}
	for _, se := range tb.Take(0) {
		names[se.Name()] = true
	}
	if !names["a"] || !names["b"] || !names["c"] || !names["s"] || len(names) != 4 {
		t.Errorf("merged %v", names)
	}
}

// TestVeneurServedWithForward: the two services share a server, each on
// its method paths.
func TestVeneurServedWithForward(t *testing.T) {
	if forwardrpc.Forward_SendMetricsV2_FullMethodName != "/forwardrpc.Forward/SendMetricsV2" ||
		forwardrpc.Forward_SendMetrics_FullMethodName != "/forwardrpc.Forward/SendMetrics" {
		t.Fatal("Veneur's method paths changed")
	}
	tb := state.New(state.Params{}, 1)
	r := NewReceiver(tb.MergeRecords, telemetry.New())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	forwardpb.RegisterForwardServer(s, r)
	registerVeneur(s, r)
	go s.Serve(l)
	defer s.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := frameOf(t, sample{state.Counter, state.ScopeGlobal, "c", "", 2})
	if _, err := forwardpb.NewForwardClient(conn).Send(context.Background(), &forwardpb.Batch{Sender: "s", Seq: 1, Records: frame}); err != nil {
		t.Fatal(err)
	}
	if err := veneurSender(conn)(context.Background(), &forwardpb.Batch{Records: frame}); err != nil {
		t.Fatal(err)
	}
	if got := tb.Take(0); len(got) != 1 || got[0].Key != state.Key(state.ScopeGlobal, state.Counter, "c", "") || got[0].Value != 4 {
		t.Errorf("merged %v, want the counter c at 4", got)
	}
}

// veneurSeeds are Veneur metrics of every type, wire encoded: the fuzz
// test's seeds.
func veneurSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	ms, err := veneurMetrics(frameOf(t,
		sample{state.Counter, state.ScopeGlobal, "c", "a:1,b:2", 7},
		sample{state.Gauge, state.ScopeDefault, "g", "", 1.5},
		sample{state.Histogram, state.ScopeDefault, "h", "x", 1},
		sample{state.Histogram, state.ScopeDefault, "h", "x", 2},
		sample{state.Timer, state.ScopeGlobal, "t", "", 3},
		sample{state.Set, state.ScopeDefault, "s", "", setMember(1)},
	))
	if err != nil {
		t.Fatal(err)
	}
	dense := hyperloglog.New14()
	for i := range 20000 {
		dense.InsertHash(math.Float64bits(setMember(i)))
	}
	hll, err := veneurHLL(dense)
	if err != nil {
		t.Fatal(err)
	}
	vd := vtdigest.NewMerging(100, false)
	for i := range 1000 {
		vd.Add(float64(i%37), 1)
	}
	vb, err := vd.Data().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var td tdigestpb.MergingDigestData
	if err := proto.Unmarshal(vb, &td); err != nil {
		t.Fatal(err)
	}
	ms = append(ms,
		&metricpb.Metric{Name: []byte("dense"), Type: metricpb.Type_Set, Value: &metricpb.Metric_Set{Set: &metricpb.SetValue{HyperLogLog: hll}}},
		&metricpb.Metric{Name: []byte("veneur"), Type: metricpb.Type_Timer, Scope: metricpb.Scope_Global,
			Value: &metricpb.Metric_Histogram{Histogram: &metricpb.HistogramValue{TDigest: &td}}})
	for _, m := range ms {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzVeneurMetric decodes its input as a Veneur metric and converts it:
// that never panics, and a record made of a metric merges into a Table,
// and converts back to a Veneur metric.
func FuzzVeneurMetric(f *testing.F) {
	for _, b := range veneurSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m metricpb.Metric
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		frame, err := appendVeneur(nil, &m)
		if err != nil {
			if len(frame) != 0 {
				t.Fatalf("a metric refused (%v) left a record", err)
			}
			return
		}
		tb := state.New(state.Params{}, 1)
		if n, err := tb.MergeRecords(frame); n != 1 || err != nil {
			t.Fatalf("the record of %v does not merge: %d, %v", &m, n, err)
		}
		series := tb.Take(0)
		if _, err := veneurMetric(&series[0]); err != nil && series[0].Type() != state.Counter {
			t.Fatalf("%v does not convert back: %v", &m, err)
		}
	})
}
