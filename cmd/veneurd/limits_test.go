package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/loadgen"
)

// Figures of the cardinality flood, for BENCHMARKS.md (go test -v prints
// them).
const (
	floodLines    = 10_000_000
	floodDuration = time.Minute
	// bytesPerSeries is BENCHMARKS.md's resident cost of a counter series
	// (≈ 210 B: the source's table, the daemon's, and the flush's packing).
	bytesPerSeries = 210
)

// TestCardinalityFlood sends 10 million unique series in a minute over
// TCP (no loss) to a source limited to 100,000 series an interval and
// 1,000 per name, beside a well-behaved source: the resident memory of
// veneurd and its plugins stays within what the limits imply, every flood
// sample is either flushed or counted as dropped for the limit, the
// well-behaved counters are exact, every flush takes under a second, and the
// limited names are logged once per interval.
func TestCardinalityFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of flood")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	flood, good := daemontest.FreePort(t, "tcp"), daemontest.FreePort(t, "tcp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "10s"
  http_address = %q
}
limits { max_series = 200000 }
source "dogstatsd" "flood" {
  listen = ["tcp://%s"]
  limits {
    max_series          = 100000
    max_series_per_name = 1000
  }
}
source "dogstatsd" "good" { listen = ["tcp://%s"] }
sink "localfile" "out" { path = %q }
`, admin, flood, good, out))
	d.WaitFlushes(1, 15*time.Second) // every plugin up, and a flush behind it
	pids, err := loadgen.ProcessTree(d.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	idleRSS := loadgen.TreeRSS(pids)
	meter := &loadgen.Meter{Pid: d.Cmd.Process.Pid}

	// Half the flood is 50 names of ever new tag values (the per-name limit
	// binds), half ever new names (the series limit binds); the good source
	// sends 100 counters 5 times a second.
	peak := meter.WatchRSS()
	fc, err := net.Dial("tcp", flood)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	gc, err := net.Dial("tcp", good)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	const tick = 10 * time.Millisecond
	perTick := floodLines / int(floodDuration/tick)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var buf []byte
	sent, goodRounds := 0, 0
	start := time.Now()
	for sent < floodLines {
		<-ticker.C
		buf = buf[:0]
		for range perTick {
			if sent%2 == 0 {
				buf = append(buf, "flood.n"...)
				buf = strconv.AppendInt(buf, int64(sent%100/2), 10)
				buf = append(buf, ":1|c|#id:"...)
			} else {
				buf = append(buf, "burst."...)
			}
			buf = strconv.AppendInt(buf, int64(sent), 10)
			if sent%2 == 1 {
				buf = append(buf, ":1|c"...)
			}
			buf = append(buf, '\n')
			sent++
		}
		if _, err := fc.Write(buf); err != nil {
			t.Fatal(err)
		}
		if sent%(perTick*20) == 0 { // every 200 ms
			buf = buf[:0]
			for k := range 100 {
				buf = fmt.Appendf(buf, "good.c%d:1|c|#k:%d\n", k, k)
			}
			if _, err := gc.Write(buf); err != nil {
				t.Fatal(err)
			}
			goodRounds++
		}
	}
	took := time.Since(start)
	fc.Close()
	gc.Close()
	// Every line is read and counted; the next flush has it all.
	wantLines := float64(sent + 100*goodRounds)
	d.WaitMetric(`veneur_listen_received_per_protocol_total{protocol="tcp"}`, 30*time.Second, func(v float64) bool { return v == wantLines })
	lines := d.WaitLines(out, 30*time.Second, func(lines []daemontest.Line) bool {
		return daemontest.Sum(lines, "good.c99", "k:99") == float64(goodRounds)
	})
	peakRSS := peak()
	limited, _ := d.Metric(`veneur_worker_metrics_dropped_total{reason="series_limit"}`)

	byFlush := map[int64]map[string]int{} // flush -> name -> series
	var flushedFlood float64
	var maxFlush, maxTotal float64
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l.Name, "flood.") || strings.HasPrefix(l.Name, "burst."):
			if byFlush[l.Timestamp] == nil {
				byFlush[l.Timestamp] = map[string]int{}
			}
			byFlush[l.Timestamp][l.Name]++
			flushedFlood += l.Value
		case l.Name == "veneur.flush.duration_ns":
			maxFlush = max(maxFlush, l.Value)
		case l.Name == "veneur.flush.total_duration_ns":
			maxTotal = max(maxTotal, l.Value)
		}
	}
	for ts, names := range byFlush {
		total := 0
		for name, n := range names {
			total += n
			if n > 1000 {
				t.Errorf("flush %d: %s has %d series, over max_series_per_name", ts, name, n)
			}
		}
		if total > 100_000 {
			t.Errorf("flush %d: %d flood series, over max_series", ts, total)
		}
	}
	if flushedFlood+limited != float64(sent) {
		t.Errorf("flood: %.0f samples flushed + %.0f dropped for the limit = %.0f, want %d sent",
			flushedFlood, limited, flushedFlood+limited, sent)
	}
	if limited < float64(sent)/2 {
		t.Errorf("only %.0f samples dropped for the limit", limited)
	}
	for k := range 100 {
		if got := daemontest.Sum(lines, fmt.Sprintf("good.c%d", k), fmt.Sprintf("k:%d", k)); got != float64(goodRounds) {
			t.Errorf("good.c%d = %v, want %d", k, got, goodRounds)
		}
	}
	// The flush (cut, merge, emit, route, pack) within a second; with the
	// sink's delivery of 100,000 points as JSON lines, within two.
	if maxFlush == 0 || maxFlush >= 1e9 || maxTotal >= 2e9 {
		t.Errorf("the longest flush took %v, %v with its delivery", time.Duration(maxFlush), time.Duration(maxTotal))
	}
	// What the limits imply: an interval's 100,000 flood series held three
	// times (the source's table, the daemon's, the sink's flush) at
	// BENCHMARKS.md's bytes per series, twice over for the garbage
	// collector's headroom, over the idle pipeline's resident set.
	implied := idleRSS + 3*2*100_000*bytesPerSeries
	if peakRSS > implied {
		t.Errorf("peak RSS %d MB, over the %d MB the limits imply", peakRSS>>20, implied>>20)
	}
	logged := strings.Count(d.Logs(), "series limit reached: samples of new series dropped")
	if logged == 0 || logged > d.Flushes() {
		t.Errorf("the limit was logged %d times in %d flushes: want once per interval", logged, d.Flushes())
	}
	t.Logf("flood: %d lines in %v (%.0f lines/s); %d flushed flood samples, %.0f dropped for the limit; "+
		"RSS idle %d MB, peak %d MB (limits imply ≤ %d MB); longest flush %v, %v with its delivery",
		sent, took.Round(time.Millisecond), float64(sent)/took.Seconds(), int(flushedFlood), limited,
		idleRSS>>20, peakRSS>>20, implied>>20, time.Duration(maxFlush), time.Duration(maxTotal))
}
