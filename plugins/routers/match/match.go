// Package match is veneurd's in-process router: metric_sink_routing rules
// choose the sinks of each flushed point, a sink's tag policy rewrites what
// that sink receives, and drop rules discard samples before they are
// aggregated.
//
// Routing is per point, so it runs in the daemon, not in a plugin process.
// Rules are compiled once, when a pipeline loads, and evaluating them
// allocates nothing. Drop rules are evaluated in every source process (the
// sdk applies them as a source writes, third-party sources included), so the
// package depends on the standard library alone.
//
// The semantics are Veneur's (util/matcher): a rule holds match conditions;
// the name and tag matchers of one condition are ANDed, conditions are ORed.
// A tag matcher holds when some tag of the point matches it; wrapped in
// unset(...), when none does. A point that matches a rule goes to the rule's
// matched sinks, otherwise to its not_matched sinks, and a point's sinks are
// the union over all rules.
package match

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unsafe"
)

// Kind is what a matcher compares.
type Kind uint8

// Matcher kinds, as written in a pipeline: any(), exact("..."),
// prefix("..."), regex("...").
const (
	Any Kind = iota
	Exact
	Prefix
	Regex
)

var kindNames = [...]string{Any: "any", Exact: "exact", Prefix: "prefix", Regex: "regex"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// Kinds lists the matcher kinds' names.
func Kinds() []string { return kindNames[:] }

// Matcher matches a metric name or one tag ("key:value", or "key").
type Matcher struct {
	Kind  Kind
	Value string
	// Unset inverts a tag matcher: it holds when no tag matches.
	Unset bool
	re    *regexp.Regexp
	// search is set for an exact or prefix matcher that anyTag finds by
	// searching the joined tags; never for one whose value holds a ',',
	// which no tag does.
	search, never bool
	// lead and tail are what every match of a regex anchored at the start
	// or the end of the text begins or ends with: a string without them is
	// refused without running the regex.
	lead, tail string
}

// Compile returns a matcher; for Regex, an error if value does not compile.
// A regex matches anywhere in the string unless anchored, as Go's regexp
// and Veneur do.
func Compile(kind Kind, value string, unset bool) (Matcher, error) {
	m := Matcher{Kind: kind, Value: value, Unset: unset}
	switch kind {
	case Exact, Prefix:
		m.never = strings.IndexByte(value, ',') >= 0
		m.search = value != "" && !m.never
	case Any:
	case Regex:
		re, err := regexp.Compile(value)
		if err != nil {
			return m, err
		}
		m.re = re
		m.lead, m.tail = anchoredLiterals(value)
	default:
		return m, fmt.Errorf("unknown matcher kind %d", kind)
	}
	return m, nil
}

// String writes the matcher as a pipeline does: prefix("pay."),
// unset(exact("canary")).
func (m *Matcher) String() string {
	s := m.Kind.String() + "()"
	if m.Kind != Any {
		s = m.Kind.String() + "(" + strconv.Quote(m.Value) + ")"
	}
	if m.Unset {
		s = "unset(" + s + ")"
	}
	return s
}

// match reports whether s matches, ignoring Unset.
func (m *Matcher) match(s string) bool {
	switch m.Kind {
	case Any:
		return true
	case Exact:
		return s == m.Value
	case Prefix:
		return strings.HasPrefix(s, m.Value)
	default:
		return strings.HasPrefix(s, m.lead) && strings.HasSuffix(s, m.tail) && m.re.MatchString(s)
	}
}

// anchoredLiterals returns the literal text a regex anchored at the start
// of the text (^abc...) matches first, and the literal text one anchored at
// its end (...xyz$) matches last; "" where it is not anchored so.
func anchoredLiterals(expr string) (lead, tail string) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", ""
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return "", ""
	}
	subs := re.Sub
	literal := func(sub *syntax.Regexp) bool { return sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 }
	if subs[0].Op == syntax.OpBeginText {
		var runes []rune
		for _, sub := range subs[1:] {
			if !literal(sub) {
				break
			}
			runes = append(runes, sub.Rune...)
		}
		lead = string(runes)
	}
	if subs[len(subs)-1].Op == syntax.OpEndText {
		var parts []string
		for i := len(subs) - 2; i >= 0 && literal(subs[i]); i-- {
			parts = append([]string{string(subs[i].Rune)}, parts...)
		}
		tail = strings.Join(parts, "")
	}
	return lead, tail
}

// matchName reports whether name+suffix matches, without building it for
// any kind but Regex; buf is scratch space for that.
func (m *Matcher) matchName(name, suffix string, buf *[]byte) bool {
	if suffix == "" {
		return m.match(name)
	}
	switch m.Kind {
	case Any:
		return true
	case Exact:
		v := m.Value
		return len(v) == len(name)+len(suffix) && v[:len(name)] == name && v[len(name):] == suffix
	case Prefix:
		v := m.Value
		if len(v) <= len(name) {
			return strings.HasPrefix(name, v)
		}
		return strings.HasPrefix(v, name) && strings.HasPrefix(suffix, v[len(name):])
	default:
		if len(m.lead) <= len(name) {
			if !strings.HasPrefix(name, m.lead) {
				return false
			}
		} else if !strings.HasPrefix(m.lead, name) || !strings.HasPrefix(suffix, m.lead[len(name):]) {
			return false
		}
		if len(m.tail) <= len(suffix) {
			if !strings.HasSuffix(suffix, m.tail) {
				return false
			}
		} else if !strings.HasSuffix(m.tail, suffix) || !strings.HasSuffix(name, m.tail[:len(m.tail)-len(suffix)]) {
			return false
		}
		*buf = append(append((*buf)[:0], name...), suffix...)
		return m.re.Match(*buf)
	}
}

