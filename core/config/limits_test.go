package config

import (
	"strings"
	"testing"
)

// TestLimits: the top-level limits block applies to every source without
// one of its own, a source's own block wins, both render back, and a bad
// limit or a second block is reported at its place.
func TestLimits(t *testing.T) {
	src := `
limits {
  max_series          = 100000
  max_series_per_name = 1000
}
source "dogstatsd" "in" {}
source "dogstatsd" "edge" {
  limits { max_series = 50 }
}
`
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(src)}, catalog)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := Limits{MaxSeries: 100000, MaxSeriesPerName: 1000}
	if cfg.Limits != want || cfg.Sources[0].Limits != want || cfg.Sources[1].Limits != (Limits{MaxSeries: 50}) {
		t.Fatalf("limits %+v, sources %+v %+v", cfg.Limits, cfg.Sources[0].Limits, cfg.Sources[1].Limits)
	}
	again, diags := Load(map[string][]byte{"b.hcl": cfg.HCL()}, catalog)
	if diags.HasErrors() || again.Limits != want || again.Sources[1].Limits != cfg.Sources[1].Limits || again.Sources[0].OwnLimits != nil {
		t.Fatalf("rendered back: %s\n%s", diags.Error(), cfg.HCL())
	}
	unlimited, _ := Load(map[string][]byte{"a.hcl": []byte(`source "dogstatsd" "in" {}`)}, catalog)
	limited, _ := Load(map[string][]byte{"a.hcl": []byte("limits { max_series = 5 }\n" + `source "dogstatsd" "in" {}`)}, catalog)
	if unlimited.Sources[0].Hash == limited.Sources[0].Hash {
		t.Error("a source's hash ignores its limits: a reload would keep its process with the old ones")
	}

	f := func(src, want string) {
		t.Helper()
		_, diags := Load(map[string][]byte{"a.hcl": []byte(src)}, catalog)
		if !strings.Contains(diags.Error(), want) {
			t.Errorf("%s: diagnostics %q lack %q", src, diags.Error(), want)
		}
	}
	f(`limits { max_series = -1 }`, `a.hcl:1,23-25: Invalid limit`)
	f(`limits { max_series_per_name = 1.5 }`, `Invalid limit`)
	f(`limits { max_series = "many" }`, `a.hcl:1,23-29`)
	f(`limits { max_sries = 1 }`, `Unsupported argument`)
	f("limits {}\nlimits {}", `a.hcl:2,1-7: Duplicate limits block`)
	f(`source "dogstatsd" "in" {
  limits {}
  limits {}
}`, `Duplicate limits block`)
}
