package core

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

type trialSample struct {
	typ        sdk.MetricType
	name, tags string
	values     []float64
}

// TestTrialAgreesWithAFlush runs inputs through a Trial, each alone, and
// through a running Server, all in one interval: what each sink receives of
// the Server's flush is what the Trial says it receives of each point, and
// what its tag policy drops, the Trial says it drops. Each point's routing
// rules' verdicts give the sinks the Trial says it reaches, and a drop
// rule's verdict is the drop rules' decision.
func TestTrialAgreesWithAFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		cfg := pipeline(10*time.Second, 5*time.Second, "sink.fake.a", "sink.fake.b", "sink.fake.c", "sink.fake.d")
		cfg.Aggregation.Percentiles = []float64{0.5, 0.99}
		cfg.Aggregation.Aggregates = []string{"min", "max", "count"}
		cfg.Sinks[1].Policy = match.Policy{AddTags: []string{"env:prod"}, StripTags: []string{"host"}}
		cfg.Sinks[2].Policy = match.Policy{MaxTags: 1, MaxNameLength: 8}
		cfg.Sinks[3].Policy = match.Policy{MaxTagLength: 6}
		r := &match.Router{Rules: []match.Rule{
			{Name: "max", Match: []match.Condition{{Name: matcher(t, match.Exact, "lat.max", false)}},
				Matched: 1 << 0, NotMatched: 1 << 1},
			{Name: "tagged", Match: []match.Condition{
				{Name: matcher(t, match.Prefix, "lat", false), Tags: []match.Matcher{matcher(t, match.Prefix, "host:", false)}},
				{Name: matcher(t, match.Regex, "^u", false), Tags: []match.Matcher{matcher(t, match.Exact, "canary", true)}},
			}, Matched: 1<<2 | 1<<3},
		}}
		for _, k := range cfg.Sinks {
			r.Sinks = append(r.Sinks, k.Address())
			r.Policies = append(r.Policies, k.Policy)
		}
		cfg.Routing.Router = r
		cfg.Routing.Drops = match.Drops{{Name: "debug", Match: []match.Condition{{Name: matcher(t, match.Prefix, "debug.", false)}}}}

		fp := newFakePlugins()
		s, _ := running(t, cfg, fp)
		trial, err := NewTrial(cfg)
		if err != nil {
			t.Fatal(err)
		}

		samples := []trialSample{
			{sdk.Counter, "hits", "host:a,zone:b", []float64{1, 2}},
			{sdk.Histogram, "lat", "host:a", []float64{1, 5, 9}},
			{sdk.Timer, "latency", "", []float64{3}},
			{sdk.Set, "users", "", []float64{sdk.SetValue(1), sdk.SetValue(2)}},
			{sdk.Set, "users", "canary", []float64{sdk.SetValue(1)}},
			{sdk.Counter, "lat.n", "host:abcd,zone:b", []float64{1}},
			{sdk.Gauge, "debug.x", "", []float64{1}},
		}
		checks := []sdk.ServiceCheck{{Name: "db", Status: 2, Tags: []string{"host:b"}}}
		want := map[string][]string{} // sink -> "name{tags}" the trial says it receives
		wantDropped := map[string]map[string]uint64{}
		check := func(res *TrialResult, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res.Points {
				var routed match.Set
				for i, v := range p.Rules {
					if v.Matched {
						routed |= r.Rules[i].Matched
					} else {
						routed |= r.Rules[i].NotMatched
					}
				}
				for i, k := range p.Sinks {
					if k.Routed != routed.Has(i) {
						t.Errorf("%s: the rules' verdicts %v say sink %s gets it: %v; the trial says %v", p.Name, p.Rules, k.Sink, routed.Has(i), k.Routed)
					}
					switch {
					case k.Received():
						want[k.Sink] = append(want[k.Sink], k.Name+"{"+strings.Join(k.Tags, ",")+"}")
					case k.Routed:
						if wantDropped[k.Sink] == nil {
							wantDropped[k.Sink] = map[string]uint64{}
						}
						wantDropped[k.Sink][k.Dropped.String()]++
					}
				}
			}
		}

		var records [][]byte
		for _, sm := range samples {
			res, err := trial.Metric(sm.typ, sdk.ScopeDefault, []byte(sm.name), []byte(sm.tags), sm.values, 1)
			check(res, err)
			dropped := strings.HasPrefix(sm.name, "debug.")
			if res.Dropped != dropped || len(res.Drops) != 1 || res.Drops[0].Matched != dropped {
				t.Errorf("%s: dropped %v by %v, want %v", sm.name, res.Dropped, res.Drops, dropped)
			}
			if dropped {
				continue
			}
			// As a source aggregates the sample and hands it over.
			tbl := state.New(state.Params{}, 4)
			var b state.Samples
			for _, v := range sm.values {
				if err := b.Append(uint8(sm.typ), uint8(sdk.ScopeDefault), []byte(sm.name), []byte(sm.tags), v, 1); err != nil {
					t.Fatal(err)
				}
			}
			tbl.AddSamples(&b)
			tbl.Ship(1<<20, func(r []byte) { records = append(records, r) })
		}
		for _, c := range checks {
			res, err := trial.ServiceCheck(c)
			check(res, err)
			s.ingest(nil, &pb.Batch{ServiceChecks: []*pb.ServiceCheck{sdk.ServiceCheckToProto(&c)}})
		}
		for _, r := range records {
			s.mergeState(r)
		}
		at(epoch, 10*time.Second)

		for i, k := range cfg.Sinks {
			addr := k.Address()
			got := fp.sink(addr).delivered()
			if len(got) != 1 {
				t.Fatalf("%s: %d flushes, want 1", addr, len(got))
			}
			keys := slices.Sorted(maps.Keys(got[0].points))
			slices.Sort(want[addr])
			if !slices.Equal(keys, want[addr]) {
				t.Errorf("%s received\n  %v\nthe trial says\n  %v", addr, keys, want[addr])
			}
			for reason := match.Kept + 1; reason < match.Reasons; reason++ {
				n := s.Telemetry().CounterValue(telemetry.SinkMetricsDropped, "sink:"+addr, "reason:"+reason.String())
				if w := wantDropped[addr][reason.String()]; n != w {
					t.Errorf("%s dropped %d points for %s; the trial says %d", addr, n, reason, w)
				}
			}
			// The test's own check: every limit bites.
			if wantN := []int{0, 0, 2, 1}[i]; len(wantDropped[addr]) != wantN {
				t.Errorf("%s: drops %v, want %d reasons", addr, wantDropped[addr], wantN)
			}
		}
	})
}

