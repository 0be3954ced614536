package dogstatsd

import (
	"testing"

	"github.com/veneurd/veneurd/sdk/schema"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestConfigureReportsEveryProblem: each bad value is reported, not only
// the first.
func TestConfigureReportsEveryProblem(t *testing.T) {
	diags := sdktest.Configure(t, New(), map[string]any{
		"max_packet_size":   100,
		"read_buffer_bytes": -1,
		"idle_timeout":      "never",
	})
	want := []string{
		`max_packet_size: Packet size out of range: max_packet_size must be between 512 and 65535 bytes, not 100.`,
		`read_buffer_bytes: Buffer size out of range: read_buffer_bytes must be between 0 (the system default) and 1 GiB, not -1.`,
		`idle_timeout: Invalid duration: "never" is not a positive duration such as "5m".`,
	}
	if len(diags) != len(want) {
		t.Fatalf("got %d diagnostics, want %d: %v", len(diags), len(want), diags)
	}
	for i, d := range diags {
		if got := d.Attribute + ": " + d.Summary + ": " + d.Detail; got != want[i] {
			t.Errorf("diagnostic %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}

// TestSchemaLeavesSocketsToVeneurd: listen and readers are veneurd's, not
// the plugin's.
func TestSchemaLeavesSocketsToVeneurd(t *testing.T) {
	s, err := schema.Of(New().Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"listen", "readers"} {
		if _, ok := s.Lookup(name); ok {
			t.Errorf("the schema declares %q", name)
		}
	}
}
