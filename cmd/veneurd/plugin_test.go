package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// endpoint is an HTTP endpoint for the example sink: it sums the values of
// the points it receives by name and tags, and checks each request's token.
type endpoint struct {
	*httptest.Server
	mu      sync.Mutex
	sums    map[string]float64 // by "name{tags}"
	arrived chan struct{}
}

func newEndpoint(t *testing.T, token string) *endpoint {
	e := &endpoint{sums: map[string]float64{}, arrived: make(chan struct{}, 1)}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("a request with Authorization %q", got)
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("a request that is not gzipped: %v", err)
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for dec := json.NewDecoder(zr); dec.More(); {
			var p struct {
				Metric string   `json:"metric"`
				Value  float64  `json:"value"`
				Tags   []string `json:"tags"`
			}
			if err := dec.Decode(&p); err != nil {
				t.Errorf("a request whose body does not decode: %v", err)
				return
			}
			e.sums[p.Metric+"{"+strings.Join(p.Tags, ",")+"}"] += p.Value
		}
		select {
		case e.arrived <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(e.Close)
	return e
}

// sum returns the sum of the values received for the series.
func (e *endpoint) sum(series string) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sums[series]
}

// waitFor waits until cond holds, checking it as requests arrive.
func (e *endpoint) waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-e.arrived:
		case <-deadline:
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("condition not met within %s; received %v", timeout, e.sums)
		}
	}
}

// TestExternalSinkEndToEnd runs the example third-party sink, built as its
// own binary and pinned by checksum: metrics sent over UDP arrive at an HTTP
// endpoint, with the sink's token, which veneurd never shows.
func TestExternalSinkEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	bin := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	const token = "t0k3n-e2e"
	ep := newEndpoint(t, token)
	addr := daemontest.FreePort(t, "udp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
plugin "sink" "example" {
  path   = %q
  sha256 = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "example" "main" {
  url   = %q
  token = %q
}
`, bin, sha256File(t, bin), addr, ep.URL, token))

	var example bool
	for _, p := range daemontest.Children(d.Cmd.Process.Pid) {
		example = example || p.Cmdline[0] == bin
	}
	if !example {
		t.Error("the example sink does not run as a child process of veneurd")
	}
	sendLines(t, addr, "ext.requests:2|c|#env:test\next.requests:3|c|#env:test\next.temp:21.5|g\n")
	ep.waitFor(t, 15*time.Second, func() bool {
		return ep.sum("ext.requests{env:test}") >= 5 && ep.sum("ext.temp{}") > 0
	})
	if got := ep.sum("ext.requests{env:test}"); got != 5 {
		t.Errorf("ext.requests = %v, want 5", got)
	}
	if got := ep.sum("ext.temp{}"); got != 21.5 {
		t.Errorf("ext.temp = %v, want 21.5", got)
	}

	out2, err := exec.Command(daemontest.Binary(t), "plugins", "-config", d.Config).CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "sink    example") || !strings.Contains(string(out2), "sha256 pinned") {
		t.Errorf("veneurd plugins: %v\n%s", err, out2)
	}
	if strings.Contains(d.Logs(), token) || strings.Contains(string(out2), token) {
		t.Errorf("the sensitive token was shown")
	}
}

// TestExternalSourceEndToEnd runs the example third-party source, built as
// its own binary and pinned by checksum: the metrics sent to it as JSON
// lines are flushed exactly, and its own count of connections (sdk.Stats)
// reaches veneurd's self-metrics, tagged with the source's address.
func TestExternalSourceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	bin := daemontest.BuildPlugin(t, "./examples/plugins/source_example", dir)
	addr := daemontest.FreePort(t, "tcp")
	out := filepath.Join(dir, "out.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
plugin "source" "example" {
  path   = %q
  sha256 = %q
}
source "example" "in" { listen = ["tcp://%s"] }
sink "localfile" "out" { path = %q }
`, bin, sha256File(t, bin), addr, out))

	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "{\"metric\":\"ext.jobs\",\"type\":\"counter\",\"value\":%d,\"tags\":[\"queue:a\"]}\n", i+1)
		c.Close()
	}
	const connections = `veneur_example_connections_total{source="source.example.in"}`
	d.WaitMetric(connections, 10*time.Second, func(v float64) bool { return v >= 3 })
	lines := d.WaitLines(out, 10*time.Second, func(ls []daemontest.Line) bool { return daemontest.Sum(ls, "ext.jobs", "queue:a") >= 6 })
	if got := daemontest.Sum(lines, "ext.jobs", "queue:a"); got != 6 {
		t.Errorf("ext.jobs = %v, want 6", got)
	}
	if got := d.WaitMetric(connections, time.Second, func(float64) bool { return true }); got != 3 {
		t.Errorf("%s = %v, want 3", connections, got)
	}
}

