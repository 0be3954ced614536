package main

import (
	"fmt"
	"io"

	"github.com/veneurd/veneurd/plugins"
	"github.com/veneurd/veneurd/sdk"
)

// pluginServeCmd serves a builtin plugin; veneurd runs itself this way.
func pluginServeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "Usage: veneurd plugin-serve <kind> <type>\n\nInternal, do not call: veneurd runs itself this way to serve a builtin plugin.")
		return 2
	}
	b, ok := plugins.Lookup(args[0], args[1])
	if !ok {
		fmt.Fprintf(stderr, "veneurd: no builtin %s plugin %q\n", args[0], args[1])
		return 1
	}
	sdk.Serve(b.New())
	return 0
}
