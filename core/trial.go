package core

import (
	"context"
	"fmt"
	"strings"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Trial runs single inputs through a pipeline the way the daemon does, with
// nothing started: a metric's samples through the drop rules its sources
// apply, a source's state table and the records it ships, and the
// aggregator; an event or a service check through the aggregator; then each
// point of the flush through a flush's routing and the sinks' tag policies,
// alone, so that what each sink receives of it, or why its policy drops it,
// is known point by point. It is what `veneurd route test` prints.
//
// Each input is aggregated alone, in an interval of its own.
type Trial struct {
	cfg   *config.Config
	drops match.Drops
	sinks []string
}

// NewTrial returns a Trial of the pipeline cfg, a loaded config.
func NewTrial(cfg *config.Config) (*Trial, error) {
	// The drop rules as a source process gets them, through its RunRequest.
	drops, err := sdk.DropRulesFromProto(sdk.DropRulesToProto(cfg.Routing.Drops))
	if err != nil {
		return nil, err
	}
	t := &Trial{cfg: cfg, drops: drops}
	for _, k := range cfg.Sinks {
		t.sinks = append(t.sinks, k.Address())
	}
	return t, nil
}

// Sinks returns the addresses of the pipeline's sinks, in the order of
// TrialPoint.Sinks.
func (t *Trial) Sinks() []string { return t.sinks }

// Routed reports whether the pipeline has routing rules; without any, every
// sink gets every point.
func (t *Trial) Routed() bool {
	return t.cfg.Routing.Router != nil && len(t.cfg.Routing.Router.Rules) > 0
}

// Verdict is a rule's verdict on a sample or a point, as match.Rule.Explain
// gives it.
type Verdict struct {
	Rule    string
	Matched bool
	Why     string
}

// TrialResult is what became of one input.
type TrialResult struct {
	// Drops are the verdicts of the drop rules on a metric's samples, up to
	// the one that takes them (the last, then, and Dropped is set): a
	// source discards the samples a drop rule takes. Nil for events and
	// service checks, which drop rules do not apply to.
	Drops   []Verdict
	Dropped bool
	// Refused counts the samples the source did not aggregate, by reason
	// (state.ReasonInvalidValue, ..., or "too_long"), as it counts them in
	// veneur.packet.error_total.
	Refused map[string]int
	// Unflushed counts the points the flush did not emit, their values not
	// being finite, by reason (aggregate.DropOverflow, ...).
	Unflushed map[string]uint64
	// Points are the points the input flushes as, in the order the
	// aggregator emits them, or its event.
	Points []TrialPoint
}

// TrialPoint is one flushed point, or an event, and what each sink gets of
// it.
type TrialPoint struct {
	// Name is the point's name (an event's title); Tags its tags as
	// flushed, before any sink's tag policy.
	Name  string
	Event bool
	Type  sdk.PointType // 0 for an event
	Value float64
	Tags  []string
	// Rules are the verdicts of the routing rules, in order.
	Rules []Verdict
	// Sinks are what each sink of the pipeline gets, in the pipeline's
	// order.
	Sinks []SinkResult
}

// SinkResult is what one sink gets of a point.
type SinkResult struct {
	Sink string
	// Routed says that the routing sends the point to the sink. Then either
	// Dropped says why the sink's tag policy drops it, or Name and Tags
	// are what the sink receives.
	Routed  bool
	Dropped match.Reason
	Name    string
	Tags    []string
}

// Received reports whether the sink receives the point.
func (s *SinkResult) Received() bool { return s.Routed && s.Dropped == match.Kept }

// Metric runs the samples of one metric line: values of type typ (for a
// set, sdk.SetValue of each member's hash, at rate 1), named name with tags
// (sorted, comma-joined), as a source's Writer.Metric takes them.
func (t *Trial) Metric(typ sdk.MetricType, scope sdk.Scope, name, tags []byte, values []float64, rate float64) (*TrialResult, error) {
	res := &TrialResult{}
	if i := t.drops.Take(name, tags); i >= 0 {
		res.Drops = t.verdicts(t.drops[:i+1], string(name), string(tags))
		res.Dropped = true
		return res, nil
	}
	res.Drops = t.verdicts(t.drops, string(name), string(tags))
	ac := aggregationConfig(t.cfg)
	src := state.New(state.Params{Compression: ac.Compression, HLLPrecision: ac.HLLPrecision}, 16)
	var samples state.Samples
	for _, v := range values {
		if err := samples.Append(uint8(typ), uint8(scope), name, tags, v, rate); err != nil {
			res.refuse("too_long", 1)
		}
	}
	_, refused := src.AddSamples(&samples)
	refused.Each(res.refuse)
	agg := aggregate.New(ac)
	var err error
	src.Ship(1<<20, func(records []byte) {
		if _, e := agg.MergeState(records); e != nil && err == nil {
			err = e
		}
	})
	if err != nil { // records a table just made: a bug, not the input's fault
		return nil, fmt.Errorf("merging the state of %q: %w", name, err)
	}
	return res, t.flush(agg, res)
}

// Event runs an event as a source sends it.
func (t *Trial) Event(e sdk.Event) (*TrialResult, error) {
	agg := aggregate.New(aggregationConfig(t.cfg))
	agg.AddEvent(sdk.EventToProto(&e))
	res := &TrialResult{}
	return res, t.flush(agg, res)
}

// ServiceCheck runs a service check as a source sends it.
func (t *Trial) ServiceCheck(c sdk.ServiceCheck) (*TrialResult, error) {
	agg := aggregate.New(aggregationConfig(t.cfg))
	agg.AddServiceCheck(sdk.ServiceCheckFromProto(sdk.ServiceCheckToProto(&c)))
	res := &TrialResult{}
	return res, t.flush(agg, res)
}

func (r *TrialResult) refuse(reason string, n int) {
	if r.Refused == nil {
		r.Refused = map[string]int{}
	}
	r.Refused[reason] += n
}

func (t *Trial) verdicts(rules []match.Rule, name, tags string) []Verdict {
	var out []Verdict
	for i := range rules {
		ok, why := rules[i].Explain(name, tags)
		out = append(out, Verdict{Rule: rules[i].Name, Matched: ok, Why: why})
	}
	return out
}

// emitted is a point as the aggregator emits it.
type emitted struct {
	name, suffix, tags string
	typ                sdk.PointType
	value              float64
	hostname, message  string
}

type emittedPoints []emitted

func (p *emittedPoints) Point(name, suffix, tags string, typ sdk.PointType, value float64, hostname, message string) {
	*p = append(*p, emitted{name, suffix, tags, typ, value, hostname, message})
}

// flush flushes agg, and routes each point and event in a flush of its own.
func (t *Trial) flush(agg *aggregate.Aggregator, res *TrialResult) error {
	var points emittedPoints
	events := agg.FlushTo(&points)
	res.Unflushed = agg.TakeDropped()
	var rules []match.Rule
	if t.cfg.Routing.Router != nil {
		rules = t.cfg.Routing.Router.Rules
	}
	for _, p := range points {
		tp := TrialPoint{Name: p.name + p.suffix, Type: p.typ, Value: p.value, Tags: splitTrialTags(p.tags),
			Rules: t.verdicts(rules, p.name+p.suffix, p.tags)}
		rf := newRoutedFlush(0, t.cfg.Daemon.Interval, t.cfg.Routing.Router, newBatches(len(t.sinks)))
		rf.Point(p.name, p.suffix, p.tags, p.typ, p.value, p.hostname, p.message)
		var err error
		tp.Sinks = t.outcomes(rf, func(c *pb.FlushChunk) (string, []string, bool) {
			got, e := sdk.UnpackPoints(c.Points, nil)
			if e != nil {
				err = e
			}
			if len(got) == 0 {
				return "", nil, false
			}
			return got[0].Name, got[0].Tags, true
		})
		if err != nil {
			return fmt.Errorf("reading the flush of %s: %w", tp.Name, err)
		}
		res.Points = append(res.Points, tp)
	}
	for _, e := range events {
		tp := TrialPoint{Name: e.Title, Event: true, Tags: e.Tags,
			Rules: t.verdicts(rules, e.Title, strings.Join(e.Tags, ","))}
		rf := newRoutedFlush(0, t.cfg.Daemon.Interval, t.cfg.Routing.Router, newBatches(len(t.sinks)))
		rf.Event(e)
		tp.Sinks = t.outcomes(rf, func(c *pb.FlushChunk) (string, []string, bool) {
			if len(c.Events) == 0 {
				return "", nil, false
			}
			return c.Events[0].Title, c.Events[0].Tags, true
		})
		res.Points = append(res.Points, tp)
	}
	return nil
}

// outcomes finishes a flush of one point and reads what each sink got of
// it: the point, as found in its chunks, or a drop by its policy.
func (t *Trial) outcomes(rf *routedFlush, find func(*pb.FlushChunk) (string, []string, bool)) []SinkResult {
	finish(rf)
	out := make([]SinkResult, len(t.sinks))
	for i, b := range rf.batches {
		r := &out[i]
		r.Sink = t.sinks[i]
		chunks, _, _ := b.Wait(context.Background()) // closed: no wait
		for _, c := range chunks {
			if name, tags, ok := find(c); ok {
				r.Routed, r.Name, r.Tags = true, name, tags
				break
			}
		}
		for why, n := range rf.dropped[i] {
			if n > 0 {
				r.Routed, r.Dropped = true, match.Reason(why)
			}
		}
	}
	return out
}

func splitTrialTags(tags string) []string {
	if tags == "" {
		return nil
	}
	return strings.Split(tags, ",")
}