// TestExternalSinkRefusedByChecksum checks that validate and run refuse a
// binary that does not match its pin, saying so at the plugin block.
func TestExternalSinkRefusedByChecksum(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	bin := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	pipeline := filepath.Join(dir, "p.hcl")
	writeFile(t, pipeline, fmt.Sprintf(`plugin "sink" "example" {
  path   = %q
  sha256 = "%s"
}
sink "example" "main" { url = "http://127.0.0.1:9/points" }
`, bin, strings.Repeat("0", 64)))
	for _, args := range [][]string{{"validate", pipeline}, {"run", "-config", pipeline}} {
		out, err := exec.Command(daemontest.Binary(t), args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%s: %v\n%s", args[0], err, out)
		}
		if want := pipeline + ":2:12: error: Cannot start plugin"; !strings.Contains(string(out), want) ||
			!strings.Contains(string(out), "does not match its sha256") {
			t.Errorf("%s output lacks %q and the reason:\n%s", args[0], want, out)
		}
	}
}

func sendLines(t *testing.T, addr, payload string) {
	t.Helper()
	c, err := netDial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
}

// TestPluginDirAndExternalDiagnostics finds a plugin in veneurd { plugin_dir }
// and reports mistakes in its block, the plugin's own complaints included,
// at their file:line:column.
func TestPluginDirAndExternalDiagnostics(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	bin := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	if err := os.Rename(bin, filepath.Join(plugins, "veneurd-sink-example")); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.hcl")
	writeFile(t, good, `veneurd { plugin_dir = "plugins" }
sink "example" "main" { url = "http://127.0.0.1:9/points" }
`)
	if out, err := exec.Command(daemontest.Binary(t), "validate", good).CombinedOutput(); err != nil {
		t.Fatalf("validate with plugin_dir: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.hcl")
	writeFile(t, bad, `veneurd { plugin_dir = "plugins" }
sink "example" "main" {
  url   = "http://127.0.0.1:9/points"
  color = "blue"
}
`)
	out, _ := exec.Command(daemontest.Binary(t), "validate", bad).CombinedOutput()
	for _, want := range []string{bad + ":4:3: error: Unsupported argument"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	writeFile(t, bad, `veneurd { plugin_dir = "plugins" }
sink "example" "main" {
  url   = "ftp://127.0.0.1/points"
}
`)
	out, _ = exec.Command(daemontest.Binary(t), "validate", bad).CombinedOutput()
	if want := bad + ":3:11: error:"; !strings.Contains(string(out), want) {
		t.Errorf("the plugin's own complaint is not at its attribute (%q):\n%s", want, out)
	}
}

// TestRelativePluginPathIsNotSearchedInPATH runs validate from the config's
// folder with a relative config and plugin path, while a decoy of the same
// name comes first in $PATH: the plugin next to the config must run, never
// the decoy.
func TestRelativePluginPathIsNotSearchedInPATH(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "conf")
	decoyDir := filepath.Join(dir, "decoy")
	for _, d := range []string{cfgDir, decoyDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	if err := os.Rename(bin, filepath.Join(cfgDir, "xsink")); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "decoy-ran")
	if err := os.WriteFile(filepath.Join(decoyDir, "xsink"), []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfgDir, "s.hcl"), `plugin "sink" "example" { path = "./xsink" }
sink "example" "main" { url = "http://127.0.0.1:9/points" }
`)
	for _, args := range [][]string{{"validate", "s.hcl"}, {"validate", "./s.hcl"}, {"plugins", "-config", "s.hcl"}} {
		cmd := exec.Command(daemontest.Binary(t), args...)
		cmd.Dir = cfgDir
		cmd.Env = append(os.Environ(), "PATH="+decoyDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%v ran the decoy found in $PATH\n%s", args, out)
		}
	}
}

