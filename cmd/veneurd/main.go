// Command veneurd is a metrics aggregation daemon: it receives DogStatsD and
// StatsD traffic, aggregates it per interval and flushes it to sinks, every
// source and sink running as a plugin process.
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time by the Makefile.
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
	hidden  bool
}

func commands() []command {
	return []command{
		{name: "run", summary: "run a pipeline", run: runCmd},
		{name: "validate", summary: "check pipeline files and report every problem", run: validateCmd},
		{name: "fmt", summary: "rewrite pipeline files in the canonical HCL layout", run: fmtCmd},
		{name: "route", summary: "show where a pipeline sends DogStatsD lines: route test", run: routeCmd},
		{name: "emit", summary: "send one metric, event or service check (veneur-emit)", run: emitCmd},
		{name: "bench", summary: "load a veneurd with DogStatsD traffic and measure what it keeps up with", run: benchCmd},
		{name: "bench-global", summary: "play locals forwarding to a global and measure what it merges", run: benchGlobalCmd},
		{name: "top", summary: "show a running veneurd's sources, sinks and rates, redrawn every second", run: topCmd},
		{name: "tap", summary: "stream the points a sink receives or the samples a source reads, live", run: tapCmd},
		{name: "plugins", summary: "list builtin plugins and the external ones a pipeline names", run: pluginsCmd},
		{name: "version", summary: "print the version", run: versionCmd},
		{name: "plugin-serve", summary: "internal, do not call: serves a builtin plugin to veneurd", run: pluginServeCmd, hidden: true},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "-version" || args[0] == "--version" {
		return versionCmd(args[1:], stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "veneurd: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: veneurd <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	cmds := commands()
	for _, c := range cmds {
		if !c.hidden {
			fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'veneurd <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set whose -h prints a usage line and the flags.
func newFlagSet(name, args, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: veneurd %s %s\n\n%s\n", name, args, summary)
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// usageError returns a function that reports a misuse of command cmd on
// stderr, points at its -h, and returns the exit code 2.
func usageError(stderr io.Writer, cmd string) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "veneurd "+cmd+": "+format+"\n", a...)
		fmt.Fprintf(stderr, "Run 'veneurd %s -h' for the flags.\n", cmd)
		return 2
	}
}

// parseFlags parses args; it returns an exit code and false when the caller
// should return (after -h or a bad flag).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Prints veneurd's version.", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(stdout, "veneurd %s\n", version)
	return 0
}
