package main

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

// fleetSeries is how many series of each kind a fleet round sends: enough
// that both globals get some.
const fleetSeries = 16

// TestFleetThroughProxy runs four locals forwarding to a proxy, which
// routes each series to one of two globals that a real Consul agent says
// are passing, all on 127.0.0.1; then stops one global and starts it again.
// In every round, each series is emitted by one global only, whole: the
// veneurglobalonly counters' exact totals, the union's percentiles within
// the digest's bound, the sets' union cardinality within 2%.
func TestFleetThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	agent := receivers.Consul(t)
	client, err := consul.NewClient(&consul.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	gAddrs := []string{daemontest.FreePort(t, "tcp"), daemontest.FreePort(t, "tcp")}
	startGlobal := func(i int) *tierNode {
		return startNode(t, fmt.Sprintf("global-%d", i), fmt.Sprintf("receive {\n  grpc_address = %q\n}\n", gAddrs[i]))
	}
	globals := []*tierNode{startGlobal(0), startGlobal(1)}
	for i, a := range gAddrs {
		host, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		if err := client.Agent().ServiceRegister(&consul.AgentServiceRegistration{
			ID: fmt.Sprintf("global-%d", i), Name: "veneurd-global", Address: host, Port: port,
			Check: &consul.AgentServiceCheck{TCP: a, Interval: "1s", Timeout: "1s"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	pAddr := daemontest.FreePort(t, "tcp")
	proxy := startNode(t, "proxy", fmt.Sprintf(`
receive {
  grpc_address = %q
  aggregate    = false
}
forward {
  discovery "consul" {
    service = "veneurd-global"
    address = %q
  }
}
`, pAddr, agent.HTTP))
	var locals []*tierNode
	for i := range 4 {
		locals = append(locals, startNode(t, fmt.Sprintf("local-%d", i), fmt.Sprintf("forward {\n  address = %q\n}\n", pAddr)))
	}
	members := func(n float64) {
		t.Helper()
		proxy.WaitMetric("veneur_proxy_members", 30*time.Second, func(v float64) bool { return v == n })
	}

	members(2)
	fleetRounds(t, globals, locals, "both", 2)

	globals[1].Stop() // its check fails: critical, and it leaves the ring
	members(1)
	fleetRounds(t, globals[:1], locals, "one", 1)

	globals[1] = startGlobal(1)
	members(2)
	fleetRounds(t, globals, locals, "again", 2)
}

// fleetRounds sends rounds until one does not cross a flush (see
// TestForwardToGlobal) and checks it; want is how many globals must emit
// some of its series.
func fleetRounds(t *testing.T, globals, locals []*tierNode, name string, want int) {
	t.Helper()
	for round := range 3 {
		if fleetRound(t, globals, locals, fmt.Sprintf("%s%d", name, round), want) {
			return
		}
		t.Logf("%s round %d crossed a flush: another", name, round)
	}
	t.Fatalf("%s: three rounds in a row crossed a flush", name)
}

func fleetRound(t *testing.T, globals, locals []*tierNode, p string, want int) bool {
	t.Helper()
	for i, l := range locals {
		var lines []string
		for k := range fleetSeries {
			for v := 1 + 100*i; v <= 100+100*i; v++ {
				lines = append(lines, fmt.Sprintf("%s.lat%d:%d|ms", p, k, v))
				lines = append(lines, fmt.Sprintf("%s.users%d:u%d|s", p, k, v%300)) // 1..99,0 ... : 300 members over 4 locals
			}
			lines = append(lines, fmt.Sprintf("%s.req%d:%d|c|#veneurglobalonly", p, k, k+1))
		}
		l.send(t, lines...)
	}
	// Every series' outputs, from whichever global emits them.
	got := make([][]daemontest.Line, len(globals))
	complete := func() bool {
		total := 0.0
		for i, g := range globals {
			got[i] = daemontest.ReadLines(t, g.out)
			for k := range fleetSeries {
				total += daemontest.Sum(got[i], fmt.Sprintf("%s.req%d", p, k))
			}
		}
		want := 0.0
		for k := range fleetSeries {
			want += float64(4 * (k + 1))
		}
		return total >= want
	}
	if !daemontest.Until(60*time.Second, complete) {
		t.Fatalf("%s: the globals did not get every count in 60s", p)
	}
	// Two more flushes of each: whatever else arrives shows.
	for i, g := range globals {
		got[i] = g.WaitFlushed(g.out, 2, 20*time.Second)
	}
	emitters := map[int]bool{}
	crossed := false
	for k := range fleetSeries {
		names := []string{fmt.Sprintf("%s.req%d", p, k), fmt.Sprintf("%s.lat%d.50percentile", p, k),
			fmt.Sprintf("%s.lat%d.99percentile", p, k), fmt.Sprintf("%s.users%d", p, k)}
		var lines []daemontest.Line
		for _, n := range names {
			by := -1
			for i := range globals {
				if c := countName(got[i], n); c > 0 {
					if by >= 0 {
						t.Errorf("%s emitted by global %d and global %d", n, by, i)
					}
					by = i
					emitters[i] = true
				}
			}
			if by < 0 {
				t.Errorf("%s emitted by no global", n)
				continue
			}
			for _, l := range got[by] {
				if l.Name == n {
					lines = append(lines, l)
				}
			}
		}
		stamps := map[int64]bool{}
		for _, l := range lines {
			if !strings.HasSuffix(l.Name, fmt.Sprintf(".req%d", k)) {
				stamps[l.Timestamp] = true
			}
		}
		if len(stamps) > 1 {
			crossed = true
			continue
		}
		if k == 0 {
			t.Logf("%s: p50 %g (exact 200.5), p99 %g (exact 396.01), set %g (exact 300)", p,
				lastValue(lines, names[1]), lastValue(lines, names[2]), lastValue(lines, names[3]))
		}
		if v := daemontest.Sum(lines, names[0]); v != float64(4*(k+1)) {
			t.Errorf("%s = %g, want %d", names[0], v, 4*(k+1))
		}
		// The union of 1..400: exact p50 200.5, p99 396.01 (linear
		// interpolation); the digest's bound, 1% of the range.
		if v := lastValue(lines, names[1]); math.Abs(v-200.5) > 4 {
			t.Errorf("%s = %g, want 200.5±4", names[1], v)
		}
		if v := lastValue(lines, names[2]); math.Abs(v-396.01) > 4 {
			t.Errorf("%s = %g, want 396±4", names[2], v)
		}
		if v := lastValue(lines, names[3]); math.Abs(v-300) > 6 {
			t.Errorf("%s = %g, want 300 within 2%%", names[3], v)
		}
	}
	if crossed {
		return false
	}
	if len(emitters) != want {
		t.Errorf("%d globals emitted the round's series, want %d", len(emitters), want)
	}
	return true
}
