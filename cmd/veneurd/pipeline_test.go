package main

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// TestPipelines runs each testdata/pipelines/*.txtar through the built
// binary: the daemon runs "pipeline.hcl" (with "@UDP@", "@TCP@", "@ADMIN@"
// and "@OUT@" standing for a free UDP address, a free TCP address, a free
// admin address and a localfile sink's path), receives "input" over UDP and
// "input.tcp" over one TCP connection (see sendInput for their syntax), is
// stopped with SIGTERM so that everything lands in its final flush, and must
// have flushed exactly "want": a "name{tags} type value" line per point and
// an `event "title" "text" {tags}` line per event, in any order.
//
// "received" says how many lines the daemon must count before it is
// stopped (one per sample, event, check, rejected line or dropped
// datagram): a number for UDP alone, or "udp N" and "tcp N" lines.
//
// "veneur" and "veneur.yaml" are what Veneur flushes for the same input, and
// what its configuration needs for it: see TestPipelinesVeneur.
func TestPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	for _, ar := range pipelineArchives(t) {
		t.Run(ar.name, func(t *testing.T) {
			udp := daemontest.FreePort(t, "udp")
			tcp := daemontest.FreePort(t, "tcp")
			admin := daemontest.FreePort(t, "tcp")
			out := filepath.Join(t.TempDir(), "out.jsonl")
			pipeline := strings.NewReplacer("@UDP@", udp, "@TCP@", tcp, "@OUT@", out, "@ADMIN@", admin).Replace(ar.files["pipeline.hcl"])
			d := daemontest.Start(t, pipeline)

			sendInput(t, ar, udp, tcp)
			// Wait until the daemon has counted every line, then stop it.
			metrics := ""
			deadline := time.Now().Add(10 * time.Second)
			for {
				metrics = httpGet(t, "http://"+admin+"/metrics")
				if receivedAll(metrics, ar.received(t)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the daemon did not count the lines it was sent (want %v):\n%s", ar.received(t), grepLines(metrics, "received_per_protocol"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			d.Signal(syscall.SIGTERM)
			if err := d.Wait(30 * time.Second); err != nil {
				t.Fatalf("exit: %v", err)
			}
			var got []string
			for _, l := range daemontest.ReadLines(t, out) {
				if l.Kind == "event" {
					got = append(got, pipelineEvent(l.Title, l.Text, l.Tags))
					continue
				}
				got = append(got, pipelinePoint(l.Name, l.Tags, l.Type, l.Value))
			}
			compareLines(t, "flushed", got, ar.files["want"])
		})
	}
}

// pipelineArchive is one testdata/pipelines/*.txtar.
type pipelineArchive struct {
	name  string
	files map[string]string
}

func pipelineArchives(t *testing.T) []pipelineArchive {
	t.Helper()
	paths, _ := filepath.Glob("testdata/pipelines/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no pipeline tests")
	}
	var out []pipelineArchive
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		for _, f := range ar.Files {
			files[f.Name] = string(f.Data)
		}
		out = append(out, pipelineArchive{name: strings.TrimSuffix(filepath.Base(path), ".txtar"), files: files})
	}
	return out
}

// received reads the "received" section: protocol -> lines.
func (ar pipelineArchive) received(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(ar.files["received"]), "\n") {
		f := strings.Fields(l)
		if len(f) == 1 {
			f = []string{"udp", f[0]}
		}
		n, err := strconv.Atoi(f[len(f)-1])
		if len(f) != 2 || err != nil {
			t.Fatalf("received: %q is neither a number nor \"udp N\" or \"tcp N\"", l)
		}
		out[f[0]] = n
	}
	return out
}

// receivedAll reports whether the admin /metrics text counts want's lines.
func receivedAll(metrics string, want map[string]int) bool {
	for proto, n := range want {
		if !strings.Contains(metrics, fmt.Sprintf("veneur_listen_received_per_protocol_total{protocol=%q} %d\n", proto, n)) {
			return false
		}
	}
	return true
}

