package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/veneurd/veneurd/plugins/routers/match"
)

// Routing is what a pipeline says of where points go: its
// metric_sink_routing rules (over its sinks, in Config.Sinks's order), its
// sinks' tag policies, and its drop rules.
type Routing struct {
	Router *match.Router
	Drops  match.Drops
}

// Attributes of sink blocks that make the sink's tag policy (see
// match.Policy); veneurd applies it as it hands the sink its points.
const (
	AddTagsAttribute       = "add_tags"
	StripTagsAttribute     = "strip_tags"
	MaxNameLengthAttribute = "max_name_length"
	MaxTagLengthAttribute  = "max_tag_length"
	MaxTagsAttribute       = "max_tags"
)

var (
	routeSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "matched"}, {Name: "not_matched"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "match"}},
	}
	dropSchema  = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "match"}}}
	matchSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "tags"}}}
)

// sinkRef is a sink block's address and where it was declared, as routes
// refer to it.
type sinkRef struct {
	addr  string
	index int // in Config.Sinks; -1 for a block that did not load
}

// routing decodes the metric_sink_routing and drop blocks. sinks are every
// sink block of the pipeline by address, including those that did not load
// (a reference to them is not a second mistake).
func (l *loader) routing(blocks []*hcl.Block, cfg *Config, declared []sinkRef) hcl.Diagnostics {
	var diags hcl.Diagnostics
	r := &match.Router{}
	for _, k := range cfg.Sinks {
		r.Sinks = append(r.Sinks, k.Address())
		r.Policies = append(r.Policies, k.Policy)
	}
	seen := map[string]*hcl.Block{}
	for _, block := range blocks {
		key := block.Type + "." + block.Labels[0]
		if first, ok := seen[key]; ok {
			diags = append(diags, duplicate(block, first, block.Type+" block",
				fmt.Sprintf("A %s block named %q is already declared", block.Type, block.Labels[0])))
			continue
		}
		seen[key] = block
		switch block.Type {
		case "metric_sink_routing":
			rule, d := l.route(block, declared)
			diags = append(diags, d...)
			if !d.HasErrors() {
				r.Rules = append(r.Rules, rule)
			}
		case "drop":
			content, d := block.Body.Content(dropSchema)
			rule := match.Rule{Name: block.Labels[0]}
			d = append(d, l.conditions(block, content.Blocks, &rule)...)
			diags = append(diags, d...)
			if !d.HasErrors() {
				cfg.Routing.Drops = append(cfg.Routing.Drops, rule)
			}
		}
	}
	if len(r.Rules) > 0 && len(cfg.Sinks) > match.MaxSinks {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Too many sinks to route",
			Detail:  fmt.Sprintf("A pipeline with metric_sink_routing may have at most %d sinks; this one has %d.", match.MaxSinks, len(cfg.Sinks)),
			Subject: seen["metric_sink_routing."+r.Rules[0].Name].DefRange.Ptr()})
	}
	if len(r.Rules) > 0 && !diags.HasErrors() {
		var named match.Set
		for _, rule := range r.Rules {
			named |= rule.Matched | rule.NotMatched
		}
		for i, k := range cfg.Sinks {
			if i < match.MaxSinks && !named.Has(i) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Sink receives nothing",
					Detail:  fmt.Sprintf("No metric_sink_routing rule names %s: with routing rules, a sink gets only the points a rule sends it.", k.Address()),
					Subject: k.DeclRange.Ptr()})
			}
		}
	}
	cfg.Routing.Router = r
	return diags
}

// route decodes a metric_sink_routing block.
func (l *loader) route(block *hcl.Block, declared []sinkRef) (match.Rule, hcl.Diagnostics) {
	rule := match.Rule{Name: block.Labels[0]}
	content, diags := block.Body.Content(routeSchema)
	diags = append(diags, l.conditions(block, content.Blocks, &rule)...)
	var n int
	for _, name := range []string{"matched", "not_matched"} {
		attr := content.Attributes[name]
		if attr == nil {
			continue
		}
		set, count, d := sinkSet(attr, declared)
		diags = append(diags, d...)
		n += count
		if name == "matched" {
			rule.Matched = set
		} else {
			rule.NotMatched = set
		}
	}
	if n == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Rule routes to no sink",
			Detail:  fmt.Sprintf("The routing rule %q names no sink: give matched, not_matched or both a list of sinks, such as [sink.localfile.archive].", rule.Name),
			Subject: block.DefRange.Ptr()})
	}
	return rule, diags
}

