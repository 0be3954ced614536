package plugins_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/plugins"
)

var hclBlock = regexp.MustCompile("(?s)```hcl\n(.*?)```")

// TestReadmeExamples loads every hcl example in every plugin README, so the
// docs cannot rot, and checks that each README has the standard sections.
func TestReadmeExamples(t *testing.T) {
	// The secrets the examples read, as a deployment would set them.
	for _, name := range []string{"DD_API_KEY", "INFLUX_TOKEN", "MIMIR_PASSWORD", "OTLP_API_KEY"} {
		t.Setenv(name, "example-secret")
	}
	for _, b := range plugins.Builtins {
		path := filepath.Join(b.Kind+"s", b.Type, "README.md")
		if _, err := os.Stat(path); err != nil {
			t.Errorf("builtin %s %s has no README: %v", b.Kind, b.Type, err)
			continue
		}
		extra := ""
		if b.Kind == "source" {
			extra = "\nsink \"blackhole\" \"readme\" {}\n"
		}
		checkReadme(t, path, extra)
	}
}

// checkReadme checks that a README has the standard sections and that each
// of its hcl examples, with extra appended, loads without errors.
func checkReadme(t *testing.T, path, extra string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	for _, section := range []string{"## Name", "## Description", "## Syntax", "## Metrics", "## Examples"} {
		if !strings.Contains(string(src), section) {
			t.Errorf("%s lacks %q", path, section)
		}
	}
	examples := hclBlock.FindAllSubmatch(src, -1)
	if len(examples) == 0 {
		t.Errorf("%s has no hcl example", path)
	}
	for i, m := range examples {
		_, diags := config.Load(map[string][]byte{path: []byte(string(m[1]) + extra)}, plugins.BuiltinTypes{})
		if diags.HasErrors() {
			t.Errorf("%s example %d: %s", path, i+1, diags.Error())
		}
	}
}

// TestRouterReadmeExamples checks the READMEs of routers/*/ as
// TestReadmeExamples does the builtins': the standard sections, and every
// hcl example loads. A router's examples are whole pipelines, loaded as
// written.
func TestRouterReadmeExamples(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("routers", "*", "README.md"))
	if len(paths) == 0 {
		t.Fatal("no routers/*/README.md")
	}
	for _, path := range paths {
		checkReadme(t, path, "")
	}
}
