package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/plugins/sources/dogstatsd"
	"github.com/veneurd/veneurd/sdk"
)

// routeStdin is where `route test` reads lines when none are given; tests
// replace it.
var routeStdin io.Reader = os.Stdin

func routeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("route", "test -config FILE|DIR [LINE...]",
		"Shows where a pipeline's points go. Its one subcommand:\n\n"+
			"  test  runs DogStatsD lines through the pipeline's drop rules, aggregation,\n"+
			"        routing rules and sinks' tag policies, and prints what each sink gets\n\n"+
			"Run 'veneurd route test -h' for its flags.", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := usageError(stderr, "route")
	if fs.NArg() == 0 {
		return usageErr("missing subcommand: veneurd route test -config FILE [LINE...]")
	}
	if fs.Arg(0) != "test" {
		return usageErr("unknown subcommand %q: the only one is test", fs.Arg(0))
	}
	return routeTestCmd(fs.Args()[1:], stdout, stderr)
}

func routeTestCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("route test", "-config FILE|DIR [LINE...]",
		"Runs DogStatsD lines (the arguments, or else the lines of standard input) through\n"+
			"a pipeline as veneurd would, each alone in an interval of its own, and prints each\n"+
			"line with, for a metric, the drop rules' verdicts on it; then each point it flushes\n"+
			"as (an event by its title) with each routing rule's verdict on it, and each sink\n"+
			"it reaches with the name and tags that sink receives after its tag policy, or why\n"+
			"the policy drops it. A line that does not parse gets the parser's error.\n"+
			"Nothing is started: no plugin process, no socket.\n"+
			"Exits 0 when the pipeline loads, 1 with its problems when it does not.", stderr)
	path := fs.String("config", "", "pipeline file, or a directory whose *.hcl files are loaded together (required)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *path == "" {
		return usageError(stderr, "route test")("missing -config: veneurd route test -config FILE [LINE...]")
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "veneurd", Level: hclog.Warn, Output: stderr})
	cfg, diags := loadPipeline(*path, log)
	config.WriteDiagnostics(stderr, filesOf(cfg), diags)
	if diags.HasErrors() {
		return 1
	}
	trial, err := core.NewTrial(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "veneurd route test: %v\n", err)
		return 1
	}
	rt := &routeTester{trial: trial, w: stdout}
	for _, s := range trial.Sinks() {
		rt.width = max(rt.width, len(s))
	}
	line := func(l []byte) {
		if rt.err == nil {
			rt.line(l)
		}
	}
	if fs.NArg() > 0 {
		for _, arg := range fs.Args() {
			dogstatsd.ForEachLine([]byte(arg), line)
		}
	} else {
		r := bufio.NewReader(routeStdin)
		for {
			l, err := r.ReadBytes('\n')
			dogstatsd.ForEachLine(l, line)
			if rt.err != nil {
				break
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fmt.Fprintf(stderr, "veneurd route test: reading standard input: %v\n", err)
					return 1
				}
				break
			}
		}
	}
	if rt.err != nil {
		fmt.Fprintf(stderr, "veneurd route test: %v\n", rt.err)
		return 1
	}
	return 0
}

// routeTester prints what a pipeline does with each line.
type routeTester struct {
	trial *core.Trial
	p     dogstatsd.Parser
	w     io.Writer
	width int // of the longest sink address
	err   error
}

func (rt *routeTester) line(line []byte) {
	w := rt.w
	fmt.Fprintf(w, "%s\n", line)
	var res *core.TrialResult
	var err error
	switch dogstatsd.Kind(line) {
	case dogstatsd.PacketMetric:
		m, perr := rt.p.ParseMetric(line)
		if perr != nil {
			fmt.Fprintf(w, "  error: %v\n", perr)
			return
		}
		values, rate := m.Values, m.Rate
		if m.Type == sdk.Set { // as the source writes them
			values, rate = nil, 1
			for _, member := range m.Members {
				values = append(values, dogstatsd.MemberValue(member))
			}
		}
		res, err = rt.trial.Metric(m.Type, m.Scope, m.Name, m.Tags, values, rate)
	case dogstatsd.PacketEvent:
		e, perr := rt.p.ParseEvent(line)
		if perr != nil {
			fmt.Fprintf(w, "  error: %v\n", perr)
			return
		}
		res, err = rt.trial.Event(e)
	case dogstatsd.PacketServiceCheck:
		c, perr := rt.p.ParseServiceCheck(line)
		if perr != nil {
			fmt.Fprintf(w, "  error: %v\n", perr)
			return
		}
		res, err = rt.trial.ServiceCheck(c)
	}
	if err != nil {
		rt.err = err
		return
	}
	rt.result(res)
}

func (rt *routeTester) result(res *core.TrialResult) {
	w := rt.w
	for _, v := range res.Drops {
		if res.Dropped && v.Matched {
			fmt.Fprintf(w, "  dropped by rule %s: %s\n", v.Rule, v.Why)
		} else {
			fmt.Fprintf(w, "  drop rule %s: %s\n", v.Rule, verdict(v))
		}
	}
	if res.Dropped {
		return
	}
	for _, reason := range sortedKeys(res.Refused) {
		fmt.Fprintf(w, "  refused: %s (%s)\n", reason, plural(res.Refused[reason], "sample"))
	}
	for _, reason := range sortedKeys(res.Unflushed) {
		fmt.Fprintf(w, "  not flushed: %s (%s)\n", reason, plural(int(res.Unflushed[reason]), "point"))
	}
	for i := range res.Points {
		p := &res.Points[i]
		if p.Event {
			fmt.Fprintf(w, "  event %s %s\n", p.Name, tagList(p.Tags))
		} else {
			fmt.Fprintf(w, "  point %s %s %s\n", p.Name, p.Type, tagList(p.Tags))
		}
		for _, v := range p.Rules {
			fmt.Fprintf(w, "    rule %s: %s\n", v.Rule, verdict(v))
		}
		if !rt.trial.Routed() {
			fmt.Fprintf(w, "    no routing rule: every sink gets every point\n")
		}
		reached := false
		for _, s := range p.Sinks {
			if !s.Routed {
				continue
			}
			reached = true
			if s.Dropped != match.Kept {
				fmt.Fprintf(w, "    %-*s  dropped: %s\n", rt.width, s.Sink, s.Dropped)
				continue
			}
			fmt.Fprintf(w, "    %-*s  %s %s\n", rt.width, s.Sink, s.Name, tagList(s.Tags))
		}
		if !reached {
			fmt.Fprintf(w, "    no sink\n")
		}
	}
}

func verdict(v core.Verdict) string {
	if v.Matched {
		return "matched: " + v.Why
	}
	return "not matched: " + v.Why
}

func tagList(tags []string) string { return "[" + strings.Join(tags, " ") + "]" }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
