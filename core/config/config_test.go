package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/schema"
	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite golden files")

type testCatalog map[string]schema.Schema

func (c testCatalog) Types(kind string) []string {
	var out []string
	for k := range c {
		if t, ok := strings.CutPrefix(k, kind+"."); ok {
			out = append(out, t)
		}
	}
	return out
}

func (c testCatalog) Lookup(kind, typ string) (PluginInfo, error) {
	s, ok := c[kind+"."+typ]
	if !ok {
		return PluginInfo{}, ErrUnknownPlugin
	}
	return PluginInfo{Schema: s}, nil
}

// Check rejects a localfile path that is not absolute, as a plugin would.
func (c testCatalog) Check(kind, typ string, values []byte) error {
	if typ == "localfile" && strings.Contains(string(values), `"path":"relative`) {
		return &sdk.AttrError{Attribute: "path", Summary: "Invalid path", Detail: "The path must be absolute."}
	}
	return nil
}

var catalog = testCatalog{
	"source.dogstatsd": {{Name: "listen", Type: cty.List(cty.String), Required: true}},
	"sink.debug":       {},
	"sink.localfile":   {{Name: "path", Type: cty.String, Required: true}},
}

// TestDiagnostics renders the diagnostics of each testdata/diagnostics/*.txtar
// archive's config.hcl and compares them with its "diagnostics" file.
func TestDiagnostics(t *testing.T) {
	archives, _ := filepath.Glob("testdata/diagnostics/*.txtar")
	if len(archives) < 8 {
		t.Fatalf("only %d golden cases", len(archives))
	}
	for _, path := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			srcs := map[string][]byte{}
			var want []byte
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "diagnostics" {
					want, wantIdx = f.Data, i
				} else {
					srcs[f.Name] = f.Data
				}
			}
			cfg, diags := Load(srcs, catalog)
			var got bytes.Buffer
			WriteDiagnostics(&got, cfg.Files, diags)
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "diagnostics"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = got.Bytes()
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !diags.HasErrors() {
				t.Errorf("no error diagnostics")
			}
			if got.String() != string(want) {
				t.Errorf("diagnostics differ\n--- got\n%s--- want\n%s", got.String(), want)
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	t.Setenv("VENEURD_TEST_HOST", "h1")
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(`
veneurd {
  hostname = env("VENEURD_TEST_HOST")
  interval = "2s"
}
aggregation {
  percentiles = [0.5, 0.999]
  aggregates  = ["min", "hmean"]
}
source "dogstatsd" "in" {
  listen = ["udp://127.0.0.1:8126"]
}
`), "b.hcl": []byte(`
sink "localfile" "out" {
  path = "/tmp/x.jsonl"
}
`)}, catalog)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.Daemon.Hostname != "h1" || cfg.Daemon.Interval != 2*time.Second {
		t.Errorf("daemon = %+v", cfg.Daemon)
	}
	if a := cfg.Aggregation; len(a.Percentiles) != 2 || a.Percentiles[1] != 0.999 || a.Aggregates[1] != "hmean" || a.TDigestCompression != 100 {
		t.Errorf("aggregation = %+v", a)
	}
	if len(cfg.Sources) != 1 || cfg.Sources[0].Address() != "source.dogstatsd.in" {
		t.Fatalf("sources = %+v", cfg.Sources)
	}
	if got := string(cfg.Sinks[0].JSON); got != `{"path":"/tmp/x.jsonl"}` {
		t.Errorf("sink JSON = %s", got)
	}
}

func TestHashFollowsValues(t *testing.T) {
	load := func(path string) string {
		cfg, diags := Load(map[string][]byte{"a.hcl": []byte(`sink "localfile" "out" { path = "` + path + `" }`)}, catalog)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg.Sinks[0].Hash
	}
	if load("/a") != load("/a") || load("/a") == load("/b") {
		t.Fatal("block hash does not follow its values")
	}
}

func TestLoadPathDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-daemon.hcl", "veneurd {\n  interval = \"5s\"\n}\n")
	write("20-sinks.hcl", "sink \"debug\" \"stdout\" {}\n")
	write("notes.txt", "not a pipeline")
	cfg, diags := LoadPath(dir, catalog)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.Daemon.Interval != 5*time.Second || len(cfg.Sinks) != 1 {
		t.Fatalf("loaded %+v with %d sinks", cfg.Daemon, len(cfg.Sinks))
	}
	// A mistake in one file names that file.
	write("30-bad.hcl", "sink \"debug\" \"stdout\" {}\n")
	_, diags = LoadPath(dir, catalog)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "30-bad.hcl:1,1") || !strings.Contains(diags.Error(), "20-sinks.hcl:1:1") {
		t.Fatalf("duplicate across files: %v", diags)
	}
	if _, diags := LoadPath(t.TempDir(), catalog); !diags.HasErrors() {
		t.Fatal("an empty directory loaded")
	}
}
