package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/schema"
	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite golden files")

type testTypes map[string]schema.Schema

func (c testTypes) Types(kind string) []string {
	var out []string
	for k := range c {
		if t, ok := strings.CutPrefix(k, kind+"."); ok {
			out = append(out, t)
		}
	}
	return out
}

func (c testTypes) Lookup(kind, typ string) (PluginInfo, error) {
	s, ok := c[kind+"."+typ]
	if !ok {
		return PluginInfo{}, ErrUnknownPlugin
	}
	return PluginInfo{Schema: s, ReadsSockets: kind+"."+typ == "source.reader"}, nil
}

// Check rejects, as plugins would, a localfile path that is not absolute,
// and a dogstatsd max_packet_size below 512 and an idle_timeout that is not
// a duration, both at once.
func (c testTypes) Check(kind, typ string, values []byte) error {
	if typ == "http" {
		var cfg struct {
			Token string `json:"token"`
		}
		json.Unmarshal(values, &cfg)
		if strings.Contains(cfg.Token, " ") {
			return &sdk.AttrError{Attribute: "token", Summary: "Invalid token", Detail: fmt.Sprintf("The token %q has a space.", cfg.Token)}
		}
	}
	if typ == "localfile" && strings.Contains(string(values), `"path":"relative`) {
		return &sdk.AttrError{Attribute: "path", Summary: "Invalid path", Detail: "The path must be absolute."}
	}
	if typ == "dogstatsd" {
		var cfg struct {
			MaxPacketSize *int    `json:"max_packet_size"`
			IdleTimeout   *string `json:"idle_timeout"`
		}
		if err := json.Unmarshal(values, &cfg); err != nil {
			return err
		}
		var errs []error
		if cfg.MaxPacketSize != nil && *cfg.MaxPacketSize < 512 {
			errs = append(errs, &sdk.AttrError{Attribute: "max_packet_size", Summary: "Packet size out of range", Detail: "Too small."})
		}
		if cfg.IdleTimeout != nil {
			if _, err := time.ParseDuration(*cfg.IdleTimeout); err != nil {
				errs = append(errs, &sdk.AttrError{Attribute: "idle_timeout", Summary: "Invalid duration", Detail: "Not a duration."})
			}
		}
		return errors.Join(errs...)
	}
	return nil
}

var catalog = testTypes{
	"source.dogstatsd": {
		{Name: "max_packet_size", Type: cty.Number},
		{Name: "idle_timeout", Type: cty.String},
	},
	// A source written when plugins declared listen themselves.
	"source.legacy": {
		{Name: "listen", Type: cty.List(cty.String), Required: true},
		{Name: "readers", Type: cty.Number},
		{Name: "count", Type: cty.Number},
	},
	// A source that reads nothing but its listen sockets (sdk.SocketReader).
	"source.reader": {},
	"sink.debug":    {},
	"sink.http": {
		{Name: "url", Type: cty.String, Required: true},
		{Name: "token", Type: cty.String, Sensitive: true},
	},
	"sink.localfile": {{Name: "path", Type: cty.String, Required: true}},
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
			WriteDiagnostics(&got, cfg.Text(), diags)
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
  listen  = ["udp://127.0.0.1:8126", "unixgram:///run/dsd.sock"]
  readers = 4
}
source "dogstatsd" "quiet" {}
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
	if len(cfg.Sources) != 2 || cfg.Sources[0].Address() != "source.dogstatsd.in" {
		t.Fatalf("sources = %+v", cfg.Sources)
	}
	in, quiet := cfg.Sources[0], cfg.Sources[1]
	want := []sdk.Address{{Network: "udp", Host: "127.0.0.1", Port: 8126}, {Network: "unixgram", Path: "/run/dsd.sock"}}
	if !reflect.DeepEqual(in.Listen, want) || in.Readers != 4 {
		t.Errorf("listen = %+v, readers = %d", in.Listen, in.Readers)
	}
	// veneurd's attributes are not the plugin's: it never sees them.
	if got := string(in.JSON); got != `{}` {
		t.Errorf("source JSON = %s", got)
	}
	if len(quiet.Listen) != 0 || quiet.Readers != 1 {
		t.Errorf("a source without listen: listen = %+v, readers = %d", quiet.Listen, quiet.Readers)
	}
	if got := string(cfg.Sinks[0].JSON); got != `{"path":"/tmp/x.jsonl"}` {
		t.Errorf("sink JSON = %s", got)
	}
	if cfg.Sinks[0].FlushTimeout != 2*time.Second {
		t.Errorf("flush_timeout = %v, want the interval", cfg.Sinks[0].FlushTimeout)
	}
}

