// Package debug is a sink that prints each flush to standard output, for
// people watching a pipeline work.
//
// Every point is one line, whatever it holds: values that are NaN or
// infinite print as NaN, +Inf and -Inf, and a name or tag holding a control
// character or invalid UTF-8 prints Go-quoted.
package debug

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the debug sink's configuration.
type Config struct {
	// Events also prints events.
	Events bool `hcl:"events,optional" description:"also print events"`
}

// Sink prints flushes.
type Sink struct {
	mu  sync.Mutex
	cfg Config
}

// New returns a debug sink.
func New() *Sink { return &Sink{} }

// Config returns the defaults.
func (s *Sink) Config() any { return &Config{Events: true} }

// Configure stores cfg.
func (s *Sink) Configure(_ context.Context, _ sdk.Env, cfg any) error {
	s.cfg = *cfg.(*Config)
	return nil
}

// Start does nothing.
func (s *Sink) Start(context.Context) error { return nil }

// Stop does nothing.
func (s *Sink) Stop(context.Context) error { return nil }

// Flush prints f.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	if len(f.Points) == 0 && len(f.Events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "flush %s: %d points\n", time.Unix(f.Timestamp, 0).UTC().Format(time.RFC3339), len(f.Points))
	for _, p := range f.Points {
		fmt.Fprintf(w, "  %-8s %s", p.Type, printable(p.Name))
		if len(p.Tags) > 0 {
			fmt.Fprintf(w, "{%s}", strings.Join(printableAll(p.Tags), ","))
		}
		fmt.Fprintf(w, " = %g", p.Value) // NaN, +Inf and -Inf included
		if p.Message != "" {
			fmt.Fprintf(w, " %q", p.Message)
		}
		fmt.Fprintln(w)
	}
	if s.cfg.Events {
		for _, e := range f.Events {
			fmt.Fprintf(w, "  event    %q %q tags=%v\n", e.Title, e.Text, printableAll(e.Tags))
		}
	}
	return w.Flush()
}

// printable returns s as it is if it prints as itself on one line, and
// Go-quoted if it holds a control character, another unprintable character
// or invalid UTF-8, so that no name or tag can break or fake a line.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func printableAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = printable(s)
	}
	return out
}
