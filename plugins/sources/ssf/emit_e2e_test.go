package ssf

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/receivers"
)

// The end-to-end tests run veneurd with the ssf source and a localfile sink,
// and Veneur's own client, veneur-emit v14.2.0, built by
// scripts/test-deps.sh from Veneur's Go module, sends it spans over UDP and
// gRPC.

// veneurEmit returns the cached veneur-emit, or skips the test naming what
// is missing.
func veneurEmit(t *testing.T) string { return receivers.VeneurEmitBinary(t) }

// emit runs veneur-emit; it may be called from several goroutines.
func emit(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Errorf("veneur-emit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ssfNode is a veneurd reading SSF on UDP and gRPC.
type ssfNode struct {
	*daemontest.Daemon
	udp, grpc, unix, out string
}

func startSSFNode(t *testing.T) *ssfNode {
	t.Helper()
	// A socket path is limited to about 100 bytes, too few for t.TempDir.
	dir, err := os.MkdirTemp("", "ssf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &ssfNode{udp: daemontest.FreePort(t, "udp"), grpc: daemontest.FreePort(t, "tcp"), unix: filepath.Join(dir, "ssf.sock"),
		out: filepath.Join(t.TempDir(), "out.jsonl")}
	n.Daemon = daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname     = "h"
  interval     = "2s"
  http_address = %q
}
aggregation {
  percentiles = [0.5, 0.99]
  aggregates  = ["min", "max", "count"]
}
source "ssf" "in" {
  listen                    = ["udp://%s", "tcp://%s", "unix://%s"]
  indicator_span_timer_name = "indicator_span.duration_ns"
  objective_span_timer_name = "objective_span.duration_ns"
  names_unique_rate         = 1
}
sink "localfile" "out" {
  path = %q
}
`, daemontest.FreePort(t, "tcp"), n.udp, n.grpc, n.unix, n.out))
	return n
}

// TestVeneurEmit sends spans with veneur-emit over UDP, gRPC and UNIX
// streams (framed by Veneur's trace client), in the
// same intervals as spans that do not decode, and checks what veneurd
// flushes of them: counter sums, gauge values and set cardinalities
// exactly, timers' minimums, maximums and counts exactly, their
// percentiles within one step between the values sent; indicator spans'
// timers exactly, in nanoseconds.
func TestVeneurEmit(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := veneurEmit(t)
	n := startSSFNode(t)
	for _, tr := range []struct {
		name  string
		flags []string
	}{
		{"udp", []string{"-hostport", "udp://" + n.udp, "-ssf"}},
		{"grpc", []string{"-hostport", "tcp://" + n.grpc, "-ssf", "-grpc"}},
		{"unix", []string{"-hostport", "unix://" + n.unix, "-ssf"}}, // framed
	} {
		t.Run(tr.name, func(t *testing.T) {
			// A round's values are only judged whole: if its samples
			// straddle a flush, another round is sent under new names.
			for round := range 3 {
				if emitRound(t, bin, n, tr.flags, fmt.Sprintf("ssf.%s.r%d", tr.name, round)) {
					return
				}
				t.Logf("round %d straddled a flush: another", round)
			}
			t.Fatal("three rounds in a row straddled a flush")
		})
	}
	// The spans that did not decode were counted, by reason.
	for _, reason := range []string{ReasonTruncated, ReasonInvalid} {
		series := fmt.Sprintf(`veneur_packet_error_total{packet_type="ssf",reason=%q}`, reason)
		n.WaitMetric(series, 10*time.Second, func(v float64) bool { return v >= 3 })
	}
	for _, p := range []string{protoUDP, protoGRPC, protoUnix} {
		series := fmt.Sprintf(`veneur_listen_received_per_protocol_total{protocol=%q}`, p)
		n.WaitMetric(series, 10*time.Second, func(v float64) bool { return v > 0 })
	}
}

// emitRound sends one round under prefix p and checks it; it returns false
// if the round straddled a flush.
func emitRound(t *testing.T, bin string, n *ssfNode, flags []string, p string) bool {
	t.Helper()
	// The round's veneur-emits run four at a time, just after a flush, to
	// fit in one interval.
	var calls [][]string
	run := func(args ...string) { calls = append(calls, append(slices.Clone(flags), args...)) }
	svc, op := p+".svc", p+".op"
	for i := 1; i <= 10; i++ {
		// One span, two samples: a counter and a timer of one name.
		run("-name", p+".lat", "-count", "3", "-timing", fmt.Sprintf("%dms", 10*i), "-tag", "k:v")
	}
	run("-name", p+".g", "-gauge", "2.5", "-tag", "k:v")
	for _, m := range []string{"alice", "bob", "alice"} {
		run("-name", p+".s", "-set", m)
	}
	// Indicator spans of 100, 200 and 300 ms, and a failed one of 400 ms.
	for i, d := range []string{"00.1", "00.2", "00.3", "00.4"} {
		args := []string{"-trace_id", "1", "-indicator", "-span_service", svc, "-name", op,
			"-span_starttime", "2024-05-01T12:00:00Z", "-span_endtime", "2024-05-01T12:00:" + d + "Z"}
		if i == 3 {
			args = append(args, "-error")
		}
		run(args...)
	}
	n.WaitFlushed(n.out, 1, 10*time.Second)
	broken(t, n, flags) // spans that do not decode, among the round's
	var wg sync.WaitGroup
	work := make(chan []string)
	for range 4 {
		wg.Go(func() {
			for args := range work {
				emit(t, bin, args...)
			}
		})
	}
	for _, c := range calls {
		work <- c
	}
	close(work)
	wg.Wait()
	broken(t, n, flags)

	ind := []string{"error:false", "service:" + svc}
	indErr := []string{"error:true", "service:" + svc}
	obj := []string{"error:false", "objective:" + op, "service:" + svc}
	const indName, objName = "indicator_span.duration_ns", "objective_span.duration_ns"
	lines := n.WaitLines(n.out, 20*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, p+".lat", "k:v") == 30 && daemontest.Sum(ls, p+".lat.count", "k:v") == 10 &&
			count(ls, p+".g") > 0 && count(ls, p+".s") > 0 &&
			daemontest.Sum(ls, indName+".count", ind...) == 3 && daemontest.Sum(ls, indName+".count", indErr...) == 1 &&
			daemontest.Sum(ls, objName+".count", obj...) == 3
	})
	// Each series judged must be in one flush.
	for _, name := range []string{p + ".lat.count", p + ".s", indName + ".count", objName + ".count"} {
		stamps := map[int64]bool{}
		for _, l := range lines {
			if l.Name == name && (!strings.HasPrefix(name, "indicator") && !strings.HasPrefix(name, "objective") || slices.Contains(l.Tags, "service:"+svc)) {
				stamps[l.Timestamp] = true
			}
		}
		if len(stamps) > 1 {
			return false
		}
	}
	exact := func(name string, want float64, tags ...string) {
		t.Helper()
		if got := daemontest.Sum(lines, name, tags...); got != want {
			t.Errorf("%s%v = %v, want %v", name, tags, got, want)
		}
	}
	within := func(name string, want, bound float64, tags ...string) {
		t.Helper()
		got := daemontest.Sum(lines, name, tags...)
		if math.Abs(got-want) > bound {
			t.Errorf("%s%v = %v, want %v±%v", name, tags, got, want, bound)
		}
		t.Logf("%s%v = %v (exact %v)", name, tags, got, want)
	}
	exact(p+".lat", 30, "k:v")
	exact(p+".lat.count", 10, "k:v")
	exact(p+".lat.min", 10, "k:v")
	exact(p+".lat.max", 100, "k:v")
	// Ten values 10 apart: a percentile within one step of the exact one.
	within(p+".lat.50percentile", 55, 10, "k:v")
	within(p+".lat.99percentile", 99.1, 10, "k:v")
	exact(p+".g", 2.5, "k:v")
	exact(p+".s", 2)
	exact(indName+".count", 3, ind...)
	exact(indName+".min", 100e6, ind...)
	exact(indName+".max", 300e6, ind...)
	within(indName+".50percentile", 200e6, 100e6, ind...)
	exact(indName+".count", 1, indErr...)
	exact(indName+".max", 400e6, indErr...)
	exact(objName+".count", 3, obj...)
	exact(objName+".min", 100e6, obj...)
	exact(objName+".max", 300e6, obj...)
	exact("veneur.ssf.names_unique", 1, "indicator:true", "root_span:false", "service:"+svc)
	return true
}

func count(lines []daemontest.Line, name string) int {
	n := 0
	for _, l := range lines {
		if l.Name == name {
			n++
		}
	}
	return n
}

// broken sends a truncated span and one that is not protobuf the way flags
// send: UDP datagrams, gRPC requests or frames on a UNIX stream.
func broken(t *testing.T, n *ssfNode, flags []string) {
	t.Helper()
	good := marshal(t, spanWithCounter("ssf.broken.never", 1))
	bad := [][]byte{good[:len(good)-2], []byte("not a span at all")}
	if slices.Contains(flags, "unix://"+n.unix) {
		c, err := net.Dial("unix", n.unix)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(append(frame(bad[0]), frame(bad[1])...)); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !slices.Contains(flags, "-grpc") {
		c, err := net.Dial("udp", n.udp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, b := range bad {
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	cc := grpcConn(t, "tcp://"+n.grpc)
	for _, b := range bad {
		if err := sendRaw(cc, b); err == nil {
			t.Errorf("a broken span over gRPC was accepted")
		}
	}
}
