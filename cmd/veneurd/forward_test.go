package main

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// tierNode is one veneurd of a forwarding test: its DogStatsD address, its
// localfile sink and, for a global, its receive address.
type tierNode struct {
	*daemontest.Daemon
	addr, out string
}

func startNode(t *testing.T, name, extra string) *tierNode {
	t.Helper()
	n := &tierNode{addr: daemontest.FreePort(t, "udp"), out: filepath.Join(t.TempDir(), name+".jsonl")}
	n.Daemon = daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname     = %q
  interval     = "2s"
  http_address = %q
}
aggregation {
  percentiles = [0.5, 0.99]
  aggregates  = ["min", "max", "count"]
}
source "dogstatsd" "in" {
  listen = ["udp://%s"]
}
sink "localfile" "out" {
  path = %q
}
%s
`, name, daemontest.FreePort(t, "tcp"), n.addr, n.out, extra))
	return n
}

// send sends lines as DogStatsD datagrams of up to 1,400 bytes: a test
// on a loaded machine sending a line a datagram would see the kernel drop
// some of its thousands.
func (n *tierNode) send(t *testing.T, lines ...string) {
	t.Helper()
	c, err := net.Dial("udp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var dgram []byte
	flush := func() {
		if len(dgram) > 0 {
			if _, err := c.Write(dgram); err != nil {
				t.Fatal(err)
			}
			dgram = dgram[:0]
		}
	}
	for _, l := range lines {
		if len(dgram)+1+len(l) > 1400 {
			flush()
		}
		if len(dgram) > 0 {
			dgram = append(dgram, '\n')
		}
		dgram = append(dgram, l...)
	}
	flush()
}

// TestForwardToGlobal runs two locals forwarding to a global, the three on
// 127.0.0.1, and checks the split of docs/global-tier.md end to end: each
// local flushes its own counter and its histogram's min, max and count;
// the global flushes the global counter's total, the union's percentiles
// and the set's union cardinality, once each.
func TestForwardToGlobal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	grpcAddr := daemontest.FreePort(t, "tcp")
	g := startNode(t, "global", fmt.Sprintf("receive {\n  grpc_address = %q\n}\n", grpcAddr))
	fwd := fmt.Sprintf("forward {\n  address = %q\n}\n", grpcAddr)
	locals := []*tierNode{startNode(t, "local-a", fwd), startNode(t, "local-b", fwd)}
	// The fleet's outputs are right for the samples of one interval. A
	// round's samples may cross a flush, on a local or on the way to the
	// global, and their union then comes out in two of the global's
	// intervals: such a round is not judged, and another is sent, under
	// names of its own.
	for round := range 3 {
		if forwardRound(t, g, locals, fmt.Sprintf("fw%d", round)) {
			return
		}
		t.Logf("round %d crossed a flush: another", round)
	}
	t.Fatal("three rounds in a row crossed a flush")
}

// forwardRound sends one round of TestForwardToGlobal, names prefixed p,
// and checks it; false when its samples crossed a flush.
func forwardRound(t *testing.T, g *tierNode, locals []*tierNode, p string) bool {
	t.Helper()
	for i, l := range locals {
		var lines []string
		for v := 1 + 100*i; v <= 100+100*i; v++ {
			lines = append(lines, fmt.Sprintf("%s.latency:%d|ms", p, v))
			lines = append(lines, fmt.Sprintf("%s.users:u%d|s", p, v%150)) // 0..99 and 100..149, 0..49: 150 members
		}
		lines = append(lines, p+".requests:3|c|#veneurglobalonly", p+".local:1|c")
		l.send(t, lines...)
	}
	// Each local's own outputs.
	for _, l := range locals {
		lines := l.WaitLines(l.out, 20*time.Second, func(ls []daemontest.Line) bool {
			return daemontest.Sum(ls, p+".latency.count") == 100 && daemontest.Sum(ls, p+".local") == 1
		})
		for _, name := range []string{".latency.50percentile", ".latency.99percentile", ".users", ".requests"} {
			if countName(lines, p+name) != 0 {
				t.Errorf("a local flushed %s, the global's", p+name)
			}
		}
	}
	// The global's, of the union: once both locals' state is in.
	lines := g.WaitLines(g.out, 40*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, p+".requests") == 6 && countName(ls, p+".latency.50percentile") > 0 && countName(ls, p+".users") > 0
	})
	for _, name := range []string{".latency.count", ".latency.max", ".local"} {
		if countName(lines, p+name) != 0 {
			t.Errorf("the global flushed %s, a local's", p+name)
		}
	}
	// A point twice in one flush is a fault; in two flushes, a crossing.
	type point struct {
		name string
		ts   int64
	}
	seen := map[point]bool{}
	stamps := map[int64]bool{}
	for _, l := range lines {
		if l.Name == p+".latency.50percentile" || l.Name == p+".users" {
			if seen[point{l.Name, l.Timestamp}] {
				t.Fatalf("the global flushed %s twice at %d", l.Name, l.Timestamp)
			}
			seen[point{l.Name, l.Timestamp}] = true
			stamps[l.Timestamp] = true
		}
	}
	if len(stamps) > 1 {
		return false
	}
	if p50 := lastValue(lines, p+".latency.50percentile"); math.Abs(p50-100.5) > 2 {
		t.Errorf("global p50 of 1..200 = %g, want 100.5±2", p50)
	}
	if p99 := lastValue(lines, p+".latency.99percentile"); math.Abs(p99-198.5) > 2 {
		t.Errorf("global p99 of 1..200 = %g, want 198.5±2", p99)
	}
	if u := lastValue(lines, p+".users"); math.Abs(u-150) > 3 {
		t.Errorf("global set cardinality %g, want 150 within 2%%", u)
	}
	return true
}

func countName(lines []daemontest.Line, name string) int {
	n := 0
	for _, l := range lines {
		if l.Name == name {
			n++
		}
	}
	return n
}

func lastValue(lines []daemontest.Line, name string) float64 {
	v := math.NaN()
	for _, l := range lines {
		if l.Name == name {
			v = l.Value
		}
	}
	return v
}

// TestForwardOutage stops the global for three of the local's intervals
// and starts another on the same address: every veneurglobalonly count the
// local took meanwhile reaches it, once.
func TestForwardOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	grpcAddr := daemontest.FreePort(t, "tcp")
	receive := fmt.Sprintf("receive {\n  grpc_address = %q\n}\n", grpcAddr)
	g := startNode(t, "global", receive)
	l := startNode(t, "local", fmt.Sprintf("forward {\n  address = %q\n}\n", grpcAddr))
	l.send(t, "fw.outage:1|c|#veneurglobalonly")
	g.WaitLines(g.out, 30*time.Second, func(ls []daemontest.Line) bool { return daemontest.Sum(ls, "fw.outage") == 1 })
	g.Stop()

	var sent float64 = 1
	for i := 2; i <= 4; i++ { // three of the local's intervals while the global is down
		l.send(t, fmt.Sprintf("fw.outage:%d|c|#veneurglobalonly", i))
		sent += float64(i)
		l.WaitFlushed(l.out, 1, 20*time.Second)
	}
	if v, _ := l.Metric(`veneur_forward_error_total{cause="unavailable"}`); v == 0 {
		t.Error("no failed forward counted while the global was down")
	}
	g2 := startNode(t, "global-again", receive)
	g2.WaitLines(g2.out, 30*time.Second, func(ls []daemontest.Line) bool { return daemontest.Sum(ls, "fw.outage") >= sent-1 })
	// A few more flushes: nothing arrives twice.
	lines := g2.WaitFlushed(g2.out, 2, 20*time.Second)
	if got := daemontest.Sum(lines, "fw.outage"); got != sent-1 {
		t.Errorf("the new global got %g of the outage's %g", got, sent-1)
	}
}