// sendInput sends the archive's "input" to udp, one datagram per line, then
// its "input.tcp" to tcp over one connection, one line each.
//
// Blank lines and lines starting with "//" are skipped; other lines are sent
// as they are (a TCP line with "\n" after it), but for a line that starts with
// '"': it is one or more Go string literals, each optionally repeated with
// "* N", joined with "+", and sent exactly as they spell it (no "\n" added):
//
//	"a:1|c\r\nb:2|c\r\n"
//	"abc:1|c\n" * 1023 + "abcd:1|c\n"
func sendInput(t *testing.T, ar pipelineArchive, udp, tcp string) {
	t.Helper()
	if in, ok := ar.files["input"]; ok {
		c, err := net.Dial("udp", udp)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range inputLines(t, in, "") {
			if _, err := c.Write(d); err != nil {
				t.Fatalf("sending a datagram of %d bytes: %v", len(d), err)
			}
		}
		c.Close()
	}
	if in, ok := ar.files["input.tcp"]; ok {
		c, err := net.Dial("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range inputLines(t, in, "\n") {
			if _, err := c.Write(l); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
}

// inputLines turns an input section into what is sent: plain lines with
// suffix added, quoted lines decoded.
func inputLines(t *testing.T, section, suffix string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range strings.Split(section, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "//"):
		case l[0] == '"':
			b, err := unquoteInput(l)
			if err != nil {
				t.Fatalf("input line %s: %v", l, err)
			}
			out = append(out, b)
		default:
			out = append(out, []byte(l+suffix))
		}
	}
	return out
}

// unquoteInput decodes `"lit" [* N] [+ "lit" [* N]]...`.
func unquoteInput(l string) ([]byte, error) {
	var out []byte
	for rest := l; ; {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("want a Go string literal at %q", rest)
		}
		s, _ := strconv.Unquote(q)
		rest = strings.TrimSpace(rest[len(q):])
		n := 1
		if r, ok := strings.CutPrefix(rest, "*"); ok {
			r = strings.TrimSpace(r)
			end := strings.IndexFunc(r, func(c rune) bool { return c < '0' || c > '9' })
			if end < 0 {
				end = len(r)
			}
			if n, err = strconv.Atoi(r[:end]); err != nil {
				return nil, fmt.Errorf("want a count after '*' at %q", rest)
			}
			rest = strings.TrimSpace(r[end:])
		}
		out = append(out, strings.Repeat(s, n)...)
		if rest == "" {
			return out, nil
		}
		r, ok := strings.CutPrefix(rest, "+")
		if !ok {
			return nil, fmt.Errorf("want '+' or the end of the line at %q", rest)
		}
		rest = strings.TrimSpace(r)
	}
}

func pipelinePoint(name string, tags []string, typ string, value float64) string {
	return fmt.Sprintf("%s{%s} %s %g", name, pipelineTags(tags), typ, value)
}

func pipelineEvent(title, text string, tags []string) string {
	return fmt.Sprintf("event %q %q {%s}", title, text, pipelineTags(tags))
}

// pipelineTags joins tags with ','; a tag that is empty or holds a control
// character, ',', '"', '{' or '}' is written as a Go string literal.
func pipelineTags(tags []string) string {
	out := make([]string, len(tags))
	for i, tag := range tags {
		out[i] = tag
		if tag == "" || strings.ContainsFunc(tag, func(c rune) bool { return c < ' ' || c == 0x7f || strings.ContainsRune(",\"{}", c) }) {
			out[i] = strconv.Quote(tag)
		}
	}
	return strings.Join(out, ",")
}

// compareLines fails the test unless got holds exactly the lines of want,
// in any order.
func compareLines(t *testing.T, what string, got []string, want string) {
	t.Helper()
	sort.Strings(got)
	var w []string
	for _, l := range strings.Split(strings.TrimSpace(want), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			w = append(w, l)
		}
	}
	sort.Strings(w)
	if strings.Join(got, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(w, "\n"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