// TestTrialEvent routes an event by its title and tags, as flushed.
func TestTrialEvent(t *testing.T) {
	cfg := pipeline(10*time.Second, 5*time.Second, "sink.fake.a", "sink.fake.b")
	cfg.Aggregation.ExtendTags = []string{"region:eu"}
	cfg.Sinks[1].Policy = match.Policy{StripTags: []string{"svc"}}
	cfg.Routing.Router = &match.Router{Sinks: []string{"sink.fake.a", "sink.fake.b"},
		Policies: []match.Policy{{}, cfg.Sinks[1].Policy},
		Rules: []match.Rule{{Name: "deploys", Match: []match.Condition{{
			Name: matcher(t, match.Prefix, "deploy", false), Tags: []match.Matcher{matcher(t, match.Exact, "region:eu", false)}}},
			Matched: 1<<0 | 1<<1}}}
	trial, err := NewTrial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := trial.Event(sdk.Event{Title: "deploy", Text: "v2", Tags: []string{"svc:api"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 1 || !res.Points[0].Event {
		t.Fatalf("points %+v, want one event", res.Points)
	}
	p := res.Points[0]
	if !slices.Equal(p.Tags, []string{"region:eu", "svc:api"}) || len(p.Rules) != 1 || !p.Rules[0].Matched {
		t.Errorf("event tags %v, verdicts %+v", p.Tags, p.Rules)
	}
	if a, b := p.Sinks[0], p.Sinks[1]; !a.Received() || a.Name != "deploy" || !slices.Equal(a.Tags, []string{"region:eu", "svc:api"}) ||
		!b.Received() || !slices.Equal(b.Tags, []string{"region:eu"}) {
		t.Errorf("sinks %+v", p.Sinks)
	}
}
