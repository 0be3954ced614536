package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/veneurd/veneurd/core/config"
)

func fmtCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("fmt", "[-check] FILE|DIR...",
		"Rewrites pipeline files in the canonical HCL layout (aligned =, two-space indents).\n"+
			"A directory means its *.hcl files. Files with syntax errors are reported and left alone.", stderr)
	check := fs.Bool("check", false, "change nothing; list the files that are not formatted and exit 1 if there are any")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var files []string
	for _, arg := range fs.Args() {
		if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
			matches, _ := filepath.Glob(filepath.Join(arg, "*.hcl"))
			files = append(files, matches...)
		} else {
			files = append(files, arg)
		}
	}
	code := 0
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "veneurd fmt: %v\n", err)
			code = 1
			continue
		}
		// Format what parses: hclwrite would otherwise rearrange broken input.
		if f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos); diags.HasErrors() {
			config.WriteDiagnostics(stderr, config.Text{Files: map[string]*hcl.File{path: f}}, diags)
			code = 1
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(out, src) {
			continue
		}
		if *check {
			fmt.Fprintln(stdout, path)
			code = 1
			continue
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			fmt.Fprintf(stderr, "veneurd fmt: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintln(stdout, path)
	}
	return code
}
