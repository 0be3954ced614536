package sdk

import (
	"strconv"
	"testing"

	"github.com/veneurd/veneurd/internal/state"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// limitedRun is an output with limits and the batches it sent, read as the
// daemon reads them.
type limitedRun struct {
	o       *output
	limited uint64
	names   []string
	dropped uint64
}

func startLimited(t *testing.T, limits *pb.Limits, rules []*pb.DropRule) *limitedRun {
	t.Helper()
	drops, err := DropRulesFromProto(rules)
	if err != nil {
		t.Fatal(err)
	}
	lr := &limitedRun{o: newOutput(state.Params{})}
	lr.o.setAdmit(drops, newLimiter(limits))
	return lr
}

// report sends the counts gathered so far and reads them.
func (lr *limitedRun) report() {
	lr.o.report()
	for {
		select {
		case b := <-lr.o.batches:
			lr.limited += b.SeriesLimited
			lr.names = append(lr.names, b.LimitedNames...)
			for _, d := range b.Dropped {
				lr.dropped += d.Count
			}
		default:
			return
		}
	}
}

// cut hands the state over into r, ending the interval or not.
func (lr *limitedRun) cut(t *testing.T, r *received, intervalEnd bool) {
	t.Helper()
	if err := lr.o.cut(state.Params{}, intervalEnd, func(records []byte) error {
		_, err := r.table.MergeRecords(records)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSeriesLimits: past max_series, and past max_series_per_name for one
// name, the samples of new series are dropped and counted, the series
// admitted keep every sample (exact sums), and each name that hit a limit
// is reported once per interval.
func TestSeriesLimits(t *testing.T) {
	lr := startLimited(t, &pb.Limits{MaxSeries: 100, MaxSeriesPerName: 10}, nil)
	w := lr.o.Writer("udp")
	// 50 names of one series each, then one name with 1,000 tag values,
	// each sample sent 3 times.
	for range 3 {
		for i := range 50 {
			w.Metric(Counter, ScopeDefault, []byte("name."+strconv.Itoa(i)), nil, 1, 1)
		}
		for i := range 1000 {
			w.Metric(Counter, ScopeDefault, []byte("flood"), []byte("user:"+strconv.Itoa(i)), 2, 1)
		}
		w.Flush()
	}
	lr.report()
	r := newReceived()
	lr.cut(t, r, true)
	series := r.series()
	if len(series) != 60 {
		t.Fatalf("%d series held, want 50 + 10", len(series))
	}
	for i := range 50 {
		if v := series["name."+strconv.Itoa(i)+"|"].Value; v != 3 {
			t.Errorf("name.%d = %v, want 3", i, v)
		}
	}
	for i := range 10 {
		if v := series["flood|user:"+strconv.Itoa(i)].Value; v != 6 {
			t.Errorf("flood user:%d = %v, want 6", i, v)
		}
	}
	if lr.limited != 3*990 {
		t.Errorf("limited %d samples, want %d", lr.limited, 3*990)
	}
	if len(lr.names) != 1 || lr.names[0] != "flood" {
		t.Errorf("limited names %q, want [flood] once", lr.names)
	}

	// The next interval counts anew: max_series now stops a flood of
	// names at 100 series, and reports at most maxLimitedNames of them.
	lr.names, lr.limited = nil, 0
	for i := range 500 {
		w.Metric(Gauge, ScopeDefault, []byte("host."+strconv.Itoa(i)), nil, 1, 1)
	}
	w.Flush()
	lr.report()
	lr.cut(t, r, true)
	if n := len(r.series()); n != 100 {
		t.Errorf("%d series in the second interval, want 100", n)
	}
	if lr.limited != 400 || len(lr.names) != maxLimitedNames {
		t.Errorf("limited %d samples and %d names, want 400 and %d", lr.limited, len(lr.names), maxLimitedNames)
	}
}

// TestSeriesLimitsSpanEarlyCuts: a cut within the interval empties the
// source's table but not its count of the interval's series, so the series
// admitted before it are still admitted and no new one is; the cut that ends
// the interval starts the count anew.
func TestSeriesLimitsSpanEarlyCuts(t *testing.T) {
	lr := startLimited(t, &pb.Limits{MaxSeries: 5}, nil)
	w := lr.o.Writer("udp")
	send := func(from, to int) {
		for i := from; i < to; i++ {
			w.Metric(Counter, ScopeDefault, []byte("s"+strconv.Itoa(i)), nil, 1, 1)
		}
		w.Flush()
	}
	r := newReceived()
	send(0, 5)
	lr.cut(t, r, false)
	send(0, 10) // s0..s4 again: admitted; s5..s9: over the limit
	lr.report()
	lr.cut(t, r, true)
	series := r.series()
	if len(series) != 5 || series["s0|"].Value != 2 || series["s4|"].Value != 2 {
		t.Errorf("series after an early cut: %v", series)
	}
	if lr.limited != 5 {
		t.Errorf("limited %d, want 5", lr.limited)
	}
	send(5, 10)
	lr.cut(t, r, true)
	if series := r.series(); len(series) != 5 || series["s9|"].Value != 1 {
		t.Errorf("a new interval: %v", series)
	}
}

// TestDroppedSamplesDoNotCountAgainstLimits: what a drop rule takes is
// counted as dropped by the rule, and leaves the limit to the series kept.
func TestDroppedSamplesDoNotCountAgainstLimits(t *testing.T) {
	rules := []*pb.DropRule{{Name: "debug", Match: []*pb.Condition{{Name: &pb.Matcher{Kind: pb.Matcher_PREFIX, Value: "debug."}}}}}
	lr := startLimited(t, &pb.Limits{MaxSeries: 3}, rules)
	w := lr.o.Writer("udp")
	for i := range 100 {
		w.Metric(Counter, ScopeDefault, []byte("debug."+strconv.Itoa(i)), nil, 1, 1)
	}
	for i := range 3 {
		w.Metric(Counter, ScopeDefault, []byte("kept."+strconv.Itoa(i)), nil, 1, 1)
	}
	w.Flush()
	lr.report()
	r := newReceived()
	lr.cut(t, r, true)
	if n := len(r.series()); n != 3 || lr.dropped != 100 || lr.limited != 0 {
		t.Errorf("%d series, %d dropped by rule, %d limited; want 3, 100, 0", n, lr.dropped, lr.limited)
	}
}

// TestLimiterAllocatesNothingForRefusedSamples: a flood past the limit
// costs a lookup per sample, not memory.
func TestLimiterAllocatesNothingForRefusedSamples(t *testing.T) {
	l := newLimiter(&pb.Limits{MaxSeries: 1, MaxSeriesPerName: 1})
	l.admit(1, []byte("a"))
	name := []byte("b")
	l.admit(2, name) // b's first refusal records the name
	var h uint64 = 3
	if n := testing.AllocsPerRun(1000, func() {
		h++
		if l.admit(h, name) {
			t.Fatal("admitted past the limit")
		}
	}); n != 0 {
		t.Errorf("%v allocations per refused sample", n)
	}
}
