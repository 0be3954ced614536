package config

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics renders diags as
//
//	file.hcl:3:14: error: Invalid duration
//	  "10x" is not a positive duration; ...
//	    3 |   interval = "10x"
//	      |              ^^^^^
//
// so that editors and terminals can jump to file:line:column.
//
// The value of an attribute a plugin marks sensitive is never shown: its
// place in the source line is masked with '*', and its text is replaced in
// a diagnostic's summary and detail (a plugin's complaint may quote it).
func WriteDiagnostics(w io.Writer, src Text, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		summary := src.scrub(d.Summary)
		if d.Subject == nil {
			fmt.Fprintf(w, "%s: %s\n", sev, summary)
		} else {
			fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, summary)
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "  %s\n", src.scrub(d.Detail))
		}
		if d.Subject != nil {
			if f := src.Files[d.Subject.Filename]; f != nil {
				writeSnippet(w, src, f.Bytes, *d.Subject)
			}
		}
	}
}

func writeSnippet(w io.Writer, src Text, file []byte, r hcl.Range) {
	start := 0
	for line := 1; start <= len(file); line++ {
		n := bytes.IndexByte(file[start:], '\n')
		if n < 0 {
			n = len(file) - start
		}
		if line != r.Start.Line {
			start += n + 1
			continue
		}
		text := src.mask(r.Filename, bytes.Clone(file[start:start+n]), start)
		text = bytes.TrimSuffix(bytes.ReplaceAll(text, []byte("\t"), []byte(" ")), []byte("\r"))
		fmt.Fprintf(w, "  %4d | %s\n", line, text)
		width := 1
		if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
			width = r.End.Column - r.Start.Column
		}
		fmt.Fprintf(w, "       | %s%s\n", strings.Repeat(" ", max(r.Start.Column-1, 0)), strings.Repeat("^", width))
		return
	}
}
