package config

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk/schema"
)

// Redacted replaces the values of sensitive attributes in HCL output.
const Redacted = "(sensitive)"

// HCL renders the effective config, defaults filled in, with the values of
// attributes their plugin marks sensitive replaced by Redacted.
func (c *Config) HCL() []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	d := root.AppendNewBlock("veneurd", nil).Body()
	d.SetAttributeValue("hostname", cty.StringVal(c.Daemon.Hostname))
	d.SetAttributeValue("interval", cty.StringVal(c.Daemon.Interval.String()))
	d.SetAttributeValue("shutdown_timeout", cty.StringVal(c.Daemon.ShutdownTimeout.String()))
	d.SetAttributeValue("plugin_start_timeout", cty.StringVal(c.Daemon.PluginStartTimeout.String()))
	if c.Daemon.HTTPAddress != "" {
		d.SetAttributeValue("http_address", cty.StringVal(c.Daemon.HTTPAddress))
	}
	if c.Daemon.PluginDir != "" {
		d.SetAttributeValue("plugin_dir", cty.StringVal(c.Daemon.PluginDir))
	}
	d.SetAttributeValue("self_metrics", cty.BoolVal(c.Daemon.SelfMetrics))
	d.SetAttributeValue("enable_profiling", cty.BoolVal(c.Daemon.EnableProfiling))

	root.AppendNewline()
	a := root.AppendNewBlock("aggregation", nil).Body()
	a.SetAttributeValue("percentiles", numberList(c.Aggregation.Percentiles))
	a.SetAttributeValue("aggregates", stringList(c.Aggregation.Aggregates))
	if len(c.Aggregation.ExtendTags) > 0 {
		a.SetAttributeValue("extend_tags", stringList(c.Aggregation.ExtendTags))
	}
	a.SetAttributeValue("tdigest_compression", cty.NumberFloatVal(c.Aggregation.TDigestCompression))
	a.SetAttributeValue("hll_precision", cty.NumberIntVal(int64(c.Aggregation.HLLPrecision)))
	c.writeTier(root)
	if c.Limits != (Limits{}) {
		root.AppendNewline()
		writeLimits(root, &c.Limits)
	}

	for _, e := range c.Externals {
		root.AppendNewline()
		b := root.AppendNewBlock("plugin", []string{e.Kind, e.Type}).Body()
		b.SetAttributeValue("path", cty.StringVal(e.Path))
		if e.SHA256 != "" {
			b.SetAttributeValue("sha256", cty.StringVal(e.SHA256))
		}
	}
	for _, pb := range append(append([]*PluginBlock(nil), c.Sources...), c.Sinks...) {
		root.AppendNewline()
		b := root.AppendNewBlock(pb.Kind, []string{pb.Type, pb.Name}).Body()
		// veneurd's attributes first, then the plugin's (a plugin that
		// declares one of veneurd's too has its value in Values: it is
		// written once).
		switch pb.Kind {
		case "source":
			if len(pb.Listen) > 0 {
				b.SetAttributeValue(ListenAttribute, listenValue(pb.Listen))
				b.SetAttributeValue(ReadersAttribute, cty.NumberIntVal(int64(pb.Readers)))
			}
			writeLimits(b, pb.OwnLimits)
		case "sink":
			b.SetAttributeValue(FlushTimeoutAttribute, cty.StringVal(pb.FlushTimeout.String()))
			writePolicy(b, &pb.Policy)
		}
		values := make(map[string]cty.Value, len(pb.Values))
		for n, v := range pb.Values {
			if _, ok := hostAttribute(pb.Kind, n); !ok {
				values[n] = v
			}
		}
		writeValues(b, pb.Schema, values)
	}
	if r := c.Routing.Router; r != nil {
		for i := range r.Rules {
			root.AppendNewline()
			b := root.AppendNewBlock("metric_sink_routing", []string{r.Rules[i].Name}).Body()
			writeRule(b, &r.Rules[i], r.Sinks)
		}
	}
	for i := range c.Routing.Drops {
		root.AppendNewline()
		writeRule(root.AppendNewBlock("drop", []string{c.Routing.Drops[i].Name}).Body(), &c.Routing.Drops[i], nil)
	}
	return f.Bytes()
}

