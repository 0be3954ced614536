package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

var updateRoute = flag.Bool("update", false, "rewrite the output of testdata/route/*.txtar")

// TestRouteGolden runs `veneurd route test` on each testdata/route/*.txtar:
// the pipeline "config.hcl", the lines of "input" on standard input, and
// "output" what it must print. With -update, output is rewritten.
func TestRouteGolden(t *testing.T) {
	paths, _ := filepath.Glob("testdata/route/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no testdata/route/*.txtar")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]*txtar.File{}
			for i := range ar.Files {
				files[ar.Files[i].Name] = &ar.Files[i]
			}
			for _, name := range []string{"config.hcl", "input", "output"} {
				if files[name] == nil {
					t.Fatalf("%s has no %s", path, name)
				}
			}
			cfg := filepath.Join(t.TempDir(), "config.hcl")
			writeFile(t, cfg, string(files["config.hcl"].Data))
			input := string(files["input"].Data)

			got := runRouteTest(t, input, "route", "test", "-config", cfg)
			if *updateRoute {
				files["output"].Data = []byte(got)
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(files["output"].Data); got != want {
				t.Errorf("output differs (-update rewrites it)\ngot:\n%s\nwant:\n%s", got, want)
			}

			// The lines given as arguments print the same.
			args := []string{"route", "test", "-config", cfg}
			for _, l := range strings.Split(input, "\n") {
				if l != "" {
					args = append(args, l)
				}
			}
			if byArgs := runRouteTest(t, "", args...); byArgs != got {
				t.Errorf("lines as arguments print otherwise than on standard input:\n%s", byArgs)
			}
		})
	}
}

// runRouteTest runs veneurd with args and stdin, and returns its standard
// output; it fails the test unless it exits 0 with nothing on standard
// error.
func runRouteTest(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	old := routeStdin
	defer func() { routeStdin = old }()
	routeStdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	if code := dispatch(args, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
	}
	return stdout.String()
}

// TestRouteUsage checks route's exit codes: 2 for a misuse, 0 for -h, 1
// with the diagnostics for a pipeline that does not load.
func TestRouteUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"route"}, 2, "veneurd route: missing subcommand"},
		{[]string{"route", "check"}, 2, `veneurd route: unknown subcommand "check"`},
		{[]string{"route", "test"}, 2, "veneurd route test: missing -config"},
		{[]string{"route", "test", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"route", "-h"}, 0, "Usage: veneurd route test -config"},
		{[]string{"route", "test", "-h"}, 0, "Usage: veneurd route test -config"},
	} {
		var stdout, stderr bytes.Buffer
		if code := dispatch(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d; stderr lacks %q?\n%s", tc.args, code, tc.code, tc.want, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("%v: printed on standard output:\n%s", tc.args, stdout.String())
		}
	}

	cfg := filepath.Join(t.TempDir(), "bad.hcl")
	writeFile(t, cfg, `veneurd { hostname = "h" }
sink "blackhole" "a" {}
metric_sink_routing "r" {
  match { name = prefix("a") }
  matched = [sink.blackhole.b]
}
`)
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"route", "test", "-config", cfg, "a:1|c"}, &stdout, &stderr); code != 1 {
		t.Errorf("config with errors: exit %d, want 1\n%s", code, stderr.String())
	}
	for _, want := range []string{cfg + ":5:14: error: Undeclared sink", "The pipeline declares no sink.blackhole.b"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("diagnostics lack %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("config with errors: printed on standard output:\n%s", stdout.String())
	}
}
