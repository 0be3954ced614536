package match

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func must(t testing.TB, k Kind, v string, unset bool) Matcher {
	t.Helper()
	m, err := Compile(k, v, unset)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNameMatchers(t *testing.T) {
	f := func(k Kind, value, name, suffix string, want bool) {
		t.Helper()
		m := must(t, k, value, false)
		var buf []byte
		if got := m.matchName(name, suffix, &buf); got != want {
			t.Errorf("%s on %q+%q = %v, want %v", m.String(), name, suffix, got, want)
		}
		// Matching the parts is matching the whole name.
		if got := m.match(name + suffix); got != want {
			t.Errorf("%s on %q = %v, want %v", m.String(), name+suffix, got, want)
		}
	}
	f(Any, "", "", "", true)
	f(Any, "", "x", ".max", true)
	f(Exact, "pay.x", "pay.x", "", true)
	f(Exact, "pay.x", "pay.x", ".max", false)
	f(Exact, "pay.x.max", "pay.x", ".max", true)
	f(Exact, "pay.x.max", "pay.x", ".min", false)
	f(Exact, "pay.x.max", "pay", ".x.max", true)
	f(Exact, "pay", "pay.x", "", false)
	f(Prefix, "pay.", "pay.charge", "", true)
	f(Prefix, "pay.", "payroll", "", false)
	f(Prefix, "pay.", "pay", ".count", true)
	f(Prefix, "pay.c", "pay", ".count", true)
	f(Prefix, "pay.m", "pay", ".count", false)
	f(Prefix, "pay.count.", "pay", ".count", false)
	f(Prefix, "", "x", "", true)
	f(Regex, `^pay\.(charge|refund)$`, "pay.refund", "", true)
	f(Regex, `^pay\.(charge|refund)$`, "pay.refunds", "", false)
	f(Regex, `99percentile$`, "lat", ".99percentile", true)
	f(Regex, `charge`, "pay.charge.max", "", true)     // unanchored, as Go's regexp and Veneur
	f(Regex, `^lat\.99`, "lat", ".99percentile", true) // the anchored prefix spans name and suffix
	f(Regex, `^lat\.99`, "la", "t.99percentile", true)
	f(Regex, `^lat\.99`, "lat", ".50percentile", false)
	f(Regex, `^lax`, "lat", ".x", false)
	f(Regex, `^la`, "lat", ".x", true)
	f(Regex, `99percentile$`, "lat", ".99percentile", true) // the anchored suffix spans name and suffix
	f(Regex, `t\.99percentile$`, "lat", ".99percentile", true)
	f(Regex, `at\.99percentile$`, "lat", ".99percentile", true)
	f(Regex, `xat\.99percentile$`, "lat", ".99percentile", false)
	f(Regex, `count$`, "lat", ".50percentile", false)
	f(Regex, `^lat\.count$`, "lat", ".count", true)
}

func TestRegexMustCompile(t *testing.T) {
	if _, err := Compile(Regex, "pay.(", false); err == nil {
		t.Fatal("compiled an unbalanced regex")
	}
}

func cond(name Matcher, tags ...Matcher) Condition { return Condition{Name: name, Tags: tags} }

func TestTagMatchers(t *testing.T) {
	f := func(m Matcher, tags string, want bool) {
		t.Helper()
		if got := m.holds(tags); got != want {
			t.Errorf("%s on [%s] = %v, want %v", m.String(), tags, got, want)
		}
	}
	f(must(t, Exact, "team:pay", false), "env:prod,team:pay", true)
	f(must(t, Exact, "team:pay", false), "env:prod,team:payments", false)
	f(must(t, Exact, "team:pay", false), "", false)
	f(must(t, Prefix, "team:", false), "env:prod,team:x", true)
	f(must(t, Prefix, "canary", false), "canary", true) // a tag with no value
	f(must(t, Regex, `^az:us-`, false), "az:eu-1,az:us-2", true)
	f(must(t, Regex, `^az:us-`, false), "az:eu-1", false)
	// unset: no tag may match.
	f(must(t, Prefix, "canary", true), "env:prod,team:x", true)
	f(must(t, Prefix, "canary", true), "canary:yes,env:prod", false)
	f(must(t, Prefix, "canary", true), "", true)
	f(must(t, Exact, "a", true), "ab", true)
	// Searching the joined tags finds whole tags only.
	f(must(t, Exact, "b:1", false), "ab:1,b:12", false)
	f(must(t, Exact, "b:1", false), "ab:1,b:12,b:1", true)
	f(must(t, Exact, "a,b", false), "a,b", false) // no tag holds a comma
	f(must(t, Prefix, "a,b", false), "a,bc", false)
	f(must(t, Prefix, "b", false), "ab,cb", false)
	f(must(t, Prefix, "b", false), "ab,cb,bz", true)
	f(must(t, Exact, "x", false), "x", true)
	f(must(t, Exact, "x", false), "xx,x", true)
	f(must(t, Prefix, "", false), "", false)
	f(must(t, Prefix, "", false), "a", true)
	f(must(t, Exact, "", false), "a", false)
}

func TestRuleSemantics(t *testing.T) {
	pay := cond(must(t, Prefix, "pay.", false), must(t, Exact, "team:payments", false), must(t, Prefix, "canary", true))
	ops := cond(must(t, Any, "", false), must(t, Exact, "team:ops", false))
	r := Rule{Name: "r", Match: []Condition{pay, ops}}
	f := func(name, tags string, want bool) {
		t.Helper()
		if got := r.Matches(name, "", tags); got != want {
			t.Errorf("%q [%s] = %v, want %v", name, tags, got, want)
		}
	}
	f("pay.charge", "team:payments", true)             // every matcher of the first condition
	f("pay.charge", "canary:1,team:payments", false)   // AND: unset fails
	f("pay.charge", "team:web", false)                 // AND: a tag missing
	f("web.hits", "team:payments", false)              // AND: the name
	f("web.hits", "team:ops", true)                    // OR: the second condition
	f("pay.charge", "canary:1,team:ops", true)         // OR: the second holds where the first fails
	f("web.hits", "team:ops,team:payments", true)      // several tags, one matching
	f("pay.charge", "team:ops,team:payments", true)    // both hold
	f("pay.charge", "env:prod,team:payments,x", true)  // tags around the one matched
	f("pay.charge", "team:payments,zzz:canary", true)  // prefix of a tag, not a substring
	f("pay.charge", "team:payments,canary", false)     // a bare tag
	f("pay.charge", "", false)                         // no tags at all
	f("pay.charge", "team:payments,canary-x:1", false) // prefix "canary" takes "canary-x:1"
}

func TestRouteUnion(t *testing.T) {
	// Sinks 0 (datadog), 1 (archive), 2 (debug).
	r := &Router{Sinks: []string{"d", "a", "g"}, Rules: []Rule{
		{Name: "pay", Match: []Condition{cond(must(t, Prefix, "pay.", false))}, Matched: 1 << 0, NotMatched: 1 << 1},
		{Name: "debug", Match: []Condition{cond(must(t, Any, "", false), must(t, Exact, "debug", false))}, Matched: 1 << 2},
	}}
	x := r.Routing()
	f := func(name, tags string, want Set) {
		t.Helper()
		if got := x.Route(name, "", tags); got != want {
			t.Errorf("%q [%s] -> %03b, want %03b", name, tags, got, want)
		}
	}
	f("pay.charge", "", 0b001)
	f("web.hits", "", 0b010)
	f("pay.charge", "debug", 0b101)
	f("web.hits", "debug", 0b110)
	f("pay.charge", "env:prod", 0b001)

	if got := (&Router{Sinks: []string{"a", "b", "c"}}).Routing().Route("x", "", ""); got != 0b111 {
		t.Errorf("no rule: %03b, want every sink", got)
	}
	none := &Router{Sinks: []string{"a"}, Rules: []Rule{{Name: "r", Match: []Condition{cond(must(t, Exact, "x", false))}, Matched: 1}}}
	if got := none.Routing().Route("y", "", ""); got != 0 {
		t.Errorf("a point no rule sends anywhere goes to %b", got)
	}
}

// TestRouteTagCache: the points of a series share their tags string, and
// the tag matchers are evaluated once for it; equal tags in another string,
// and other tags, are evaluated anew.
func TestRouteTagCache(t *testing.T) {
	r := &Router{Sinks: []string{"a", "b"}, Rules: []Rule{
		{Name: "r", Match: []Condition{cond(must(t, Any, "", false), must(t, Exact, "k:v", false))}, Matched: 1, NotMatched: 2},
	}}
	x := r.Routing()
	tags := strings.Clone("k:v")
	for _, suffix := range []string{".min", ".max", ".count"} {
		if got := x.Route("h", suffix, tags); got != 1 {
			t.Fatalf("h%s -> %b", suffix, got)
		}
	}
	if got := x.Route("h", "", strings.Clone("k:w")); got != 2 {
		t.Fatalf("other tags -> %b", got)
	}
	if got := x.Route("h", "", strings.Clone("k:v")); got != 1 {
		t.Fatalf("equal tags in another string -> %b", got)
	}
	if got := x.Route("h", "", ""); got != 2 {
		t.Fatalf("no tags -> %b", got)
	}
}

func TestDrops(t *testing.T) {
	d := Drops{
		{Name: "debug", Match: []Condition{cond(must(t, Prefix, "debug.", false))}},
		{Name: "canary", Match: []Condition{cond(must(t, Any, "", false), must(t, Exact, "canary", false))}},
	}
	f := func(name, tags string, want int) {
		t.Helper()
		if got := d.Take([]byte(name), []byte(tags)); got != want {
			t.Errorf("%q [%s] taken by %d, want %d", name, tags, got, want)
		}
	}
	f("debug.x", "", 0)
	f("debug.x", "canary", 0) // the first rule that takes it
	f("web.x", "canary", 1)
	f("web.x", "canary:no", -1)
	f("web.x", "", -1)
	if got := Drops(nil).Take([]byte("x"), nil); got != -1 {
		t.Errorf("no rules took a sample: %d", got)
	}
}

func TestExplain(t *testing.T) {
	r := Rule{Name: "pay", Match: []Condition{
		cond(must(t, Prefix, "pay.", false), must(t, Exact, "team:payments", false), must(t, Prefix, "canary", true)),
		cond(must(t, Regex, "^billing", false)),
	}}
	f := func(name, tags string, matched bool, why string) {
		t.Helper()
		gotM, gotWhy := r.Explain(name, tags)
		if gotM != matched || gotWhy != why {
			t.Errorf("%q [%s]:\n got %v %s\nwant %v %s", name, tags, gotM, gotWhy, matched, why)
		}
	}
	f("pay.x", "team:payments", true, `match 1: name prefix("pay."), tag exact("team:payments"), tag unset(prefix("canary"))`)
	f("pay.x", "canary:1,team:payments", false, `match 1: tag unset(prefix("canary")) fails: "canary:1" matches; match 2: name regex("^billing") does not match`)
	f("pay.x", "team:web", false, `match 1: tag exact("team:payments") matches no tag; match 2: name regex("^billing") does not match`)
	f("billing.x", "", true, `match 2: name regex("^billing")`)
}

func TestPolicyTags(t *testing.T) {
	f := func(p Policy, tags, want string, why Reason) {
		t.Helper()
		got, gotWhy := p.Tags(tags)
		if got != want || gotWhy != why {
			t.Errorf("%+v on [%s] = [%s] %q, want [%s] %q", p, tags, got, gotWhy, want, why)
		}
	}
	add := Policy{AddTags: []string{"env:prod", "flag"}}
	f(add, "", "env:prod,flag", Kept)
	f(add, "a:1", "a:1,env:prod,flag", Kept)
	f(add, "env:dev,z:1", "env:prod,flag,z:1", Kept)             // upserted: replaced, not duplicated
	f(add, "env,flag:x", "env:prod,flag", Kept)                  // a bare key, a key with a value
	f(add, "env:dev,env:qa", "env:prod,flag", Kept)              // every tag of the key
	f(add, "environment:x", "env:prod,environment:x,flag", Kept) // a key, not a prefix
	strip := Policy{StripTags: []string{"host", "pod"}}
	f(strip, "host:a,pod,zone:b", "zone:b", Kept)
	f(strip, "hostname:a", "hostname:a", Kept)
	f(strip, "host:a", "", Kept)
	both := Policy{StripTags: []string{"env"}, AddTags: []string{"env:prod"}}
	f(both, "env:dev", "env:prod", Kept) // strip, then add
	// Limits: exactly reached is kept, one past is dropped.
	f(Policy{MaxTags: 2}, "a,b", "a,b", Kept)
	f(Policy{MaxTags: 2}, "a,b,c", "a,b,c", TooManyTags)
	f(Policy{MaxTags: 2, AddTags: []string{"c:1"}}, "a,b", "a,b,c:1", TooManyTags) // counted after adding
	f(Policy{MaxTags: 2, StripTags: []string{"c"}}, "a,b,c:1", "a,b", Kept)        // after stripping
	f(Policy{MaxTagLength: 3}, "abc,d", "abc,d", Kept)
	f(Policy{MaxTagLength: 3}, "abcd,e", "abcd,e", TagTooLong)
	f(Policy{MaxTagLength: 3, AddTags: []string{"e:12"}}, "a", "a,e:12", TagTooLong)
}

func TestPolicyLeavesTagsAlone(t *testing.T) {
	tags := strings.Clone("a:1,b:2")
	out, _ := (&Policy{StripTags: []string{"c"}, MaxTags: 5}).Tags(tags)
	if !sameString(out, tags) {
		t.Error("tags the policy does not change were copied")
	}
}

func TestPolicyName(t *testing.T) {
	p := Policy{MaxNameLength: 9}
	if p.Name("lat", ".99percentile") != NameTooLong {
		t.Error("the suffix does not count in the name's length")
	}
	if p.Name("123456789", "") != Kept {
		t.Error("a name of exactly the limit was dropped")
	}
	if p.Name("1234567890", "") != NameTooLong {
		t.Error("a name one past the limit was kept")
	}
}

func TestRewrite(t *testing.T) {
	w := (&Policy{AddTags: []string{"env:prod"}, MaxNameLength: 6}).Rewrite()
	tags := strings.Clone("a:1")
	out, why := w.Point("h", ".max", tags)
	if out != "a:1,env:prod" || why != Kept {
		t.Fatalf("got [%s] %q", out, why)
	}
	again, _ := w.Point("h", ".min", tags)
	if !sameString(out, again) {
		t.Error("the points of a series got different tag strings")
	}
	if _, why := w.Point("h", ".count", tags); why != NameTooLong {
		t.Errorf("h.count is 7 bytes, over 6: %q", why)
	}
	if out, _ := w.Point("h", "", strings.Clone("a:2")); out != "a:2,env:prod" {
		t.Errorf("the next series got [%s]", out)
	}
}

func TestEventTags(t *testing.T) {
	in := []string{"env:dev", "b"}
	p := Policy{AddTags: []string{"env:prod"}}
	out, why := p.EventTags(in)
	if strings.Join(out, ",") != "b,env:prod" || why != Kept {
		t.Errorf("got %v %q", out, why)
	}
	if in[0] != "env:dev" {
		t.Error("the event's own tags were changed")
	}
	if _, why := (&Policy{MaxTags: 1}).EventTags(in); why != TooManyTags {
		t.Errorf("two tags over a limit of one: %q", why)
	}
}

func TestMatcherString(t *testing.T) {
	for m, want := range map[*Matcher]string{
		{Kind: Any}:                             "any()",
		{Kind: Exact, Value: `a"b`}:             `exact("a\"b")`,
		{Kind: Prefix, Value: "c", Unset: true}: `unset(prefix("c"))`,
	} {
		if got := m.String(); got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

func TestAnchoredLiterals(t *testing.T) {
	for expr, want := range map[string][2]string{
		`^bench\.timer\..*99percentile$`: {"bench.timer.", "99percentile"},
		`^pay\.(a|b)`:                    {"pay.", ""},
		`pay\.x`:                         {"", ""}, // unanchored: a match starts and ends anywhere
		`^(a|b)x`:                        {"", ""},
		`(?i)^abc`:                       {"", ""},
		`^a|^b`:                          {"", ""},
		`(?m)^abc`:                       {"", ""},
		`(?m)abc$`:                       {"", ""},
		`^abc`:                           {"abc", ""},
		`\.(max|min)$`:                   {"", ""},
		`count$`:                         {"", "count"},
		`^abc$`:                          {"abc", "abc"},
		`^a.c$`:                          {"a", "c"},
	} {
		if lead, tail := anchoredLiterals(expr); lead != want[0] || tail != want[1] {
			t.Errorf("%s: %q %q, want %q %q", expr, lead, tail, want[0], want[1])
		}
	}
}

// BenchmarkDropsTake is a drop rule on a tag checked against a sample that
// it does not take, as every sample of a source is.
func BenchmarkDropsTake(b *testing.B) {
	d := Drops{{Name: "canary", Match: []Condition{cond(must(b, Any, "", false), must(b, Prefix, "canary", false))}}}
	name, tags := []byte("bench.counter.1234"), []byte("t1:v4,t2:v34,t3:v234")
	b.ReportAllocs()
	for b.Loop() {
		d.Take(name, tags)
	}
}

// TestFastPathsAgree checks the matchers' shortcuts (searching the joined
// tags, matching a name in two parts, a regex's anchored literals) against
// the plain definitions, over random names and tags of a small alphabet, so
// that near misses are common.
func TestFastPathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(max int) string {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = "ab:,."[rng.IntN(5)]
		}
		return string(b)
	}
	for range 20000 {
		var tags []string
		for range rng.IntN(4) {
			if t := strings.Trim(word(4), ","); t != "" && !strings.Contains(t, ",") {
				tags = append(tags, t)
			}
		}
		joined := strings.Join(tags, ",")
		v := word(3)
		for _, k := range []Kind{Exact, Prefix} {
			m := must(t, k, v, false)
			want := false
			for _, tag := range tags {
				want = want || (k == Exact && tag == v) || (k == Prefix && strings.HasPrefix(tag, v))
			}
			if got := m.anyTag(joined); got != want {
				t.Fatalf("%s on [%s]: %v, want %v", m.String(), joined, got, want)
			}
		}
		name, suffix := word(6), word(3)
		for _, expr := range []string{"^" + regexp.QuoteMeta(v), regexp.QuoteMeta(v) + "$", "^" + regexp.QuoteMeta(v) + ".*" + regexp.QuoteMeta(suffix) + "$"} {
			m := must(t, Regex, expr, false)
			var buf []byte
			want := regexp.MustCompile(expr).MatchString(name + suffix)
			if got := m.matchName(name, suffix, &buf); got != want {
				t.Fatalf("%s on %q+%q: %v, want %v", expr, name, suffix, got, want)
			}
			if got := m.match(name + suffix); got != want {
				t.Fatalf("%s on %q: %v, want %v", expr, name+suffix, got, want)
			}
		}
		for _, k := range []Kind{Exact, Prefix} {
			m := must(t, k, v, false)
			var buf []byte
			want := m.match(name + suffix)
			if got := m.matchName(name, suffix, &buf); got != want {
				t.Fatalf("%s on %q+%q: %v, want %v", m.String(), name, suffix, got, want)
			}
		}
	}
}

// TestRouteIsTheUnionOfRules: Route, with its per-series and per-tag-set
// memory, gives what each rule's Matches says, for routers within a word of
// conditions and beyond it.
func TestRouteIsTheUnionOfRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{3, 70} {
		// A sink per rule (modulo 64), so that the union shows each
		// rule's verdict; a few rules send elsewhere when not matched.
		r := &Router{Sinks: make([]string, MaxSinks)}
		for i := range n {
			rule := Rule{Name: fmt.Sprint(i), Match: []Condition{
				cond(must(t, Prefix, fmt.Sprint(i%7), false), must(t, Exact, fmt.Sprintf("k:%d", i%5), i%2 == 0)),
			}, Matched: Set(1) << uint(i%MaxSinks)}
			if i%10 == 0 {
				rule.NotMatched = Set(1) << uint((i+33)%MaxSinks)
			}
			r.Rules = append(r.Rules, rule)
		}
		x := r.Routing()
		for range 2000 {
			name := fmt.Sprint(rng.IntN(10))
			tags := fmt.Sprintf("k:%d", rng.IntN(6))
			tags = strings.Clone(tags) // a new string, as each series has
			var want Set
			for i := range r.Rules {
				if r.Rules[i].Matches(name, "", tags) {
					want |= r.Rules[i].Matched
				} else {
					want |= r.Rules[i].NotMatched
				}
			}
			if got := x.Route(name, "", tags); got != want {
				t.Fatalf("%d rules, %q [%s]: %b, want %b", n, name, tags, got, want)
			}
		}
	}
}
