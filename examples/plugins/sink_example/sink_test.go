package main

import (
	"bufio"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestMain lets TestHandshake run this test binary as the plugin: launched
// with veneurd's handshake cookie, it serves the plugin instead of testing.
func TestMain(m *testing.M) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestConformance runs the sink through the SDK's conformance kit.
func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.jsonl")
	sdktest.Sink(t, func() sdk.Sink { return New() }, sdktest.SinkCase{
		Config: map[string]any{"path": path},
		AfterConfigure: func(t *testing.T) {
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("Configure created %s: files must be opened in Start", path)
			}
		},
		Observe: func(t *testing.T) []string { return readLines(t, path) },
		Format: func(p sdk.Point) string {
			if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				return "" // skipped
			}
			b, err := formatPoint(p)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		},
	})
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFormat pins the format down to the byte.
func TestFormat(t *testing.T) {
	for _, c := range []struct {
		p    sdk.Point
		want string
	}{
		{sdk.Point{Name: "x.count", Tags: []string{"a:b", "env:dev"}, Type: sdk.PointCounter, Value: 3, Timestamp: 1795300000, Hostname: "h1"},
			`{"name":"x.count","tags":["a:b","env:dev"],"type":"counter","value":3,"timestamp":1795300000,"hostname":"h1"}`},
		{sdk.Point{Name: "x.max", Type: sdk.PointGauge, Value: -0.5, Timestamp: 1795300000},
			`{"name":"x.max","tags":[],"type":"gauge","value":-0.5,"timestamp":1795300000,"hostname":""}`},
		{sdk.Point{Name: "db.up", Tags: []string{"env:dev"}, Type: sdk.PointStatus, Value: 2, Timestamp: 1795300000, Hostname: "h1", Message: "connection refused"},
			`{"kind":"service_check","name":"db.up","tags":["env:dev"],"type":"status","value":2,"timestamp":1795300000,"hostname":"h1","message":"connection refused"}`},
	} {
		got, err := formatPoint(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

// TestRejectsPath checks that bad paths are reported on the attribute, which
// is how veneurd validate points at the line of the block.
func TestRejectsPath(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{"", filepath.Join(dir, "missing", "points.jsonl")} {
		diags := sdktest.Configure(t, New(), map[string]any{"path": path})
		if len(diags) != 1 || diags[0].Attribute != "path" {
			t.Errorf("path %q: got %v, want one diagnostic about path", path, diags)
		}
	}
}

// TestHandshake launches the plugin as a process the way veneurd does, with
// its handshake and protocol version, and asks for its schema.
func TestHandshake(t *testing.T) {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.HostPlugins(),
		Cmd:              exec.Command(os.Args[0]),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.NewNullLogger(),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	if v := client.NegotiatedVersion(); v != sdk.ProtocolVersion {
		t.Fatalf("negotiated protocol version %d, want %d", v, sdk.ProtocolVersion)
	}
	raw, err := rpc.Dispense(sdk.KindSink)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pb.NewPluginClient(raw.(*grpc.ClientConn)).Schema(context.Background(), &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Attributes) != 1 || resp.Attributes[0].Name != "path" || !resp.Attributes[0].Required {
		var names []string
		for _, a := range resp.Attributes {
			names = append(names, a.Name)
		}
		t.Fatalf("schema attributes %s, want the required attribute path", strings.Join(names, ", "))
	}
}
