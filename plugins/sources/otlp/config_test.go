package otlp

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/schema"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestConfigureReportsEveryProblem: each bad value is reported, not only
// the first.
func TestConfigureReportsEveryProblem(t *testing.T) {
	diags := sdktest.Configure(t, New(), map[string]any{
		"max_request_bytes":           10,
		"max_request_data_points":     0,
		"stream_expiry":               "never",
		"include_resource_attributes": []string{"service.name", "", "service.name"},
	})
	want := []string{
		`max_request_bytes: Request size out of range: max_request_bytes must be between 1024 and 1073741824 bytes, not 10.`,
		`max_request_data_points: Data points out of range: max_request_data_points must be between 1 and 10000000, not 0.`,
		`stream_expiry: Invalid duration: "never" is not a positive duration such as "5m".`,
		`include_resource_attributes: Empty attribute name: include_resource_attributes lists resource attribute keys, such as "service.name"; an empty one matches nothing.`,
		`include_resource_attributes: Repeated attribute: "service.name" is listed twice.`,
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

// TestSchemaLeavesSocketsToVeneurd: listen is veneurd's, not the plugin's.
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

// TestRunRefusesDatagrams: OTLP runs over streams; a datagram socket in
// listen is an error that says so.
func TestRunRefusesDatagrams(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = New().Run(context.Background(), []sdk.Listener{{Address: "udp://" + c.LocalAddr().String(), File: f}}, &sdktest.Collector{})
	if err == nil || !strings.Contains(err.Error(), "tcp://") {
		t.Fatalf("Run: %v", err)
	}
}
