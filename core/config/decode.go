package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/gocty"
)

// evalContext is what expressions in a pipeline can use.
func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":  envFunc,
		"file": fileFunc,
	}}
}

// envFunc returns an environment variable's value, or "" when it is unset.
var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable, or an empty string when it is not set.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(os.Getenv(args[0].AsString())), nil
	},
})

// fileFunc returns a file's contents less one trailing newline, so that a
// secret kept in a file (a Kubernetes or Docker secret) is read as written.
// Its error names the file, never its contents.
var fileFunc = function.New(&function.Spec{
	Description: "Returns the contents of a file, less one trailing newline.",
	Params:      []function.Parameter{{Name: "path", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		path := args[0].AsString()
		b, err := os.ReadFile(path)
		if err != nil {
			return cty.NilVal, err // names the path, and says why
		}
		if !utf8.Valid(b) {
			return cty.NilVal, fmt.Errorf("%s is not UTF-8 text", path)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		return cty.StringVal(s), nil
	},
})

// decode evaluates attr, converts it to ty and stores it in out (a pointer
// gocty understands). It returns diags with any problem appended.
func (l *loader) decode(attr *hcl.Attribute, ty cty.Type, out any, diags hcl.Diagnostics) hcl.Diagnostics {
	if attr == nil {
		return diags
	}
	v, d := attr.Expr.Value(l.ctx)
	diags = append(diags, d...)
	if d.HasErrors() {
		return diags
	}
	if v.IsNull() {
		return append(diags, attrError(attr, "Null value", fmt.Sprintf("Attribute %q must have a value.", attr.Name)))
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return append(diags, attrError(attr, "Incorrect attribute value type",
			fmt.Sprintf("Inappropriate value for attribute %q: %s.", attr.Name, err)))
	}
	if err := gocty.FromCtyValue(cv, out); err != nil {
		return append(diags, attrError(attr, "Incorrect attribute value",
			fmt.Sprintf("Inappropriate value for attribute %q: %s.", attr.Name, err)))
	}
	return diags
}

func (l *loader) str(attr *hcl.Attribute, out *string, diags hcl.Diagnostics) hcl.Diagnostics {
	return l.decode(attr, cty.String, out, diags)
}

func (l *loader) duration(attr *hcl.Attribute, out *time.Duration, diags hcl.Diagnostics) hcl.Diagnostics {
	if attr == nil {
		return diags
	}
	var s string
	n := len(diags)
	diags = l.decode(attr, cty.String, &s, diags)
	if len(diags) > n {
		return diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return append(diags, attrError(attr, "Invalid duration",
			fmt.Sprintf("%q is not a positive duration; write it as a number and a unit, such as \"10s\" or \"500ms\".", s)))
	}
	*out = d
	return diags
}

func attrError(attr *hcl.Attribute, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  attr.Expr.Range().Ptr(),
		Context:  attr.Range.Ptr(),
	}
}

// suggest returns " Did you mean "x"?" for the closest of options, or "".
func suggest(given string, options []string) string {
	sorted := append([]string(nil), options...)
	sort.Strings(sorted)
	best, bestDist := "", 3
	for _, o := range sorted {
		if d := levenshtein.Distance(given, o, nil); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}
