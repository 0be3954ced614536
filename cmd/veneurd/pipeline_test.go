package main

import (
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// TestPipelines runs each testdata/pipelines/*.txtar through the built
// binary: the daemon runs "pipeline.hcl" (with "@UDP@", "@ADMIN@" and "@OUT@"
// standing for a free UDP address, a free admin address and a localfile
// sink's path), receives the lines of "input" over UDP, one datagram each, is
// stopped with SIGTERM so that everything lands in its final flush, and must
// have flushed exactly "want": a "name{tags} type value" line per point and
// an `event "title" "text" {tags}` line per event, in any order.
func TestPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	archives, _ := filepath.Glob("testdata/pipelines/*.txtar")
	if len(archives) == 0 {
		t.Fatal("no pipeline tests")
	}
	for _, path := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]string{}
			for _, f := range ar.Files {
				files[f.Name] = string(f.Data)
			}
			udp := daemontest.FreePort(t, "udp")
			admin := daemontest.FreePort(t, "tcp")
			out := filepath.Join(t.TempDir(), "out.jsonl")
			pipeline := strings.NewReplacer("@UDP@", udp, "@OUT@", out, "@ADMIN@", admin).Replace(files["pipeline.hcl"])
			d := daemontest.Start(t, pipeline)

			c, err := net.Dial("udp", udp)
			if err != nil {
				t.Fatal(err)
			}
			lines := 0
			for _, l := range strings.Split(strings.TrimSpace(files["input"]), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "//") {
					c.Write([]byte(l))
					lines++
				}
			}
			c.Close()
			// Wait until the daemon has read every line ("received" says how
			// many it counts: one per sample, event, check or rejected line),
			// then stop it.
			received := fmt.Sprintf("veneur_listen_received_per_protocol_total{protocol=\"udp\"} %s\n", strings.TrimSpace(files["received"]))
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(httpGet(t, "http://"+admin+"/metrics"), received) {
				if time.Now().After(deadline) {
					t.Fatalf("the daemon did not receive the %d lines", lines)
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
					got = append(got, fmt.Sprintf("event %q %q {%s}", l.Title, l.Text, strings.Join(l.Tags, ",")))
					continue
				}
				got = append(got, fmt.Sprintf("%s{%s} %s %g", l.Name, strings.Join(l.Tags, ","), l.Type, l.Value))
			}
			sort.Strings(got)
			var want []string
			for _, l := range strings.Split(strings.TrimSpace(files["want"]), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					want = append(want, l)
				}
			}
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("flushed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