func writePolicy(b *hclwrite.Body, p *match.Policy) {
	if len(p.AddTags) > 0 {
		m := map[string]cty.Value{}
		for _, t := range p.AddTags {
			k, v, _ := strings.Cut(t, ":")
			m[k] = cty.StringVal(v)
		}
		b.SetAttributeValue(AddTagsAttribute, cty.MapVal(m))
	}
	if len(p.StripTags) > 0 {
		b.SetAttributeValue(StripTagsAttribute, stringList(p.StripTags))
	}
	for _, l := range []struct {
		name string
		n    int
	}{{MaxNameLengthAttribute, p.MaxNameLength}, {MaxTagLengthAttribute, p.MaxTagLength}, {MaxTagsAttribute, p.MaxTags}} {
		if l.n > 0 {
			b.SetAttributeValue(l.name, cty.NumberIntVal(int64(l.n)))
		}
	}
}

// writeRule writes a rule's match blocks and, for a routing rule, its sinks.
func writeRule(b *hclwrite.Body, r *match.Rule, sinks []string) {
	for _, c := range r.Match {
		m := b.AppendNewBlock("match", nil).Body()
		m.SetAttributeRaw("name", matcherTokens(c.Name))
		if len(c.Tags) > 0 {
			tags := make([]hclwrite.Tokens, len(c.Tags))
			for i, t := range c.Tags {
				tags[i] = matcherTokens(t)
			}
			m.SetAttributeRaw("tags", hclwrite.TokensForTuple(tags))
		}
	}
	for _, s := range []struct {
		name string
		set  match.Set
	}{{"matched", r.Matched}, {"not_matched", r.NotMatched}} {
		var refs []hclwrite.Tokens
		for i, addr := range sinks {
			if s.set.Has(i) {
				parts := strings.SplitN(addr, ".", 3)
				refs = append(refs, hclwrite.TokensForTraversal(hcl.Traversal{
					hcl.TraverseRoot{Name: parts[0]}, hcl.TraverseAttr{Name: parts[1]}, hcl.TraverseAttr{Name: parts[2]}}))
			}
		}
		if len(refs) > 0 {
			b.SetAttributeRaw(s.name, hclwrite.TokensForTuple(refs))
		}
	}
}

func matcherTokens(m match.Matcher) hclwrite.Tokens {
	t := hclwrite.TokensForFunctionCall(m.Kind.String())
	if m.Kind != match.Any {
		t = hclwrite.TokensForFunctionCall(m.Kind.String(), hclwrite.TokensForValue(cty.StringVal(m.Value)))
	}
	if m.Unset {
		t = hclwrite.TokensForFunctionCall("unset", t)
	}
	return t
}

func writeValues(b *hclwrite.Body, sch schema.Schema, values map[string]cty.Value) {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := values[n]
		a, _ := sch.Lookup(n)
		switch {
		case v.IsNull():
		case a.Block:
			nested := map[string]cty.Value{}
			for k, nv := range v.AsValueMap() {
				nested[k] = nv
			}
			writeValues(b.AppendNewBlock(n, nil).Body(), a.Nested, nested)
		case a.Sensitive:
			b.SetAttributeValue(n, cty.StringVal(Redacted))
		default:
			b.SetAttributeValue(n, v)
		}
	}
}

func numberList(fs []float64) cty.Value {
	if len(fs) == 0 {
		return cty.ListValEmpty(cty.Number)
	}
	vs := make([]cty.Value, len(fs))
	for i, f := range fs {
		vs[i] = cty.NumberFloatVal(f)
	}
	return cty.ListVal(vs)
}

func stringList(ss []string) cty.Value {
	if len(ss) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}
