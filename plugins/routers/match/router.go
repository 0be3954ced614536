package match

import (
	"math/bits"
)

// Set is a set of sinks: bit i stands for the pipeline's i-th sink.
type Set uint64

// MaxSinks is how many sinks a routed pipeline may have.
const MaxSinks = 64

// Has reports whether sink i is in the set.
func (s Set) Has(i int) bool { return s&(1<<uint(i)) != 0 }

// Len returns the number of sinks in the set.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// AllOf returns the set of the first n sinks.
func AllOf(n int) Set {
	if n >= MaxSinks {
		return ^Set(0)
	}
	return Set(1)<<uint(n) - 1
}

// Router chooses the sinks of each flushed point. It is compiled once per
// pipeline and shared; a flush evaluates it through its own Routing.
type Router struct {
	Rules []Rule
	// Sinks are the pipeline's sinks' addresses, in the order of their bits.
	Sinks []string
	// Policies are the sinks' tag policies, by index; nil when no sink has
	// one.
	Policies []Policy
}

// All returns the set of every sink.
func (r *Router) All() Set { return AllOf(len(r.Sinks)) }

// Rewritten returns the sinks whose tag policy may change their points.
func (r *Router) Rewritten() Set {
	var s Set
	for i := range r.Policies {
		if !r.Policies[i].IsZero() {
			s |= 1 << uint(i)
		}
	}
	return s
}

// Routing evaluates a Router for one flush. The points of one series come
// in a row with the same tags string, so the tag matchers are evaluated once
// per series, and the name matchers per point; the verdicts on a set of tags
// many series share (a host's, a service's) are remembered for all of them,
// up to maxRewritten sets. Not safe for concurrent use.
type Routing struct {
	r      *Router
	conds  []*Condition // every rule's conditions, in order
	tagsOK uint64       // bit i: conds[i]'s tag matchers hold for tags
	tags   string
	primed bool
	seen   map[string]uint64
	buf    []byte
}

// Routing returns an evaluation state for one flush.
func (r *Router) Routing() *Routing {
	x := &Routing{r: r, seen: map[string]uint64{}}
	for i := range r.Rules {
		for j := range r.Rules[i].Match {
			x.conds = append(x.conds, &r.Rules[i].Match[j])
		}
	}
	return x
}

// tagVerdicts returns the verdicts of the conditions' tag matchers on tags,
// a bit each.
func (x *Routing) tagVerdicts(tags string) uint64 {
	if v, ok := x.seen[tags]; ok {
		return v
	}
	var v uint64
	for i, c := range x.conds {
		if c.tagsHold(tags) {
			v |= 1 << uint(i)
		}
	}
	if len(x.seen) < maxRewritten {
		x.seen[tags] = v
	}
	return v
}

// Route returns the sinks of a point named name+suffix with tags (sorted,
// comma-joined). With no rule, every sink.
func (x *Routing) Route(name, suffix, tags string) Set {
	r := x.r
	if len(r.Rules) == 0 {
		return r.All()
	}
	// The verdicts fit a word for up to 64 conditions; beyond that each
	// point is evaluated whole.
	word := len(x.conds) <= 64
	if word && (!x.primed || !sameString(tags, x.tags)) {
		x.tagsOK, x.tags, x.primed = x.tagVerdicts(tags), tags, true
	}
	var set Set
	k := 0
	for i := range r.Rules {
		rule := &r.Rules[i]
		matched := false
		if !word {
			matched = rule.matches(name, suffix, tags, &x.buf)
		}
		for j := 0; word && !matched && j < len(rule.Match); j++ {
			matched = x.tagsOK&(1<<uint(k+j)) != 0 && rule.Match[j].Name.matchName(name, suffix, &x.buf)
		}
		k += len(rule.Match)
		set |= rule.sinks(matched)
	}
	return set
}
