package sdktest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

// memSink keeps a copy of every point it is flushed, or, when bad is set,
// breaks one of the ownership rules.
type memSink struct {
	bad string // "", "retain", "mutate" or "nan"

	cfg     memConfig
	mu      sync.Mutex
	lines   []string
	retains [][]sdk.Point
}

type memConfig struct {
	Prefix string            `hcl:"prefix"`
	Limit  int               `hcl:"limit,optional" description:"a number"`
	Tags   []string          `hcl:"tags,optional"`
	Secret map[string]string `hcl:"secret,optional" sensitive:"true"`
	TLS    *struct {
		Cert string `hcl:"cert"`
		Key  string `hcl:"key,optional"`
	} `hcl:"tls,block"`
}

func (s *memSink) Config() any { return &memConfig{Limit: 3} }

func (s *memSink) Configure(_ context.Context, _ sdk.Env, cfg any) error {
	c := cfg.(*memConfig)
	if c.Prefix == "" {
		return &sdk.AttrError{Attribute: "prefix", Summary: "Empty prefix", Detail: "Give a prefix."}
	}
	s.cfg = *c
	return nil
}

func (s *memSink) Start(context.Context) error { return nil }

func (s *memSink) Flush(_ context.Context, f *sdk.Flush) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.bad {
	case "retain":
		s.retains = append(s.retains, f.Points) // written at Stop
		return nil
	case "mutate":
		for i := range f.Points {
			slices.Reverse(f.Points[i].Tags)
		}
	case "nan":
		for _, p := range f.Points {
			if math.IsNaN(p.Value) {
				return fmt.Errorf("cannot encode %s", p.Name)
			}
		}
	}
	for _, p := range f.Points {
		s.lines = append(s.lines, s.cfg.Prefix+format(p))
	}
	return nil
}

func (s *memSink) Stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.retains {
		for _, p := range ps {
			s.lines = append(s.lines, s.cfg.Prefix+format(p))
		}
	}
	return nil
}

func (s *memSink) written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

func format(p sdk.Point) string { return fmt.Sprintf("%#v", p) }

func memCase(s *memSink) SinkCase {
	return SinkCase{
		Config:  map[string]any{"prefix": "> ", "tags": []string{"a"}},
		Observe: func(*testing.T) []string { return s.written() },
		Format: func(p sdk.Point) string {
			if len(p.Tags) == 0 {
				p.Tags = nil
			}
			return "> " + format(p)
		},
	}
}

func TestSink(t *testing.T) {
	s := &memSink{}
	points := Sink(t, func() sdk.Sink { return s }, memCase(s))
	if got := len(s.written()); got != len(points) || got == 0 {
		t.Fatalf("the sink wrote %d points, the kit says it flushed %d", got, len(points))
	}
}

func TestConfigure(t *testing.T) {
	diags := Configure(t, &memSink{}, map[string]any{"prefix": ""})
	if len(diags) != 1 || diags[0].Attribute != "prefix" || diags[0].Severity != 1 {
		t.Fatalf("got %v, want one error about prefix", diags)
	}
	if diags := Configure(t, &memSink{}, map[string]any{"prefix": "x", "tls": map[string]any{"cert": "c"}}); len(diags) != 0 {
		t.Fatalf("got %v, want none", diags)
	}
	if diags := Configure(t, &memSink{}, nil); len(diags) != 1 {
		t.Fatalf("an empty block missing a required attribute: got %v, want one diagnostic", diags)
	}
}

// lineSource reads datagrams of lines: "name:value|tags" is a counter,
// "!reason" an error and "_e title" an event. bad selects a contract
// violation.
type lineSource struct {
	bad string // "", "unflushed" or "unsorted"
}

type lineConfig struct {
	Listen []string `hcl:"listen"`
}

func (s *lineSource) Config() any { return &lineConfig{} }

func (s *lineSource) Configure(context.Context, sdk.Env, any) error { return nil }

