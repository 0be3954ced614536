package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Limits are cardinality limits: how many series an interval may make, in
// all and per name. 0 is no limit. A limits block at the top of a pipeline
// applies to every source without one of its own, and also bounds the
// series the daemon merges in an interval from all its sources (and, each
// apart, from the instances that forward to it).
type Limits struct {
	MaxSeries        int
	MaxSeriesPerName int
}

// MaxLimit bounds a limit: a sanity check against a typo of a few digits.
const MaxLimit = 1 << 31

// limitsBlock is the block's name, at the top level and in source blocks.
const limitsBlock = "limits"

var limitsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "max_series"}, {Name: "max_series_per_name"},
}}

// limits decodes a limits block; seen is the first one of its scope, if
// any, for the duplicate's diagnostic.
func (l *loader) limits(block, seen *hcl.Block) (*Limits, hcl.Diagnostics) {
	if seen != nil {
		return nil, hcl.Diagnostics{duplicate(block, seen, "limits block", "Only one limits block is allowed here")}
	}
	content, diags := block.Body.Content(limitsSchema)
	lim := &Limits{}
	for _, a := range []struct {
		name string
		out  *int
	}{{"max_series", &lim.MaxSeries}, {"max_series_per_name", &lim.MaxSeriesPerName}} {
		attr := content.Attributes[a.name]
		if attr == nil {
			continue
		}
		var n float64
		if d := l.decode(attr, cty.Number, &n, nil); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		if n < 0 || n > MaxLimit || n != float64(int(n)) {
			diags = append(diags, attrError(attr, "Invalid limit",
				fmt.Sprintf("%s is a whole number of series from 0 (no limit) to %d, not %v.", a.name, MaxLimit, n)))
			continue
		}
		*a.out = int(n)
	}
	return lim, diags
}

// writeLimits renders a limits block into body, unless lim limits nothing.
func writeLimits(body *hclwrite.Body, lim *Limits) {
	if lim == nil || *lim == (Limits{}) {
		return
	}
	b := body.AppendNewBlock(limitsBlock, nil).Body()
	b.SetAttributeValue("max_series", cty.NumberIntVal(int64(lim.MaxSeries)))
	b.SetAttributeValue("max_series_per_name", cty.NumberIntVal(int64(lim.MaxSeriesPerName)))
}
