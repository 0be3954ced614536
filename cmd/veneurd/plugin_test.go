package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestExternalSinkEndToEnd runs the example third-party sink, built as its
// own binary and pinned by checksum: metrics sent over UDP arrive in its
// output file.
func TestExternalSinkEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	bin := daemontest.BuildPlugin(t, "./examples/plugins/sink_example", dir)
	out := filepath.Join(dir, "points.jsonl")
	addr := daemontest.FreePort(t, "udp")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
plugin "sink" "example" {
  path   = %q
  sha256 = %q
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "example" "main" { path = %q }
`, bin, sha256File(t, bin), addr, out))

	var example bool
	for _, p := range daemontest.Children(d.Cmd.Process.Pid) {
		example = example || p.Cmdline[0] == bin
	}
	if !example {
		t.Error("the example sink does not run as a child process of veneurd")
	}
	sendLines(t, addr, "ext.requests:2|c|#env:test\next.requests:3|c|#env:test\next.temp:21.5|g\n")
	lines := d.WaitLines(out, 15*time.Second, func(ls []daemontest.Line) bool {
		return daemontest.Sum(ls, "ext.requests", "env:test") >= 5 && daemontest.Sum(ls, "ext.temp") > 0
	})
	if got := daemontest.Sum(lines, "ext.requests", "env:test"); got != 5 {
		t.Errorf("ext.requests = %v, want 5", got)
	}
	if got := daemontest.Sum(lines, "ext.temp"); got != 21.5 {
		t.Errorf("ext.temp = %v, want 21.5", got)
	}

	out2, err := exec.Command(daemontest.Binary(t), "plugins", "-config", d.Config).CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "sink    example") || !strings.Contains(string(out2), "sha256 pinned") {
		t.Errorf("veneurd plugins: %v\n%s", err, out2)
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
sink "example" "main" { path = %q }
`, bin, strings.Repeat("0", 64), filepath.Join(dir, "out.jsonl")))
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
sink "example" "main" { path = "`+filepath.Join(dir, "out.jsonl")+`" }
`)
	if out, err := exec.Command(daemontest.Binary(t), "validate", good).CombinedOutput(); err != nil {
		t.Fatalf("validate with plugin_dir: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.hcl")
	writeFile(t, bad, `veneurd { plugin_dir = "plugins" }
sink "example" "main" {
  path  = "`+filepath.Join(dir, "missing", "out.jsonl")+`"
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
  path  = "`+filepath.Join(dir, "missing", "out.jsonl")+`"
}
`)
	out, _ = exec.Command(daemontest.Binary(t), "validate", bad).CombinedOutput()
	if want := bad + ":3:11: error:"; !strings.Contains(string(out), want) {
		t.Errorf("the plugin's own complaint is not at its attribute (%q):\n%s", want, out)
	}
}