// conditions decodes a rule's match blocks into rule.Match.
func (l *loader) conditions(block *hcl.Block, matches hcl.Blocks, rule *match.Rule) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if len(matches) == 0 {
		what := "routing rule"
		if block.Type == "drop" {
			what = "drop rule"
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Rule has no match block",
			Detail: fmt.Sprintf("The %s %q needs at least one match block, such as match { name = prefix(\"debug.\") }; several are ORed.",
				what, rule.Name),
			Subject: block.DefRange.Ptr()}}
	}
	for _, mb := range matches {
		content, d := mb.Body.Content(matchSchema)
		diags = append(diags, d...)
		name, tags := content.Attributes["name"], content.Attributes["tags"]
		if name == nil && tags == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty match block",
				Detail:  "A match block needs a name matcher, tags matchers or both; write name = any() to match every point.",
				Subject: mb.DefRange.Ptr()})
			continue
		}
		c := match.Condition{Name: match.Matcher{Kind: match.Any}}
		if name != nil {
			m, d := l.matcher(name.Expr, false)
			diags = append(diags, d...)
			c.Name = m
		}
		if tags != nil {
			elems, d := hcl.ExprList(tags.Expr)
			if d.HasErrors() {
				diags = append(diags, attrError(tags, "Invalid tags matchers",
					`tags is a list of tag matchers, such as [exact("team:payments"), unset(prefix("canary"))].`))
			}
			for _, e := range elems {
				m, d := l.matcher(e, true)
				diags = append(diags, d...)
				c.Tags = append(c.Tags, m)
			}
		}
		rule.Match = append(rule.Match, c)
	}
	return diags
}

// matcher decodes a matcher call: any(), exact("..."), prefix("..."),
// regex("..."), and for tags unset(one of those but any()).
func (l *loader) matcher(expr hcl.Expression, tag bool) (match.Matcher, hcl.Diagnostics) {
	what, kinds := "name", []string{"any", "exact", "prefix", "regex"}
	if tag {
		what, kinds = "tag", []string{"exact", "prefix", "regex", "unset"}
	}
	bad := func(summary, detail string, r hcl.Range) (match.Matcher, hcl.Diagnostics) {
		return match.Matcher{}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}}
	}
	call, d := hcl.ExprCall(expr)
	if d.HasErrors() {
		hint := ""
		if v, d := expr.Value(l.ctx); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
			hint = fmt.Sprintf(" For this exact %s, write exact(%q).", what, v.AsString())
		}
		return bad("Invalid "+what+" matcher",
			fmt.Sprintf("A %s matcher is one of %s, written as a call, such as prefix(\"pay.\").%s", what, calls(kinds), hint), expr.Range())
	}
	unset := false
	if tag && call.Name == "unset" {
		if len(call.Arguments) != 1 {
			return bad("Invalid tag matcher", `unset takes one tag matcher, such as unset(prefix("canary")).`, call.ArgsRange)
		}
		inner, d := hcl.ExprCall(call.Arguments[0])
		if d.HasErrors() || inner.Name == "unset" {
			return bad("Invalid tag matcher", `unset takes one tag matcher: exact("..."), prefix("...") or regex("..."), such as unset(prefix("canary")).`, call.Arguments[0].Range())
		}
		call, unset, kinds = inner, true, kinds[:3]
	}
	kind, ok := match.ParseKind(call.Name)
	if !ok || !contains(kinds, call.Name) {
		detail := fmt.Sprintf("There is no %s matcher %q.%s A %s matcher is one of %s.", what, call.Name, suggest(call.Name, kinds), what, calls(kinds))
		switch {
		case tag && call.Name == "any" && unset:
			detail = "unset takes exact(\"...\"), prefix(\"...\") or regex(\"...\"); unset(any()) would match only points without tags, which tags = [unset(regex(\".\"))] says."
		case tag && call.Name == "any":
			detail = "A tag matcher cannot be any(): leave tags out to match any tags. A tag matcher is one of " + calls(kinds) + "."
		case !tag && call.Name == "unset":
			detail = "unset(...) is for tag matchers, in tags. A name matcher is one of " + calls(kinds) + "."
		}
		return bad("Unknown "+what+" matcher", detail, call.NameRange)
	}
	if kind == match.Any {
		if len(call.Arguments) != 0 {
			return bad("Invalid name matcher", "any() takes no argument.", call.ArgsRange)
		}
		m, _ := match.Compile(kind, "", false)
		return m, nil
	}
	if len(call.Arguments) != 1 {
		return bad("Invalid "+what+" matcher", fmt.Sprintf("%s takes one string, such as %s(%q).", call.Name, call.Name, "pay."), call.ArgsRange)
	}
	arg := call.Arguments[0]
	v, d := arg.Value(l.ctx)
	if d.HasErrors() {
		return match.Matcher{}, d
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return bad("Invalid "+what+" matcher", fmt.Sprintf("%s takes a string.", call.Name), arg.Range())
	}
	m, err := match.Compile(kind, v.AsString(), unset)
	if err != nil {
		return bad("Invalid regular expression", sentence(err.Error())+" The syntax is Go's (RE2): https://pkg.go.dev/regexp/syntax.", arg.Range())
	}
	return m, nil
}

