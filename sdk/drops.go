package sdk

import (
	"fmt"

	"github.com/veneurd/veneurd/plugins/routers/match"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Drop rules travel to every source process in its RunRequest, and the
// source's Writers apply them (see Writer.Metric): a dropped sample costs
// neither memory nor flush time, whichever source, third-party ones
// included, reads it.

// DropRulesToProto encodes drop rules for a RunRequest.
func DropRulesToProto(d match.Drops) []*pb.DropRule {
	out := make([]*pb.DropRule, len(d))
	for i, r := range d {
		pr := &pb.DropRule{Name: r.Name}
		for _, c := range r.Match {
			pc := &pb.Condition{Name: MatcherToProto(c.Name)}
			for _, t := range c.Tags {
				pc.Tags = append(pc.Tags, MatcherToProto(t))
			}
			pr.Match = append(pr.Match, pc)
		}
		out[i] = pr
	}
	return out
}

// MatcherToProto encodes a matcher, as drop rules and taps send it.
func MatcherToProto(m match.Matcher) *pb.Matcher {
	return &pb.Matcher{Kind: pb.Matcher_Kind(m.Kind), Value: m.Value, Unset: m.Unset}
}

// DropRulesFromProto compiles the drop rules of a RunRequest.
func DropRulesFromProto(rules []*pb.DropRule) (match.Drops, error) {
	var d match.Drops
	for _, pr := range rules {
		r := match.Rule{Name: pr.Name}
		for _, pc := range pr.Match {
			name, err := matcherFromProto(pc.GetName())
			if err != nil {
				return nil, fmt.Errorf("drop rule %q: %w", pr.Name, err)
			}
			c := match.Condition{Name: name}
			for _, pt := range pc.Tags {
				t, err := matcherFromProto(pt)
				if err != nil {
					return nil, fmt.Errorf("drop rule %q: %w", pr.Name, err)
				}
				c.Tags = append(c.Tags, t)
			}
			r.Match = append(r.Match, c)
		}
		d = append(d, r)
	}
	return d, nil
}

func matcherFromProto(m *pb.Matcher) (match.Matcher, error) {
	if m == nil {
		return match.Compile(match.Any, "", false)
	}
	return match.Compile(match.Kind(m.Kind), m.Value, m.Unset)
}
