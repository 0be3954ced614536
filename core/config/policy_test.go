package config

import (
	"bytes"
	"testing"
)

// TestPolicyDiagnosticsInOrder loads a sink whose add_tags and strip_tags
// hold several mistakes, many times: the diagnostics come in the same order
// every time.
func TestPolicyDiagnosticsInOrder(t *testing.T) {
	src := []byte(`sink "localfile" "archive" {
  path       = "/var/lib/veneurd/archive.jsonl"
  add_tags   = { "a:1" = "x", "b:2" = "x", "c:3" = "x", "d,4" = "x", e = "5,6", "f:7" = "x" }
  strip_tags = ["g:8", "h,9"]
}
`)
	var first []byte
	for i := range 50 {
		cfg, diags := Load(map[string][]byte{"config.hcl": src}, catalog)
		if len(diags) != 8 {
			t.Fatalf("%d diagnostics, want 8: %v", len(diags), diags)
		}
		var out bytes.Buffer
		WriteDiagnostics(&out, cfg.Text(), diags)
		if i == 0 {
			first = out.Bytes()
			continue
		}
		if !bytes.Equal(out.Bytes(), first) {
			t.Fatalf("load %d rendered\n%s\nload 1 rendered\n%s", i+1, out.Bytes(), first)
		}
	}
}