// TestPluginStartTimeout runs validate and run on an external plugin that
// forks a child and never completes the handshake: both give up within
// plugin_start_timeout, say so at the plugin block, and leave no child behind.
func TestPluginStartTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "hang")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+pidFile+"\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pipeline := filepath.Join(dir, "p.hcl")
	writeFile(t, pipeline, fmt.Sprintf(`veneurd { plugin_start_timeout = "2s" }
plugin "sink" "hang" { path = %q }
sink "hang" "main" {}
`, script))
	for _, args := range [][]string{{"validate", pipeline}, {"run", "-config", pipeline}} {
		os.Remove(pidFile)
		cmd := exec.Command(daemontest.Binary(t), args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s still running after 30s\n%s", args[0], out.String())
		}
		took := time.Since(start)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%s: %v\n%s", args[0], err, out.String())
		}
		if took > 8*time.Second {
			t.Errorf("%s took %s with a 2s plugin_start_timeout", args[0], took)
		}
		if want := pipeline + ":2:31: error: Cannot start plugin"; !strings.Contains(out.String(), want) ||
			!strings.Contains(out.String(), "plugin_start_timeout") {
			t.Errorf("%s output lacks %q and the timeout:\n%s", args[0], want, out.String())
		}
		b, rerr := os.ReadFile(pidFile)
		if rerr != nil {
			t.Fatalf("%s: the plugin did not write its child's pid: %v", args[0], rerr)
		}
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr != nil {
			t.Fatal(perr)
		}
		if !daemontest.Until(10*time.Second, func() bool { return !alive(pid) }) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s: the plugin's child %d outlived it", args[0], pid)
		}
	}
}

// alive reports whether a process exists and is not a zombie waiting for
// its reaper.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// TestSecretsNeverInDiagnostics gives a sensitive attribute a wrong value:
// neither `veneurd validate`, nor a reload's log line, nor the body of
// POST /-/reload's answer shows it.
func TestSecretsNeverInDiagnostics(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	bin := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	admin := daemontest.FreePort(t, "tcp")
	pipeline := func(token string) string {
		return fmt.Sprintf(`
veneurd {
  interval     = "1h"
  http_address = %q
}
plugin "sink" "example" { path = %q }
sink "example" "main" {
  url   = "http://127.0.0.1:1/"
  token = %s
}
`, admin, bin, token)
	}
	const secret = "hunter2-very-secret"
	d := daemontest.Start(t, pipeline(`"good-token"`))
	d.WaitLog("pipeline started", 15*time.Second)

	for _, bad := range []string{`["` + secret + `"]`, `"` + secret + ` with a space"`} {
		writeFile(t, d.Config, pipeline(bad))
		out, _ := exec.Command(daemontest.Binary(t), "validate", d.Config).CombinedOutput()
		if !strings.Contains(string(out), "error:") || strings.Contains(string(out), secret) {
			t.Errorf("validate with token = %s: want an error that does not show the secret:\n%s", bad, out)
		}
		resp, err := http.Post("http://"+admin+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), secret) {
			t.Errorf("POST /-/reload with token = %s: %d, want 400 without the secret:\n%s", bad, resp.StatusCode, body)
		}
	}
	if strings.Contains(d.Logs(), secret) {
		t.Errorf("veneurd's log shows the secret:\n%s", d.Logs())
	}
}
