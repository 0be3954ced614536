package sdk

import (
	"math"
	"testing"

	"github.com/veneurd/veneurd/internal/state"
)

// TestOutputCountsRefusedSamples writes samples the state refuses among good
// ones: the source reports each as a rejected metric under its reason, does
// not count it as processed, and ships exact state for the good ones.
func TestOutputCountsRefusedSamples(t *testing.T) {
	o := newOutput(state.Params{})
	r := newReceived()
	got := make(chan *received)
	go func() { got <- drain(t, o, r) }()
	w := o.Writer("udp")
	w.Metric(Counter, ScopeDefault, []byte("c"), nil, 1e308, 1)
	w.Metric(Counter, ScopeDefault, []byte("c"), nil, math.Inf(1), 1)
	w.Metric(Counter, ScopeDefault, []byte("c"), nil, 1e308, 0.1)
	w.Metric(Gauge, ScopeDefault, []byte("g"), nil, math.NaN(), 1)
	w.Metric(Histogram, ScopeDefault, []byte("h"), nil, math.Inf(-1), 1)
	w.Metric(Histogram, ScopeDefault, []byte("h"), nil, 2, 0)
	w.Metric(Histogram, ScopeDefault, []byte("h"), nil, 2, 1)
	w.Flush()
	o.close()
	<-got
	r.cut(t, o)

	if r.errors["metric/invalid_value"] != 4 || r.errors["metric/invalid_rate"] != 1 || len(r.errors) != 2 {
		t.Errorf("errors %v, want 4 metric/invalid_value and 1 metric/invalid_rate", r.errors)
	}
	if r.processed != 2 || r.lines["udp"] != 7 {
		t.Errorf("%d processed of %d lines, want 2 of 7", r.processed, r.lines["udp"])
	}
	series := r.series()
	if len(series) != 2 || series["c|"].Value != 1e308 || series["h|"].Digest.Count() != 1 || series["h|"].Digest.Sum() != 2 {
		t.Errorf("series %v, want c = 1e308 and h of one sample of 2", series)
	}
}