func (s *lineSource) Run(ctx context.Context, listeners []sdk.Listener, out sdk.Output) error {
	var wg sync.WaitGroup
	for _, l := range listeners {
		conn, err := net.FilePacketConn(l.File)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			protocol, _, _ := strings.Cut(l.Address, ":")
			w := out.Writer(protocol)
			buf := make([]byte, 1024)
			for {
				n, _, err := conn.ReadFrom(buf)
				if err != nil {
					if s.bad == "unflushed" {
						w.Metric(sdk.Counter, sdk.ScopeDefault, []byte("bye"), nil, 1, 1)
						return
					}
					w.Flush()
					return
				}
				for line := range strings.SplitSeq(string(buf[:n]), "\n") {
					s.line(w, line)
				}
				w.Flush()
			}
		}()
	}
	wg.Wait()
	return nil
}

func (s *lineSource) line(w sdk.Writer, line string) {
	switch {
	case strings.HasPrefix(line, "!"):
		w.Error("metric", line[1:])
	case strings.HasPrefix(line, "_e "):
		w.Event(sdk.Event{Title: line[3:], Tags: []string{"x:y"}})
	default:
		nv, tags, _ := strings.Cut(line, "|")
		name, value, _ := strings.Cut(nv, ":")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			w.Error("metric", "bad_value")
			return
		}
		if s.bad != "unsorted" {
			t := strings.Split(tags, ",")
			slices.Sort(t)
			tags = strings.Join(t, ",")
		}
		w.Metric(sdk.Counter, sdk.ScopeDefault, []byte(name), []byte(tags), v, 1)
	}
}

func lineCase() SourceCase {
	return SourceCase{
		Listen: []string{"udp://127.0.0.1:0", "unixgram://"},
		Send: func(t *testing.T, addrs []string) {
			for _, a := range addrs {
				c := Dial(t, a)
				if _, err := c.Write([]byte("a:1|z:1,b:2\n!no_value\n_e hello")); err != nil {
					t.Fatal(err)
				}
			}
		},
		Want: func(t *testing.T, got *Collector) bool {
			return len(got.Metrics()) >= 2 && len(got.Errors()) >= 2 && len(got.Events()) >= 2
		},
	}
}

func TestSource(t *testing.T) {
	got := Source(t, func() sdk.Source { return &lineSource{} }, lineCase())
	want := Metric{Type: sdk.Counter, Name: "a", Tags: "b:2,z:1", Value: 1, Rate: 1}
	for _, m := range got.Metrics() {
		m.Protocol = ""
		if m != want {
			t.Errorf("got %v, want %v", m, want)
		}
	}
	if r := got.Received(); len(r) != 2 || r["udp"] != 3 || r["unixgram"] != 3 {
		t.Errorf("received %v, want 3 lines by udp and 3 by unixgram", r)
	}
	if len(got.Metrics()) != 2 || len(got.Events()) != 2 || len(got.Errors()) != 2 {
		t.Fatalf("got %s", got)
	}
	if e := got.Errors()[0]; e != (Error{"metric", "no_value"}) {
		t.Errorf("got error %+v", e)
	}
}

// TestKitCatches runs plugins that break the contract in a child process and
// checks that the kit fails them, saying why.
func TestKitCatches(t *testing.T) {
	if bad := os.Getenv("SDKTEST_BAD"); bad != "" {
		kind, how, _ := strings.Cut(bad, ":")
		if kind == "sink" {
			s := &memSink{bad: how}
			Sink(t, func() sdk.Sink { return s }, memCase(s))
		} else {
			Source(t, func() sdk.Source { return &lineSource{bad: how} }, lineCase())
		}
		return
	}
	for bad, want := range map[string]string{
		"sink:retain":      "missing (",
		"sink:mutate":      "Flush mutated the flush it was given",
		"sink:nan":         "a flush holding points whose value is NaN or infinite",
		"source:unflushed": "never flushed",
		"source:unsorted":  "not sorted",
	} {
		t.Run(bad, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestKitCatches$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SDKTEST_BAD="+bad)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil {
				t.Fatalf("the kit passed a plugin that breaks the contract:\n%s", out.String())
			}
			if !strings.Contains(out.String(), want) {
				t.Fatalf("the kit failed without saying %q:\n%s", want, out.String())
			}
		})
	}
}