// anyTag reports whether some tag of tags (comma-joined) matches.
func (m *Matcher) anyTag(tags string) bool {
	switch {
	case m.search:
		return hasTag(tags, m.Value, m.Kind == Exact)
	case m.never:
		return false
	}
	for rest := tags; rest != ""; {
		var t string
		t, rest, _ = strings.Cut(rest, ",")
		if m.match(t) {
			return true
		}
	}
	return false
}

// hasTag reports whether tags (comma-joined) hold the tag v, or with whole
// false a tag that begins with v, by searching the whole string rather than
// splitting it: this is the common case, and the cost of routing is mostly
// tag matching. v holds no ','.
func hasTag(tags, v string, whole bool) bool {
	if !strings.Contains(tags, v) { // most often: one search, and no tag of it
		return false
	}
	for i := 0; i <= len(tags)-len(v); {
		j := strings.Index(tags[i:], v)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(v)
		if (j == 0 || tags[j-1] == ',') && (!whole || end == len(tags) || tags[end] == ',') {
			return true
		}
		i = j + 1
	}
	return false
}

// holds reports whether the tag matcher holds for tags (comma-joined).
func (m *Matcher) holds(tags string) bool { return m.anyTag(tags) != m.Unset }

// Condition is one match block: its name matcher and every tag matcher must
// hold.
type Condition struct {
	Name Matcher // Any when the block names none
	Tags []Matcher
}

// tagsHold reports whether every tag matcher holds for tags.
func (c *Condition) tagsHold(tags string) bool {
	for i := range c.Tags {
		if !c.Tags[i].holds(tags) {
			return false
		}
	}
	return true
}

// Rule is a metric_sink_routing block, or a drop rule (which has no sinks).
type Rule struct {
	Name string
	// Match holds the conditions, ORed; a rule has at least one.
	Match      []Condition
	Matched    Set
	NotMatched Set
}

// Matches reports whether a name (name+suffix, the point's name) and tags
// (sorted, comma-joined) match the rule.
func (r *Rule) Matches(name, suffix, tags string) bool {
	var buf []byte
	return r.matches(name, suffix, tags, &buf)
}

// matches is Matches with scratch space for a regex on name+suffix.
func (r *Rule) matches(name, suffix, tags string, buf *[]byte) bool {
	for i := range r.Match {
		c := &r.Match[i]
		if c.Name.matchName(name, suffix, buf) && c.tagsHold(tags) {
			return true
		}
	}
	return false
}

// sinks returns the sinks a point goes to by the rule's verdict.
func (r *Rule) sinks(matched bool) Set {
	if matched {
		return r.Matched
	}
	return r.NotMatched
}

// Explain says whether a point matches the rule and which matchers decided
// it: those of the first condition that holds, or, when none holds, the
// first matcher of each condition that failed. Not for hot paths.
func (r *Rule) Explain(name, tags string) (bool, string) {
	var failed []string
	for i := range r.Match {
		c := &r.Match[i]
		label := ""
		if len(r.Match) > 1 {
			label = "match " + strconv.Itoa(i+1) + ": "
		}
		if !c.Name.match(name) {
			failed = append(failed, label+"name "+c.Name.String()+" does not match")
			continue
		}
		why := ""
		for j := range c.Tags {
			t := &c.Tags[j]
			if t.holds(tags) {
				continue
			}
			if t.Unset {
				why = "tag " + t.String() + " fails: " + strconv.Quote(firstMatch(t, tags)) + " matches"
			} else {
				why = "tag " + t.String() + " matches no tag"
			}
			break
		}
		if why != "" {
			failed = append(failed, label+why)
			continue
		}
		held := []string{"name " + c.Name.String()}
		for j := range c.Tags {
			held = append(held, "tag "+c.Tags[j].String())
		}
		return true, label + strings.Join(held, ", ")
	}
	return false, strings.Join(failed, "; ")
}

func firstMatch(m *Matcher, tags string) string {
	for rest := tags; rest != ""; {
		var t string
		t, rest, _ = strings.Cut(rest, ",")
		if m.match(t) {
			return t
		}
	}
	return ""
}

// Drops are the drop rules of a pipeline, applied to samples before they
// are aggregated.
type Drops []Rule

// Take returns the index of the first rule that drops a sample of name and
// tags (sorted, comma-joined), or -1. The bytes are only read.
func (d Drops) Take(name, tags []byte) int {
	n, t := unsafeString(name), unsafeString(tags)
	for i := range d {
		if d[i].matches(n, "", t, nil) { // no suffix: the scratch space is not used
			return i
		}
	}
	return -1
}

// unsafeString views b as a string, for reading while b is not written.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// sameString reports whether a and b are the same string (not merely
// equal): the points of one series share their tags string.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// MatchesName reports whether name holds for the matcher, for a tap's
// name pattern (see ParseName).
func (m *Matcher) MatchesName(name string) bool { return m.match(name) != m.Unset }

// ParseName compiles a name pattern as `veneurd tap` takes it: "" is any
// name, "pay.*" the names that start with "pay.", "/^pay\.(a|b)$/" a
// regular expression, anything else exactly that name.
func ParseName(pattern string) (Matcher, error) {
	switch {
	case pattern == "":
		return Compile(Any, "", false)
	case len(pattern) >= 2 && strings.HasPrefix(pattern, "/") && strings.HasSuffix(pattern, "/"):
		return Compile(Regex, pattern[1:len(pattern)-1], false)
	case strings.HasSuffix(pattern, "*"):
		return Compile(Prefix, strings.TrimSuffix(pattern, "*"), false)
	}
	return Compile(Exact, pattern, false)
}
