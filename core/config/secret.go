package config

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Secret is where a sensitive attribute's value is written, and the strings
// it holds.
type Secret struct {
	Range hcl.Range
	// Values are the strings of the attribute's value, as far as it could
	// be evaluated.
	Values []string
}

// minSecretLen is the length from which a secret's value is also scrubbed
// from a diagnostic's text: a shorter one would blank out ordinary words,
// and its source range is masked whatever its length.
const minSecretLen = 4

// secretsOf records a sensitive attribute written at r with value v.
func secretsOf(r hcl.Range, v cty.Value) []Secret {
	s := Secret{Range: r}
	cty.Walk(v, func(_ cty.Path, v cty.Value) (bool, error) {
		if v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			if str := v.AsString(); len(str) >= minSecretLen {
				s.Values = append(s.Values, str)
			}
		}
		return true, nil
	})
	return []Secret{s}
}

// Text is what diagnostics are rendered from: the parsed files, and
// the secrets they hold.
type Text struct {
	Files   map[string]*hcl.File
	Secrets []Secret
}

// Text returns what c's diagnostics are rendered from; nil gives none.
func (c *Config) Text() Text {
	if c == nil {
		return Text{}
	}
	return Text{Files: c.Files, Secrets: c.Secrets}
}

// scrub replaces every secret value in text.
func (src Text) scrub(text string) string {
	for _, s := range src.Secrets {
		for _, v := range s.Values {
			text = strings.ReplaceAll(text, v, "(sensitive)")
		}
	}
	return text
}

// mask blanks with '*' the bytes of line, which starts at byte offset start
// of file, that a secret's source range covers.
func (src Text) mask(file string, line []byte, start int) []byte {
	end := start + len(line)
	for _, s := range src.Secrets {
		if s.Range.Filename != file || s.Range.End.Byte <= start || s.Range.Start.Byte >= end {
			continue
		}
		for i := max(s.Range.Start.Byte, start); i < min(s.Range.End.Byte, end); i++ {
			line[i-start] = '*'
		}
	}
	return line
}
