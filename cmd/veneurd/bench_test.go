package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/loadgen"
)

func TestBenchUsage(t *testing.T) {
	var out bytes.Buffer
	if code := dispatch([]string{"bench", "-h"}, &out, &out); code != 0 || !strings.Contains(out.String(), "Usage: veneurd bench") {
		t.Fatalf("bench -h: exit %d\n%s", code, out.String())
	}
	for _, f := range []string{"-target", "-allow-remote", "-duration", "-rate", "-senders", "-series", "-mix", "-tags",
		"-lines-per-datagram", "-max-datagram", "-sample-rate", "-pid", "-admin", "-settle", "-find-max", "-json"} {
		if !strings.Contains(out.String(), "  "+f+" ") && !strings.Contains(out.String(), "  "+f+"\n") {
			t.Errorf("bench -h does not document %s", f)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-target", "udp://192.0.2.1:8126"}, "-allow-remote"},
		{[]string{"-target", "tcp://127.0.0.1:8126"}, "datagrams"},
		{[]string{"-mix", "counter=1,meter=2"}, "unknown type"},
		{[]string{"-rate", "fast"}, "bad -rate"},
		{[]string{"-sample-rate", "2"}, "sample rate"},
		{[]string{"-find-max", "-rate", "1,2"}, "one starting"},
		{[]string{"-tags", "500", "-max-datagram", "200"}, "datagram limit"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		out.Reset()
		if code := dispatch(append([]string{"bench"}, c.args...), &out, &out); code != 2 || !strings.Contains(out.String(), c.want) {
			t.Errorf("bench %v: exit %d, want 2 and %q in:\n%s", c.args, code, c.want, out.String())
		}
	}
	// Nothing listens at the admin address: a clear error before sending.
	out.Reset()
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	if code := dispatch([]string{"bench", "-target", udp, "-admin", admin, "-pid", "0", "-duration", "100ms"}, &out, &out); code != 1 || !strings.Contains(out.String(), "http_address") {
		t.Errorf("bench with no admin server: exit %d\n%s", code, out.String())
	}
}

// TestBenchAgainstDaemon runs bench against the real daemon at a rate it
// keeps up with easily: every line sent is processed, and the daemon's
// process tree (found from the socket) used some CPU.
func TestBenchAgainstDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  interval     = "1s"
  http_address = %q
}
source "dogstatsd" "in" {
  listen = ["udp://%s"]
}
sink "blackhole" "null" {}
`, admin, udp))

	var stdout, stderr bytes.Buffer
	code := dispatch([]string{"bench", "-target", "udp://" + udp, "-admin", "http://" + admin,
		"-rate", "20000", "-duration", "2s", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("%s%s", stderr.String(), stdout.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON row, got:\n%s", stdout.String())
	}
	var row loadgen.StepJSON
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	if row.Sent < 30000 || row.Processed == nil || *row.Processed != row.Sent || row.Lost == nil || *row.Lost != 0 {
		t.Errorf("sent %d, processed %v, lost %v: want every line processed", row.Sent, benchValue(row.Processed), benchValue(row.Lost))
	}
	if row.Errors == nil || *row.Errors != 0 {
		t.Errorf("errors %v, want 0", benchValue(row.Errors))
	}
	if row.Pid == nil || *row.Pid != d.Cmd.Process.Pid {
		t.Errorf("pid %v, want the daemon's %d", benchValue(row.Pid), d.Cmd.Process.Pid)
	}
	if row.CPUSeconds == nil || *row.CPUSeconds <= 0 || row.CPUCores == nil || *row.CPUCores <= 0 || *row.CPUCores > 4 {
		t.Errorf("cpu %v s, %v cores: want some", benchValue(row.CPUSeconds), benchValue(row.CPUCores))
	}
	if row.PeakRSSBytes == nil || *row.PeakRSSBytes < 1<<20 {
		t.Errorf("peak RSS %v", benchValue(row.PeakRSSBytes))
	}
	if row.SocketDrops == nil || *row.SocketDrops != 0 || !row.KeptUp || !row.Sendmmsg {
		t.Errorf("row %s: want no drops, kept up, sendmmsg", lines[0])
	}
	if row.SentRate < 16000 || row.SentRate > 21000 {
		t.Errorf("sent %v lines/s, asked for 20000", row.SentRate)
	}
}

func benchValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
