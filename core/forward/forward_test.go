package forward

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/discovery"
	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

var aggConfig = aggregate.Config{Aggregates: aggregate.Count | aggregate.Max, Percentiles: []float64{0.5}, Hostname: "h"}

// add aggregates samples into a, as a source's state merged.
func add(t *testing.T, a *aggregate.Aggregator, typ sdk.MetricType, scope sdk.Scope, name string, values ...float64) {
	t.Helper()
	var w state.Samples
	for _, v := range values {
		if err := w.Append(uint8(typ), uint8(scope), []byte(name), nil, v, 1); err != nil {
			t.Fatal(err)
		}
	}
	src := state.New(state.Params{}, 1)
	src.AddSamples(&w)
	src.Ship(1<<20, func(b []byte) {
		if _, err := a.MergeState(b); err != nil {
			t.Fatal(err)
		}
	})
}

func values(f *sdk.Flush) map[string]float64 {
	m := map[string]float64{}
	for _, p := range f.Points {
		if _, dup := m[p.Name]; dup {
			m[p.Name+" (twice)"] = p.Value
		}
		m[p.Name] = p.Value
	}
	return m
}

// global is a receiving aggregator served on a loopback address.
type global struct {
	agg  *aggregate.Aggregator
	tel  *telemetry.Registry
	addr string
	srv  *Server
}

func newGlobal(t *testing.T, addr string) *global {
	t.Helper()
	g := &global{agg: aggregate.New(aggConfig), tel: telemetry.New(), addr: addr}
	g.start(t)
	return g
}

func (g *global) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	g.addr = l.Addr().String()
	g.srv = NewReceiver(g.agg.Import, g.tel).Serve(l)
	t.Cleanup(func() { g.stop() })
}

func (g *global) stop() {
	if g.srv != nil {
		g.srv.Stop(context.Background())
		g.srv = nil
	}
}

// newLocal is a local's aggregator forwarding to addr.
func newLocal(t *testing.T, addr string, maxIntervals int) (*aggregate.Aggregator, *Forwarder, *telemetry.Registry) {
	t.Helper()
	tel := telemetry.New()
	f, err := New(Config{Members: discovery.NewStatic([]string{addr}), Hostname: "local", MaxBufferedIntervals: maxIntervals, Timeout: time.Second}, tel, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	a := aggregate.New(aggConfig)
	a.SetForward(f.Add)
	return a, f, tel
}

func waitSent(t *testing.T, fs ...*Forwarder) {
	t.Helper()
	if !daemontest.Until(20*time.Second, func() bool {
		for _, f := range fs {
			if f.Pending() > 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("batches still pending after 20s")
	}
}

// TestTwoLocalsOneGlobal forwards the fleet's share of two locals over
// gRPC to a global, which emits the union: global counters summed, the
// histogram's quantiles and count of both locals' samples, each once.
func TestTwoLocalsOneGlobal(t *testing.T) {
	g := newGlobal(t, "127.0.0.1:0")
	l1, f1, _ := newLocal(t, g.addr, 0)
	l2, f2, _ := newLocal(t, g.addr, 0)
	for i, l := range []*aggregate.Aggregator{l1, l2} {
		add(t, l, sdk.Counter, sdk.ScopeGlobal, "requests", 1, 2, 3)
		add(t, l, sdk.Counter, sdk.ScopeDefault, "local.requests", 5)
		var vs []float64
		for v := 1 + 50*i; v <= 50+50*i; v++ {
			vs = append(vs, float64(v))
		}
		add(t, l, sdk.Histogram, sdk.ScopeDefault, "latency", vs...)
	}
	for i, l := range []*aggregate.Aggregator{l1, l2} {
		v := values(l.Flush(10))
		if v["local.requests"] != 5 || v["latency.count"] != 50 || v["requests"] != 0 || v["latency.50percentile"] != 0 {
			t.Errorf("local %d emitted %v", i, v)
		}
	}
	f1.EndInterval(10)
	f2.EndInterval(10)
	waitSent(t, f1, f2)
	v := values(g.agg.Flush(10))
	if v["requests"] != 12 || len(v) != 2 || v["latency.50percentile"] < 49.5 || v["latency.50percentile"] > 51.5 {
		t.Errorf("global emitted %v, want requests 12 and latency.50percentile 50.5±1", v)
	}
	if n := g.tel.CounterValue(MetricsImported); n != 4 {
		t.Errorf("%s = %d, want 4", MetricsImported, n)
	}
}

// TestOutageLosesNothing keeps the global down for three intervals: the
// local holds them and, once the global is back, it gets every one, once.
// With room for two intervals only, the oldest is dropped and counted.
func TestOutageLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		maxIntervals int
		want         []float64 // the global's total, one of
		dropped      uint64    // batches
	}{
		{"buffer holds it", 10, []float64{1 + 2 + 3}, 0},
		// The oldest interval is dropped, or the next one when the
		// oldest's batch is being sent at that moment (it may be
		// delivered yet): never both, never neither.
		{"buffer of two intervals", 2, []float64{2 + 3, 1 + 3}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := daemontest.FreePort(t, "tcp")
			l, f, tel := newLocal(t, addr, tc.maxIntervals)
			for i := 1; i <= 3; i++ {
				add(t, l, sdk.Counter, sdk.ScopeGlobal, "requests", float64(i))
				l.Flush(int64(10 * i))
				f.EndInterval(int64(10 * i))
				// Each interval sees the global down: a send has failed.
				if !daemontest.Until(10*time.Second, func() bool {
					return tel.CounterValue(ForwardErrors, "cause:unavailable") >= uint64(i)
				}) {
					t.Fatal("no failed send counted while the global is down")
				}
			}
			if n := f.Pending(); n != 3-int(tc.dropped) {
				t.Fatalf("%d batches pending while the global is down, want %d", n, 3-tc.dropped)
			}
			if n := tel.CounterValue(ForwardErrors, "cause:buffer_full"); n != tc.dropped {
				t.Errorf("%s{cause:buffer_full} = %d, want %d", ForwardErrors, n, tc.dropped)
			}
			g := newGlobal(t, addr)
			waitSent(t, f)
			if v := values(g.agg.Flush(40)); !slices.Contains(tc.want, v["requests"]) || len(v) != 1 {
				t.Errorf("global emitted %v, want requests one of %v", v, tc.want)
			}
		})
	}
}

