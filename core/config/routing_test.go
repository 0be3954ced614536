package config

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/veneurd/veneurd/plugins/routers/match"
)

const routed = `
source "dogstatsd" "in" {
  listen = ["udp://127.0.0.1:8126"]
}
sink "debug" "out" {}
sink "localfile" "archive" {
  path       = "/var/log/archive.jsonl"
  add_tags   = { env = "prod", flag = "" }
  strip_tags = ["host"]
  max_tags   = 8
}
metric_sink_routing "payments" {
  match {
    name = prefix("pay.")
    tags = [exact("team:payments"), unset(prefix("canary"))]
  }
  match {
    name = regex("^billing\\.")
  }
  matched     = [sink.localfile.archive]
  not_matched = [sink.debug.out]
}
drop "noisy" {
  match {
    name = exact("debug.requests")
  }
}
`

func TestLoadRouting(t *testing.T) {
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(routed)}, catalog)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	r := cfg.Routing.Router
	if len(r.Rules) != 1 || len(r.Rules[0].Match) != 2 || r.Rules[0].Matched != 0b10 || r.Rules[0].NotMatched != 0b01 {
		t.Fatalf("rules: %+v", r.Rules)
	}
	if got := r.Policies[1]; strings.Join(got.AddTags, ",") != "env:prod,flag" || got.StripTags[0] != "host" || got.MaxTags != 8 {
		t.Errorf("archive's policy: %+v", got)
	}
	if !r.Policies[0].IsZero() {
		t.Errorf("out has a policy: %+v", r.Policies[0])
	}
	if x := r.Routing(); x.Route("pay.x", "", "team:payments") != 0b10 || x.Route("pay.x", "", "canary,team:payments") != 0b01 ||
		x.Route("billing.y", "", "") != 0b10 {
		t.Error("the loaded rule routes otherwise than written")
	}
	if len(cfg.Routing.Drops) != 1 || cfg.Sources[0].Drops.Take([]byte("debug.requests"), nil) != 0 {
		t.Errorf("drops: %+v", cfg.Routing.Drops)
	}

	// What /config shows loads back to the same pipeline.
	back, diags := Load(map[string][]byte{"config.hcl": cfg.HCL()}, catalog)
	if diags.HasErrors() {
		t.Fatalf("the rendered config does not load: %s\n%s", diags, cfg.HCL())
	}
	if a, b := string(back.HCL()), string(cfg.HCL()); a != b {
		t.Errorf("rendered twice differently:\n%s\n%s", a, b)
	}
	for _, want := range []string{`name = prefix("pay.")`, `tags = [exact("team:payments"), unset(prefix("canary"))]`,
		`matched     = [sink.localfile.archive]`, `add_tags`, `drop "noisy"`} {
		if !strings.Contains(string(cfg.HCL()), want) {
			t.Errorf("/config lacks %s:\n%s", want, cfg.HCL())
		}
	}
}

// TestRoutingHashes: drop rules are applied by sources, so changing them
// gives every source a new process; routes and tag policies are applied by
// veneurd, so changing them restarts no sink.
func TestRoutingHashes(t *testing.T) {
	load := func(src string) *Config {
		cfg, diags := Load(map[string][]byte{"a.hcl": []byte(src)}, catalog)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg
	}
	a := load(routed)
	b := load(strings.Replace(strings.Replace(routed, `exact("debug.requests")`, `prefix("debug.")`, 1), "max_tags   = 8", "max_tags   = 9", 1))
	c := load(strings.Replace(routed, `prefix("pay.")`, `prefix("payments.")`, 1))
	if a.Sources[0].Hash == b.Sources[0].Hash {
		t.Error("a source keeps its process when the drop rules change")
	}
	for i := range a.Sinks {
		if a.Sinks[i].Hash != b.Sinks[i].Hash || a.Sinks[i].Hash != c.Sinks[i].Hash {
			t.Errorf("%s gets a new process for a change of routes or tag policy", a.Sinks[i].Address())
		}
	}
	if a.Sources[0].Hash != c.Sources[0].Hash {
		t.Error("a source gets a new process for a change of routes")
	}
	if b.Routing.Router.Policies[1].MaxTags != 9 {
		t.Error("the new policy did not load")
	}
}

func TestTooManySinksToRoute(t *testing.T) {
	var b strings.Builder
	for i := range match.MaxSinks + 1 {
		b.WriteString("sink \"debug\" \"s" + strings.Repeat("x", i) + "\" {}\n")
	}
	b.WriteString("metric_sink_routing \"r\" {\n  match {\n    name = any()\n  }\n  matched = [sink.debug.s]\n}\n")
	_, diags := Load(map[string][]byte{"a.hcl": []byte(b.String())}, catalog)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "at most 64 sinks") {
		t.Errorf("65 routed sinks: %v", diags)
	}
}

// TestSinkReceivesNothing: with routing rules, a sink no rule names gets
// nothing, which is worth a warning, not an error.
func TestSinkReceivesNothing(t *testing.T) {
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(`
sink "debug" "out" {}
sink "debug" "forgotten" {}
metric_sink_routing "all" {
  match {
    name = any()
  }
  matched = [sink.debug.out]
}
`)}, catalog)
	if diags.HasErrors() || len(diags) != 1 {
		t.Fatalf("diagnostics: %v", diags)
	}
	d := diags[0]
	if d.Severity != hcl.DiagWarning || d.Summary != "Sink receives nothing" || d.Subject.Start.Line != 3 ||
		!strings.Contains(d.Detail, "sink.debug.forgotten") {
		t.Errorf("got %s:%d: %s: %s", d.Subject.Filename, d.Subject.Start.Line, d.Summary, d.Detail)
	}
	if len(cfg.Sinks) != 2 {
		t.Error("the sink was not loaded")
	}
	_, diags = Load(map[string][]byte{"a.hcl": []byte(routed)}, catalog)
	if len(diags) != 0 {
		t.Errorf("a pipeline whose rules name every sink: %v", diags)
	}
}
