package sdk

import (
	"context"
	"strconv"
	"testing"

	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/plugins/routers/match"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// TestDropRules: a drop rule's samples never reach the source's state, so a
// dropped high-cardinality metric costs no memory there, and they are
// counted by rule; the samples around them are aggregated whole.
func TestDropRules(t *testing.T) {
	rules := []*pb.DropRule{
		{Name: "noisy", Match: []*pb.Condition{{Name: &pb.Matcher{Kind: pb.Matcher_PREFIX, Value: "noisy."}}}},
		{Name: "canary", Match: []*pb.Condition{{Tags: []*pb.Matcher{{Kind: pb.Matcher_EXACT, Value: "canary"}}}}},
	}
	drops, err := DropRulesFromProto(rules)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutput(state.Params{})
	o.setAdmit(drops, nil)
	r := newReceived()
	dropped := map[string]uint64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range o.batches {
			r.processed += b.Processed
			for _, d := range b.Dropped {
				dropped[d.Rule] += d.Count
			}
		}
	}()
	w := o.Writer("udp")
	const n = 100_000
	for i := range n {
		w.Metric(Counter, ScopeDefault, []byte("noisy.requests"), []byte("id:"+strconv.Itoa(i)), 1, 1)
		if i%1000 == 0 {
			w.Metric(Counter, ScopeDefault, []byte("kept"), nil, 1, 1)
			w.Metric(Counter, ScopeDefault, []byte("kept"), []byte("canary"), 1, 1)
			w.Flush()
		}
	}
	w.Flush()
	if size := o.table.Size(); size > 4096 {
		t.Errorf("100,000 dropped series left %d bytes of state", size)
	}
	o.close()
	<-done
	r.cut(t, o)
	series := r.series()
	if len(series) != 1 || series["kept|"].Value != n/1000 {
		t.Errorf("state: %v", series)
	}
	if dropped["noisy"] != n || dropped["canary"] != n/1000 {
		t.Errorf("dropped by rule: %v", dropped)
	}
	if r.processed != n/1000 {
		t.Errorf("processed %d samples, want %d", r.processed, n/1000)
	}
}

func TestDropRulesRoundTrip(t *testing.T) {
	m := func(k match.Kind, v string, unset bool) match.Matcher {
		x, err := match.Compile(k, v, unset)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	in := match.Drops{{Name: "r", Match: []match.Condition{
		{Name: m(match.Regex, "^a+$", false), Tags: []match.Matcher{m(match.Prefix, "c", true), m(match.Exact, "e:1", false)}},
		{Name: m(match.Any, "", false)},
	}}}
	out, err := DropRulesFromProto(DropRulesToProto(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, tags string }{{"aa", "e:1"}, {"aa", "c,e:1"}, {"b", ""}, {"aa", ""}} {
		if got, want := out.Take([]byte(c.name), []byte(c.tags)), in.Take([]byte(c.name), []byte(c.tags)); got != want {
			t.Errorf("%q [%s]: %d after the round trip, %d before", c.name, c.tags, got, want)
		}
	}
	if _, err := DropRulesFromProto([]*pb.DropRule{{Name: "bad", Match: []*pb.Condition{{Name: &pb.Matcher{Kind: pb.Matcher_REGEX, Value: "("}}}}}); err == nil {
		t.Error("a regex that does not compile was taken")
	}
}

// runStream is the Run stream of a source, in process.
type runStream struct {
	grpc.ServerStream
	ctx     context.Context
	batches []*pb.Batch
}

func (s *runStream) Context() context.Context { return s.ctx }
func (s *runStream) Send(b *pb.Batch) error {
	s.batches = append(s.batches, b)
	return nil
}

// idleSource reads nothing and returns when told to stop.
type idleSource struct{}

func (idleSource) Config() any                                           { return &struct{}{} }
func (idleSource) Configure(context.Context, Env, any) error             { return nil }
func (idleSource) Run(ctx context.Context, _ []Listener, _ Output) error { <-ctx.Done(); return nil }

// TestRunSaysItAppliesDropRules: given drop rules, a source's Run stream
// says first that it applies them, which veneurd looks for (a source built
// before drop rules does not); given none, it says nothing of them.
func TestRunSaysItAppliesDropRules(t *testing.T) {
	run := func(rules []*pb.DropRule) []*pb.Batch {
		ctx, cancel := context.WithCancel(context.Background())
		st := &runStream{ctx: ctx}
		done := make(chan error)
		go func() { done <- (&sourceServer{impl: idleSource{}}).Run(&pb.RunRequest{DropRules: rules}, st) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return st.batches
	}
	rules := []*pb.DropRule{{Name: "r", Match: []*pb.Condition{{Name: &pb.Matcher{Kind: pb.Matcher_PREFIX, Value: "x."}}}}}
	if b := run(rules); len(b) == 0 || !b[0].DropRulesApplied {
		t.Errorf("with drop rules, the first batches are %v", b)
	}
	for _, b := range run(nil) {
		if b.DropRulesApplied {
			t.Error("without drop rules, a batch says it applies them")
		}
	}
}
