package forward

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/state"
	consistenthash "github.com/veneurd/veneurd/plugins/routers/consistent_hash"
	"github.com/veneurd/veneurd/sdk"
)

// membership is a membership a test changes.
type membership struct {
	mu      sync.Mutex
	ring    *consistenthash.Ring
	changed chan struct{}
}

func newMembership(addrs ...string) *membership {
	return &membership{ring: consistenthash.New(addrs), changed: make(chan struct{})}
}

func (m *membership) Ring() (*consistenthash.Ring, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring, m.changed
}

func (m *membership) set(addrs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ring = consistenthash.New(addrs)
	close(m.changed)
	m.changed = make(chan struct{})
}

// spreadLocal is a local's aggregator forwarding to members.
func spreadLocal(t *testing.T, cfg Config) (*aggregate.Aggregator, *Forwarder, *telemetry.Registry) {
	t.Helper()
	tel := telemetry.New()
	cfg.Hostname, cfg.Timeout = "local", time.Second
	f, err := New(cfg, tel, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	a := aggregate.New(aggConfig)
	a.SetForward(f.Add)
	return a, f, tel
}

// counters adds n global counters c.0 … c.(n-1), c.i counting i+1.
func counters(t *testing.T, a *aggregate.Aggregator, n int) {
	for i := range n {
		add(t, a, sdk.Counter, sdk.ScopeGlobal, fmt.Sprintf("c.%d", i), float64(i+1))
	}
}

// owner is the member a series of counter name goes to on ring.
func owner(ring *consistenthash.Ring, name string) string {
	id := state.Key(state.ScopeGlobal, state.Counter, name, "")[1:]
	return ring.Members()[ring.Choose(consistenthash.Hash([]byte(id)))]
}

// checkCounters flushes the globals and checks that each of the n
// counters, at locals times its own value, was emitted by exactly one of
// them, and by the one want names (if want is not nil). It returns how
// many each emitted.
func checkCounters(t *testing.T, gs []*global, n, locals int, ts int64, want func(name string) string) []int {
	t.Helper()
	seen := map[string]string{}
	per := make([]int, len(gs))
	for gi, g := range gs {
		for name, v := range values(g.agg.Flush(ts)) {
			if other, dup := seen[name]; dup {
				t.Errorf("%s emitted by %s and %s", name, other, g.addr)
			}
			seen[name] = g.addr
			per[gi]++
			var i int
			if _, err := fmt.Sscanf(name, "c.%d", &i); err != nil || v != float64(locals*(i+1)) {
				t.Errorf("%s: %s = %v, want %d", g.addr, name, v, locals*(i+1))
			}
			if want != nil && want(name) != g.addr {
				t.Errorf("%s went to %s, not to its choice %s", name, g.addr, want(name))
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d counters emitted", len(seen), n)
	}
	return per
}

// TestSpreadOverMembers forwards two locals' global counters to three
// members: each counter reaches exactly the member rendezvous hashing
// chooses, whole (both locals' counts), and every member gets a share.
func TestSpreadOverMembers(t *testing.T) {
	gs := []*global{newGlobal(t, "127.0.0.1:0"), newGlobal(t, "127.0.0.1:0"), newGlobal(t, "127.0.0.1:0")}
	addrs := []string{gs[0].addr, gs[1].addr, gs[2].addr}
	var fs []*Forwarder
	for range 2 {
		a, f, _ := spreadLocal(t, Config{Members: newMembership(addrs...)})
		counters(t, a, 300)
		a.Flush(10)
		f.EndInterval(10)
		fs = append(fs, f)
	}
	waitSent(t, fs...)
	ring := consistenthash.New(addrs)
	per := checkCounters(t, gs, 300, 2, 10, func(name string) string { return owner(ring, name) })
	for i, n := range per {
		if n < 60 {
			t.Errorf("member %d emitted %d of 300 counters: not spread", i, n)
		}
	}
}

// TestFailoverToNextChoice forwards to two members, one of them down: after
// FailoverAfter attempts, the down member's series go to the other, and
// nothing is lost or counted twice; the next interval goes to the member
// up without waiting.
func TestFailoverToNextChoice(t *testing.T) {
	up := newGlobal(t, "127.0.0.1:0")
	down := daemontest.FreePort(t, "tcp")
	a, f, tel := spreadLocal(t, Config{Members: newMembership(up.addr, down)})
	for ts := int64(10); ts <= 20; ts += 10 {
		counters(t, a, 200)
		a.Flush(ts)
		f.EndInterval(ts)
		waitSent(t, f)
		checkCounters(t, []*global{up}, 200, 1, ts, nil)
	}
	if n := tel.CounterValue(ForwardErrors, "cause:failover"); n != 1 {
		t.Errorf("%s{cause:failover} = %d, want 1: the second interval should skip the member down", ForwardErrors, n)
	}
}

// TestMemberLeavesAndJoins forwards to two members while one is down and
// never fails over by attempts: when the membership drops it, its batches
// go to the other; when it is back and joins, series spread again.
func TestMemberLeavesAndJoins(t *testing.T) {
	g1 := newGlobal(t, "127.0.0.1:0")
	addr2 := daemontest.FreePort(t, "tcp")
	ms := newMembership(g1.addr, addr2)
	a, f, tel := spreadLocal(t, Config{Members: ms, FailoverAfter: 1000})
	counters(t, a, 200)
	a.Flush(10)
	f.EndInterval(10)
	if !daemontest.Until(10*time.Second, func() bool { return tel.CounterValue(ForwardErrors, "cause:unavailable") > 0 }) {
		t.Fatal("no failed send to the member down")
	}
	if f.Pending() == 0 {
		t.Fatal("the member down holds nothing")
	}
	ms.set(g1.addr)
	waitSent(t, f)
	checkCounters(t, []*global{g1}, 200, 1, 10, nil)

	g2 := newGlobal(t, addr2)
	ms.set(g1.addr, g2.addr)
	if !daemontest.Until(10*time.Second, func() bool { return len(f.Members()) == 2 }) {
		t.Fatal("the member back did not join")
	}
	counters(t, a, 200)
	a.Flush(20)
	f.EndInterval(20)
	waitSent(t, f)
	ring := consistenthash.New([]string{g1.addr, g2.addr})
	per := checkCounters(t, []*global{g1, g2}, 200, 1, 20, func(name string) string { return owner(ring, name) })
	if per[1] == 0 {
		t.Error("the member that joined got no series")
	}
}

// TestProxyRoutes has two locals forward to a proxy, which routes each
// series to one of two globals without aggregating: every series reaches
// the global a local would choose itself, with both locals' counts.
func TestProxyRoutes(t *testing.T) {
	gs := []*global{newGlobal(t, "127.0.0.1:0"), newGlobal(t, "127.0.0.1:0")}
	proxy, err := New(Config{Members: newMembership(gs[0].addr, gs[1].addr), Hostname: "proxy"}, telemetry.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewReceiver(func(b []byte) (int, error) { return proxy.Route(10, b) }, telemetry.New()).Serve(l)
	defer srv.Stop(context.Background())
	var fs []*Forwarder
	for range 2 {
		a, f, _ := spreadLocal(t, Config{Members: newMembership(l.Addr().String())})
		counters(t, a, 300)
		a.Flush(10)
		f.EndInterval(10)
		fs = append(fs, f)
	}
	waitSent(t, fs...)
	waitSent(t, proxy)
	ring := consistenthash.New([]string{gs[0].addr, gs[1].addr})
	per := checkCounters(t, gs, 300, 2, 10, func(name string) string { return owner(ring, name) })
	if slices.Contains(per, 0) {
		t.Errorf("a global got nothing: %v", per)
	}
}