func calls(kinds []string) string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		switch k {
		case "any":
			out[i] = "any()"
		case "unset":
			out[i] = "unset(...)"
		default:
			out[i] = k + `("...")`
		}
	}
	return strings.Join(out, ", ")
}

// mapItems returns the key and value expressions of attr's map literal, by
// key; none when attr's value is not written as a literal.
func (l *loader) mapItems(attr *hcl.Attribute) (keys, values map[string]hcl.Expression) {
	keys, values = map[string]hcl.Expression{}, map[string]hcl.Expression{}
	items, d := hcl.ExprMap(attr.Expr)
	if d.HasErrors() {
		return keys, values
	}
	for _, kv := range items {
		k, d := kv.Key.Value(l.ctx)
		if d.HasErrors() || k.IsNull() || !k.IsKnown() || k.Type() != cty.String {
			continue
		}
		keys[k.AsString()], values[k.AsString()] = kv.Key, kv.Value
	}
	return keys, values
}

// itemError is attrError pointing at the item of attr's value that is wrong,
// when it is known.
func itemError(attr *hcl.Attribute, item hcl.Expression, summary, detail string) *hcl.Diagnostic {
	diag := attrError(attr, summary, detail)
	if item != nil {
		diag.Subject = item.Range().Ptr()
	}
	return diag
}

// tagHint returns a tag's key and value when a tag "key:value" was given
// where a tag key was expected.
func tagHint(tag string) (key, value string, ok bool) {
	key, value, ok = strings.Cut(tag, ":")
	return key, value, ok && key != "" && !strings.Contains(tag, ",")
}

// sinkSet decodes a list of sink references, sink.TYPE.NAME.
func sinkSet(attr *hcl.Attribute, declared []sinkRef) (match.Set, int, hcl.Diagnostics) {
	elems, d := hcl.ExprList(attr.Expr)
	if d.HasErrors() {
		return 0, 0, hcl.Diagnostics{attrError(attr, "Invalid sink list",
			fmt.Sprintf("%s is a list of sinks, such as [sink.localfile.archive].", attr.Name))}
	}
	var set match.Set
	var diags hcl.Diagnostics
	for _, e := range elems {
		addr, ok := sinkAddress(e)
		if !ok {
			detail := "A sink is named sink.TYPE.NAME, without quotes, such as sink.localfile.archive."
			if v, d := e.Value(nil); !d.HasErrors() && v.Type() == cty.String && strings.HasPrefix(v.AsString(), "sink.") {
				detail = fmt.Sprintf("A sink is named without quotes: write %s.", v.AsString())
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid sink reference",
				Detail: detail, Subject: e.Range().Ptr(), Context: attr.Range.Ptr()})
			continue
		}
		i := -2
		var names []string
		for _, s := range declared {
			names = append(names, s.addr)
			if s.addr == addr {
				i = s.index
			}
		}
		switch {
		case i == -2:
			sort.Strings(names)
			known := "The pipeline declares no sink."
			if len(names) > 0 {
				known = "Its sinks are " + strings.Join(names, ", ") + "."
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared sink",
				Detail:  fmt.Sprintf("The pipeline declares no %s.%s %s", addr, suggest(addr, names), known),
				Subject: e.Range().Ptr(), Context: attr.Range.Ptr()})
		case i >= 0 && i < match.MaxSinks:
			set |= 1 << uint(i)
		}
	}
	return set, len(elems), diags
}