// TestReplayMergedOnce sends a batch twice, as a sender whose
// acknowledgement was lost does: it is merged once. A batch whose records
// do not decode is refused and counted.
func TestReplayMergedOnce(t *testing.T) {
	a := aggregate.New(aggConfig)
	tel := telemetry.New()
	r := NewReceiver(a.Import, tel)
	src := aggregate.New(aggConfig)
	var frames [][]byte
	var mu sync.Mutex
	src.SetForward(func(b []byte) { mu.Lock(); frames = append(frames, b); mu.Unlock() })
	add(t, src, sdk.Counter, sdk.ScopeGlobal, "requests", 7)
	src.Flush(1)
	b := &forwardpb.Batch{Sender: "h/1", Seq: 1, Interval: 1, Records: frames[0]}
	for i := range 2 {
		ack, err := r.Send(context.Background(), b)
		if err != nil || ack.Duplicate != (i == 1) {
			t.Fatalf("send %d: %v %v", i, ack, err)
		}
	}
	if v := values(a.Flush(1)); v["requests"] != 7 {
		t.Fatalf("a replayed batch merged twice: %v", v)
	}
	if _, err := r.Send(context.Background(), &forwardpb.Batch{Sender: "h/1", Seq: 2, Records: []byte{9, 9}}); err == nil {
		t.Fatal("corrupt records accepted")
	}
	if tel.CounterValue(ImportErrors, "cause:corrupt") != 1 {
		t.Error("corrupt batch not counted")
	}
}

// TestStopSendsTheLastFrames stops a forwarder between a flush and the end
// of its interval, as a reload that replaces it may: the flush's state is
// sent all the same.
func TestStopSendsTheLastFrames(t *testing.T) {
	g := newGlobal(t, "127.0.0.1:0")
	l, f, _ := newLocal(t, g.addr, 0)
	add(t, l, sdk.Counter, sdk.ScopeGlobal, "requests", 4)
	l.Flush(10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.Stop(ctx)
	if v := values(g.agg.Flush(10)); v["requests"] != 4 {
		t.Errorf("global emitted %v, want requests 4", v)
	}
}
