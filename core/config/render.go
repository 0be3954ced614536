package config

import (
	"bufio"
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
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject == nil {
			fmt.Fprintf(w, "%s: %s\n", sev, d.Summary)
		} else {
			fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary)
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "  %s\n", d.Detail)
		}
		if d.Subject != nil {
			if f := files[d.Subject.Filename]; f != nil {
				writeSnippet(w, f.Bytes, *d.Subject)
			}
		}
	}
}

func writeSnippet(w io.Writer, src []byte, r hcl.Range) {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if line != r.Start.Line {
			continue
		}
		text := strings.ReplaceAll(sc.Text(), "\t", " ")
		fmt.Fprintf(w, "  %4d | %s\n", line, text)
		width := 1
		if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
			width = r.End.Column - r.Start.Column
		}
		fmt.Fprintf(w, "       | %s%s\n", strings.Repeat(" ", max(r.Start.Column-1, 0)), strings.Repeat("^", width))
		return
	}
}
