package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/plugins"
)

func pluginsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("plugins", "[-config FILE|DIR]",
		"Lists the builtin plugins and, with -config, the external plugins a pipeline names,\n"+
			"with their versions. External plugins are started to ask for their schema and version.", stderr)
	path := fs.String("config", "", "pipeline whose external plugins to list")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "plugins")("unexpected argument %q: the pipeline is given with -config (veneurd plugins -config %s)", fs.Arg(0), fs.Arg(0))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTYPE\tVERSION\tSOURCE")
	for _, b := range plugins.Builtins {
		fmt.Fprintf(tw, "%s\t%s\t%s\tbuiltin: %s\n", b.Kind, b.Type, version, b.Description)
	}
	if *path != "" {
		log := hclog.New(&hclog.LoggerOptions{Name: "veneurd", Level: hclog.Warn, Output: stderr})
		cfg, diags := loadPipeline(*path, log)
		if diags.HasErrors() {
			config.WriteDiagnostics(stderr, filesOf(cfg), diags)
			tw.Flush()
			return 1
		}
		for _, b := range append(cfg.Sources, cfg.Sinks...) {
			if b.Info.Path == "" {
				continue
			}
			v := b.Info.Version
			if v == "" {
				v = "-"
			}
			pinned := ""
			if b.Info.SHA256 != "" {
				pinned = ", sha256 pinned"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\n", b.Kind, b.Type, v, b.Info.Path, pinned)
		}
	}
	tw.Flush()
	return 0
}
