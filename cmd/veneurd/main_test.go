package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHelpListsCommands(t *testing.T) {
	var out bytes.Buffer
	if code := dispatch([]string{"-h"}, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"run", "validate", "version"} {
		if !strings.Contains(out.String(), "  "+c+" ") {
			t.Errorf("help lacks %q:\n%s", c, out.String())
		}
	}
	if strings.Contains(out.String(), "plugin-serve") {
		t.Error("help shows the internal plugin-serve command")
	}
	for _, c := range []string{"run", "validate", "version"} {
		out.Reset()
		if code := dispatch([]string{c, "-h"}, &out, &out); code != 0 || !strings.Contains(out.String(), "Usage: veneurd "+c) {
			t.Errorf("%s -h: exit %d\n%s", c, code, out.String())
		}
	}
}

func TestDefaultPipelineIsValid(t *testing.T) {
	cfg, diags := loadPipeline("", hclog.NewNullLogger())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(cfg.Sources) != 1 || len(cfg.Sinks) != 1 || cfg.Sinks[0].Address() != "sink.debug.stdout" {
		t.Fatalf("default pipeline: %d sources, %d sinks", len(cfg.Sources), len(cfg.Sinks))
	}
}

// TestUsageErrors checks that misused commands exit 2 and say what is wrong,
// rather than run with what they were given ignored.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "pipeline.hcl"}, []string{`unexpected argument "pipeline.hcl"`, "-config pipeline.hcl"}},
		{[]string{"run", "-log-level", "loud"}, []string{`invalid -log-level "loud"`, "trace, debug, info, warn or error"}},
		{[]string{"plugins", "pipeline.hcl"}, []string{`unexpected argument "pipeline.hcl"`, "-config pipeline.hcl"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := dispatch(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", tc.args, code, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, stderr.String())
			}
		}
	}
}

// TestVersionFlag checks that -version and --version print what the version
// command prints.
func TestVersionFlag(t *testing.T) {
	var want bytes.Buffer
	if code := dispatch([]string{"version"}, &want, &want); code != 0 {
		t.Fatalf("version: exit %d", code)
	}
	for _, arg := range []string{"-version", "--version"} {
		var stdout, stderr bytes.Buffer
		if code := dispatch([]string{arg}, &stdout, &stderr); code != 0 || stdout.String() != want.String() {
			t.Errorf("%s: exit %d, printed %q, want %q\n%s", arg, code, stdout.String(), want.String(), stderr.String())
		}
	}
}