// TestLegacySourceGetsListen loads a source that declares listen and
// readers in its own schema, as plugins did before veneurd owned them: it
// still gets their values, and veneurd still checks them.
func TestLegacySourceGetsListen(t *testing.T) {
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(`
source "legacy" "in" {
  listen  = ["udp://127.0.0.1:8126"]
  readers = 2
  count   = 3
}
sink "debug" "out" {}
`)}, catalog)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b := cfg.Sources[0]
	if got := string(b.JSON); got != `{"count":3,"listen":["udp://127.0.0.1:8126"],"readers":2}` {
		t.Errorf("JSON = %s", got)
	}
	if len(b.Listen) != 1 || b.Listen[0].Port != 8126 || b.Readers != 2 {
		t.Errorf("listen = %+v, readers = %d", b.Listen, b.Readers)
	}
	// /config shows each attribute once.
	if got := strings.Count(string(cfg.HCL()), "listen "); got != 1 {
		t.Errorf("listen written %d times:\n%s", got, cfg.HCL())
	}

	_, diags = Load(map[string][]byte{"a.hcl": []byte(`source "legacy" "in" {
  count = 3
}
sink "debug" "out" {}
`)}, catalog)
	if got := diags.Error(); got != `a.hcl:1,22-22: Missing required argument; The argument "listen" is required, but no definition was found.` {
		t.Errorf("a legacy source without listen: %s", got)
	}
	_, diags = Load(map[string][]byte{"a.hcl": []byte(`source "legacy" "in" {
  count  = 3
  listen = ["udp://127.0.0.1"]
}
sink "debug" "out" {}
`)}, catalog)
	if got := diags.Error(); got != `a.hcl:3,13-30: Invalid listen address; "udp://127.0.0.1" has no port: write it as udp://127.0.0.1:8126.` {
		t.Errorf("a legacy source with a bad listen: %s", got)
	}
}

// TestHCLShowsHostAttributes renders the effective config: veneurd's
// attributes are there, with their defaults.
func TestHCLShowsHostAttributes(t *testing.T) {
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(`
veneurd {
  hostname = "h"
  interval = "5s"
}
source "dogstatsd" "in" {
  listen          = ["udp://localhost:08126", "tcp://[::1]:8126"]
  max_packet_size = 1024
}
source "dogstatsd" "quiet" {}
sink "debug" "out" {}
sink "debug" "slow" {
  flush_timeout = "30s"
}
`)}, catalog)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := string(cfg.HCL())
	_, blocks, _ := strings.Cut(got, "source ")
	want := `"dogstatsd" "in" {
  listen          = ["udp://localhost:8126", "tcp://[::1]:8126"]
  readers         = 1
  max_packet_size = 1024
}

source "dogstatsd" "quiet" {
}

sink "debug" "out" {
  flush_timeout = "5s"
}

sink "debug" "slow" {
  flush_timeout = "30s"
}
`
	if blocks != want {
		t.Errorf("plugin blocks rendered as\n%s\nwant\n%s", blocks, want)
	}
	// What /config shows loads back to the same.
	back, diags := Load(map[string][]byte{"config.hcl": cfg.HCL()}, catalog)
	if diags.HasErrors() {
		t.Fatalf("the rendered config does not load: %s\n%s", diags, got)
	}
	for i, b := range back.Sources {
		if b.Hash != cfg.Sources[i].Hash {
			t.Errorf("%s: hash changed through /config", b.Address())
		}
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
	if a1, a2 := load("/a"), load("/a"); a1 != a2 || a1 == load("/b") {
		t.Fatal("block hash does not follow its values")
	}
	source := func(body string) string {
		cfg, diags := Load(map[string][]byte{"a.hcl": []byte("source \"dogstatsd\" \"in\" {\n" + body + "\n}\n")}, catalog)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg.Sources[0].Hash
	}
	a := source(`listen = ["udp://127.0.0.1:8126"]`)
	for _, body := range []string{`listen = ["udp://127.0.0.1:8127"]`, `listen = ["udp://127.0.0.1:8126"]` + "\nreaders = 2\n", ""} {
		if source(body) == a {
			t.Errorf("the hash of %q is the hash of another listen", body)
		}
	}
	if source(`listen = ["udp://127.0.0.1:08126"]`) != a {
		t.Error("the same address written otherwise changes the hash")
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

// TestSecretsNeverShown renders diagnostics about sensitive attributes: a
// wrong type, and a plugin's complaint that quotes the value. Neither
// value appears, in the source line or in the text.
func TestSecretsNeverShown(t *testing.T) {
	src := `sink "http" "a" {
  url   = "https://example.com"
  token = "hunter2 and more"
}
sink "http" "b" {
  url = "https://example.com"
  token = ["s3cr3t-in-a-list"] # a list where a string goes
}
`
	cfg, diags := Load(map[string][]byte{"p.hcl": []byte(src)}, catalog)
	if len(diags) != 2 {
		t.Fatalf("%d diagnostics, want 2: %v", len(diags), diags)
	}
	var got bytes.Buffer
	WriteDiagnostics(&got, cfg.Text(), diags)
	out := got.String()
	for _, secret := range []string{"hunter2", "s3cr3t"} {
		if strings.Contains(out, secret) {
			t.Errorf("diagnostics show the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		`p.hcl:3:11: error: Invalid token`, `The token "(sensitive)" has a space.`, `token = ******************`,
		`p.hcl:7:11: error: Incorrect attribute value type`, `token = ******************** # a list where a string goes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, out)
		}
	}
}

// TestDiagnosticsSorted checks that every problem is reported, in the order
// of the file, whichever part of the loader found it.
func TestDiagnosticsSorted(t *testing.T) {
	src := `veneurd {
  interval     = "-1s"
  http_address = "localhost"
}
source "dogstatsd" "x" {
  listen          = ["udp://127.0.0.1:99999"]
  max_packet_size = 1
  idle_timeout    = "x"
  readers         = 0
}
`
	_, diags := Load(map[string][]byte{"p.hcl": []byte(src)}, catalog)
	var lines []int
	for _, d := range diags {
		lines = append(lines, d.Subject.Start.Line)
	}
	if want := []int{2, 3, 6, 7, 8, 9}; !slices.Equal(lines, want) {
		t.Errorf("diagnostics on lines %v, want %v: %v", lines, want, diags)
	}
}
