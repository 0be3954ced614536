package openmetrics

import (
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk/schema"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestConfigureReportsEveryProblem: each bad value is reported, not only
// the first, and the token is never quoted.
func TestConfigureReportsEveryProblem(t *testing.T) {
	const token = "tok\nen-secret"
	diags := sdktest.Configure(t, New(), map[string]any{
		"targets":              []string{"ftp://x/metrics", "http://user:pw@h:9100/metrics", "http://a:1/m", "http://a:1/m"},
		"scrape_interval":      "10ms",
		"timeout":              "1h",
		"max_body_bytes":       10,
		"bearer_token":         token,
		"ignore":               []string{"("},
		"ignore_labels":        []string{"[z-a]"},
		"rename":               map[string]string{"a(": "b"},
		"add_tags":             map[string]string{"a:b": "c", "le": "x"},
		"instance_tag":         "in,st",
		"histogram_bucket_tag": "le",
	})
	want := []string{
		`targets: Invalid target: Target 1, "ftp://x/metrics", is not an http or https URL such as "http://127.0.0.1:9100/metrics".`,
		`targets: Credentials in a target: "http://user:xxxxx@h:9100/metrics" holds credentials: give a token in bearer_token (read with env() or file()) instead.`,
		`targets: Duplicate target: "http://a:1/m" is listed twice.`,
		`scrape_interval: Invalid interval: "10ms" is not a duration of at least 100ms, such as "10s".`,
		`timeout: Timeout longer than the interval: timeout (1h0m0s) must not exceed scrape_interval (10s): a target's scrapes would overlap.`,
		`max_body_bytes: Body size out of range: max_body_bytes must be between 1024 and 1073741824 bytes, not 10.`,
		`bearer_token: Invalid token: bearer_token holds a line break, which no header can carry (a file read with file() loses one trailing newline only).`,
		"ignore: Invalid regular expression: \"(\": error parsing regexp: missing closing ): `(`.",
		"ignore_labels: Invalid regular expression: \"[z-a]\": error parsing regexp: invalid character class range: `z-a`.",
		"rename: Invalid regular expression: \"a(\": error parsing regexp: missing closing ): `a(`.",
		`add_tags: Invalid tag: "a:b" = "c": a tag key is not empty and holds no ':' or ',', and a value holds no ','.`,
		`instance_tag: Invalid tag key: "in,st": a tag key holds no ':' or ','.`,
		`add_tags: Tag key taken: "le" is histogram_bucket_tag, the key of a bucket's upper bound.`,
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Attribute+": "+d.Summary+": "+d.Detail)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(strings.Join(got, ""), "secret") {
		t.Error("a diagnostic quotes the token")
	}
}

func TestConfigureDefaults(t *testing.T) {
	c := defaultConfig()
	c.Targets = []string{"http://127.0.0.1:9100/metrics"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	s := c.settings
	if s.interval != DefaultScrapeInterval || s.timeout != DefaultScrapeInterval || s.maxBodyBytes != DefaultMaxBodyBytes ||
		s.rules.bucketTag != "le" || s.tls != nil {
		t.Errorf("defaults: %+v", s)
	}
	if diags := sdktest.Configure(t, New(), map[string]any{}); len(diags) != 1 || !strings.Contains(diags[0].Detail, `"targets" is required`) {
		t.Errorf("a block without targets: %v", diags)
	}
	if diags := sdktest.Configure(t, New(), map[string]any{"targets": []string{}}); len(diags) != 1 || diags[0].Summary != "No targets" {
		t.Errorf("an empty targets: %v", diags)
	}
}

// TestSchema: the token is sensitive, so veneurd never shows it; the
// source declares no listen (it opens no socket).
func TestSchema(t *testing.T) {
	s, err := schema.Of(New().Config())
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Lookup("bearer_token"); !ok || !a.Sensitive {
		t.Errorf("bearer_token: %+v, want sensitive", a)
	}
	for _, name := range []string{"listen", "readers"} {
		if _, ok := s.Lookup(name); ok {
			t.Errorf("the schema declares %q", name)
		}
	}
	tls, ok := s.Lookup("tls")
	if !ok || !tls.Block {
		t.Fatalf("tls: %+v, want a block", tls)
	}
	for _, name := range []string{"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"} {
		if _, ok := tls.Nested.Lookup(name); !ok {
			t.Errorf("tls lacks %s", name)
		}
	}
}
