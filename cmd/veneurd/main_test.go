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
