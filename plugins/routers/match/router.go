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
// per series, and the name matchers per point. Not safe for concurrent use.
type Routing struct {
	r      *Router
	conds  []*Condition // every rule's conditions, in order
	tagsOK []bool       // of each of conds, for tags
	tags   string
	primed bool
	buf    []byte
}

// Routing returns an evaluation state for one flush.
func (r *Router) Routing() *Routing {
	x := &Routing{r: r}
	for i := range r.Rules {
		for j := range r.Rules[i].Match {
			x.conds = append(x.conds, &r.Rules[i].Match[j])
		}
	}
	x.tagsOK = make([]bool, len(x.conds))
	return x
}

// Route returns the sinks of a point named name+suffix with tags (sorted,
// comma-joined). With no rule, every sink.
func (x *Routing) Route(name, suffix, tags string) Set {
	r := x.r
	if len(r.Rules) == 0 {
		return r.All()
	}
	if !x.primed || !sameString(tags, x.tags) {
		for i, c := range x.conds {
			x.tagsOK[i] = c.tagsHold(tags)
		}
		x.tags, x.primed = tags, true
	}
	var set Set
	k := 0
	for i := range r.Rules {
		rule := &r.Rules[i]
		matched := false
		for j := range rule.Match {
			if !matched && x.tagsOK[k+j] && rule.Match[j].Name.matchName(name, suffix, &x.buf) {
				matched = true
			}
		}
		k += len(rule.Match)
		if matched {
			set |= rule.Matched
		} else {
			set |= rule.NotMatched
		}
	}
	return set
}
