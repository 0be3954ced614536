package sdk

import (
	"context"
	"testing"

	"github.com/veneurd/veneurd/internal/state"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// TestTapCopiesWhatItAsksFor: a tapped source copies the samples whose
// names the tap asks for, as they were written, into its next report, up to
// maxTapped, and counts the rest as lost; untapping stops the copies.
func TestTapCopiesWhatItAsksFor(t *testing.T) {
	srv := &sourceServer{}
	srv.out = newOutput(state.Params{})
	o := srv.out
	if _, err := srv.Tap(context.Background(), &pb.TapRequest{Names: []*pb.Matcher{
		{Kind: pb.Matcher_PREFIX, Value: "pay."}, {Kind: pb.Matcher_EXACT, Value: "login"},
	}}); err != nil {
		t.Fatal(err)
	}
	w := o.Writer("udp")
	w.Metric(Counter, ScopeDefault, []byte("pay.charge"), []byte("cur:eur"), 2, 0.5)
	w.Metric(Counter, ScopeDefault, []byte("other"), nil, 1, 1)
	w.Metric(Gauge, ScopeDefault, []byte("login"), nil, 3, 1)
	for range maxTapped + 10 {
		w.Metric(Timer, ScopeDefault, []byte("pay.latency"), nil, 1, 1)
	}
	w.Flush()
	o.report()
	b := <-o.batches
	if len(b.Tapped) != maxTapped || b.TapLost != 12 {
		t.Fatalf("%d tapped, %d lost; want %d and 12", len(b.Tapped), b.TapLost, maxTapped)
	}
	if s := b.Tapped[0]; s.Name != "pay.charge" || s.Tags != "cur:eur" || s.Type != int32(Counter) || s.Value != 2 || s.Rate != 0.5 {
		t.Errorf("first tapped sample %v", s)
	}
	if s := b.Tapped[1]; s.Name != "login" || s.Type != int32(Gauge) {
		t.Errorf("second tapped sample %v", s)
	}
	// The state is whole: a tap copies, it does not take.
	if b.Processed != maxTapped+13 {
		t.Errorf("processed %d", b.Processed)
	}

	srv.Tap(context.Background(), &pb.TapRequest{})
	w.Metric(Counter, ScopeDefault, []byte("pay.charge"), nil, 1, 1)
	w.Flush()
	o.report()
	if b := <-o.batches; len(b.Tapped) != 0 || b.TapLost != 0 {
		t.Errorf("untapped, the source still copies: %v", b.Tapped)
	}
}

// TestUntappedWriterAllocatesNothing: with no tap, a sample costs the
// Writer no allocation for the tap's check.
func TestUntappedWriterAllocatesNothing(t *testing.T) {
	o := newOutput(state.Params{})
	w := o.Writer("udp")
	name, tags := []byte("pay.charge"), []byte("cur:eur")
	w.Metric(Counter, ScopeDefault, name, tags, 1, 1) // the frame buffer
	if n := testing.AllocsPerRun(1000, func() { w.Metric(Counter, ScopeDefault, name, tags, 1, 1) }); n != 0 {
		t.Errorf("%v allocations per sample", n)
	}
}