// sinkAddress reads a reference sink.TYPE.NAME.
func sinkAddress(e hcl.Expression) (string, bool) {
	t, d := hcl.AbsTraversalForExpr(e)
	if d.HasErrors() || len(t) != 3 || t.RootName() != "sink" {
		return "", false
	}
	parts := []string{"sink"}
	for _, step := range t[1:] {
		a, ok := step.(hcl.TraverseAttr)
		if !ok {
			return "", false
		}
		parts = append(parts, a.Name)
	}
	return strings.Join(parts, "."), true
}

// policy decodes a sink's tag policy attributes into pb.Policy.
func (l *loader) policy(pb *PluginBlock, attrs hcl.Attributes) hcl.Diagnostics {
	var diags hcl.Diagnostics
	p := &pb.Policy
	if attr := attrs[AddTagsAttribute]; attr != nil {
		var m map[string]string
		n := len(diags)
		diags = l.decode(attr, cty.Map(cty.String), &m, diags)
		if len(diags) == n {
			keys, values := l.mapItems(attr)
			for _, k := range slices.Sorted(maps.Keys(m)) {
				v := m[k]
				switch {
				case k == "" || strings.ContainsAny(k, ",:"):
					hint := ""
					if tk, tv, ok := tagHint(k); ok {
						hint = fmt.Sprintf(" To add the tag %q, write %s = %q.", k, tk, tv)
					}
					diags = append(diags, itemError(attr, keys[k], "Invalid tag key",
						fmt.Sprintf("A tag key is not empty and holds neither ',' nor ':': %q is not one.%s", k, hint)))
				case strings.Contains(v, ","):
					diags = append(diags, itemError(attr, values[k], "Invalid tag value",
						fmt.Sprintf("The value of %q holds a ',', which separates tags: %q.", k, v)))
				case v == "":
					p.AddTags = append(p.AddTags, k)
				default:
					p.AddTags = append(p.AddTags, k+":"+v)
				}
			}
			sort.Strings(p.AddTags)
		}
	}
	if attr := attrs[StripTagsAttribute]; attr != nil {
		n := len(diags)
		diags = l.decode(attr, cty.List(cty.String), &p.StripTags, diags)
		if len(diags) == n {
			elems, d := hcl.ExprList(attr.Expr)
			if d.HasErrors() || len(elems) != len(p.StripTags) {
				elems = nil
			}
			for i, k := range p.StripTags {
				if k == "" || strings.ContainsAny(k, ",:") {
					var at hcl.Expression
					if elems != nil {
						at = elems[i]
					}
					hint := ""
					if tk, _, ok := tagHint(k); ok {
						hint = fmt.Sprintf(" To strip %q and every other %s tag, write %q.", k, tk, tk)
					}
					diags = append(diags, itemError(attr, at, "Invalid tag key",
						fmt.Sprintf("strip_tags lists tag keys: %q is not one.%s", k, hint)))
				}
			}
		}
	}
	for name, out := range map[string]*int{MaxNameLengthAttribute: &p.MaxNameLength, MaxTagLengthAttribute: &p.MaxTagLength, MaxTagsAttribute: &p.MaxTags} {
		attr := attrs[name]
		if attr == nil {
			continue
		}
		var f float64
		n := len(diags)
		diags = l.decode(attr, cty.Number, &f, diags)
		if len(diags) > n {
			continue
		}
		if f != math.Trunc(f) || f < 1 || f > math.MaxInt32 {
			diags = append(diags, attrError(attr, "Limit out of range",
				fmt.Sprintf("%s must be a whole number of at least 1, not %v; leave it out for no limit.", name, f)))
			continue
		}
		*out = int(f)
	}
	return diags
}
