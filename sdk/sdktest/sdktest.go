// Package sdktest is the conformance kit for veneurd plugins. A plugin's
// tests call Sink or Source with a constructor and a small case description,
// and the kit drives the plugin through the contract the way veneurd does:
// the Schema and Configure RPCs and, for sinks, Start, Flush and Stop, go over
// gRPC with go-plugin's in-memory transport, exactly as the host encodes them;
// no plugin binary or subprocess is involved.
//
// Every check reports through the *testing.T it is given, naming the rule that
// was broken, so a plugin that passes the kit meets the contract described in
// package sdk:
//
//   - the Schema RPC describes schema.Of(Config()), and every attribute type
//     survives the trip across the wire;
//   - Config returns a new pointer on every call;
//   - Configure accepts the given configuration and has no side effect (the
//     case's AfterConfigure hook checks the plugin-specific part of that);
//   - a sink takes flushes sent in several chunks, empty flushes and
//     concurrent flushes, and neither mutates nor retains the points it is
//     given;
//   - a sink survives what its format cannot hold: one point whose value is
//     NaN or infinite, or whose strings hold control characters or invalid
//     UTF-8, costs at most itself, never the rest of the flush;
//   - a source reads from sockets it is handed, emits what was sent, writes
//     with Writers used by one goroutine at a time, flushes what it wrote
//     before Run returns, and returns promptly when its context ends.
package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
	"github.com/veneurd/veneurd/sdk/schema"
)

// The block address and hostname the kit sends with Configure, as veneurd
// sends a block's address and its own hostname.
const (
	SinkAddress   = "sink.sdktest.conformance"
	SourceAddress = "source.sdktest.conformance"
	Hostname      = "sdktest.invalid"
)

// rpcTimeout bounds every call the kit makes to a plugin.
const rpcTimeout = 30 * time.Second

// conn serves p over in-memory gRPC for the duration of the test and returns
// the client connection veneurd would get from dispensing kind.
func conn(t *testing.T, p sdk.Plugin) (*grpc.ClientConn, string) {
	t.Helper()
	set, err := sdk.PluginSet(p)
	if err != nil {
		t.Fatalf("sdk.PluginSet: %v", err)
	}
	kind := sdk.KindSink
	if _, ok := set[sdk.KindSource]; ok {
		kind = sdk.KindSource
	}
	client, server := plugin.TestPluginGRPCConn(t, false, set)
	t.Cleanup(func() {
		// The server first: closing the client asks the server to stop
		// itself, concurrently with a Stop of ours.
		server.Stop()
		client.Close()
	})
	raw, err := client.Dispense(kind)
	if err != nil {
		t.Fatalf("dispensing the %s plugin: %v", kind, err)
	}
	c, ok := raw.(*grpc.ClientConn)
	if !ok {
		t.Fatalf("dispensing the %s plugin gave a %T, not a *grpc.ClientConn", kind, raw)
	}
	return c, kind
}

// Configure sends config to p over gRPC, as veneurd does when it starts a
// block, and returns the diagnostics p answered with: none when p accepted
// the configuration. config maps attribute names to values as they would
// appear in the block (strings, numbers, bools, and slices and maps of
// those; a nested block as a map of its attributes); it is sent as the JSON
// object veneurd sends. A test of a rejected
// value checks that a diagnostic names the attribute.
func Configure(t *testing.T, p sdk.Plugin, config map[string]any) []*pb.Diagnostic {
	t.Helper()
	c, kind := conn(t, p)
	address := SinkAddress
	if kind == sdk.KindSource {
		address = SourceAddress
	}
	return configure(t, pb.NewPluginClient(c), address, config)
}

func configure(t *testing.T, c pb.PluginClient, address string, config map[string]any) []*pb.Diagnostic {
	t.Helper()
	js, err := configJSON(config)
	if err != nil {
		t.Fatalf("encoding the configuration: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	resp, err := c.Configure(ctx, &pb.ConfigureRequest{ConfigJson: js, Address: address, Hostname: Hostname})
	if err != nil {
		t.Fatalf("Configure RPC failed: %v", err)
	}
	return resp.Diagnostics
}

// configJSON encodes a block's values as the JSON object the host sends.
func configJSON(config map[string]any) ([]byte, error) {
	if config == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(config)
}

// mustConfigure configures the plugin behind c and fails the test on any
// error diagnostic.
func mustConfigure(t *testing.T, c pb.PluginClient, address string, config map[string]any) {
	t.Helper()
	var failed bool
	for _, d := range configure(t, c, address, config) {
		if d.Severity != 1 {
			t.Logf("Configure warned: %s", formatDiagnostic(d))
			continue
		}
		failed = true
		t.Errorf("Configure rejected the configuration: %s", formatDiagnostic(d))
	}
	if failed {
		t.FailNow()
	}
}

func formatDiagnostic(d *pb.Diagnostic) string {
	s := d.Summary + ": " + d.Detail
	if d.Attribute != "" {
		s = d.Attribute + ": " + s
	}
	return s
}

// checkSchema compares the Schema RPC's answer with the schema of a fresh
// Config and checks that Config returns a new pointer on each call.
func checkSchema(t *testing.T, p sdk.Plugin, c pb.PluginClient) schema.Schema {
	t.Helper()
	cfg1, cfg2 := p.Config(), p.Config()
	want, err := schema.Of(cfg1)
	if err != nil {
		t.Fatalf("Config() does not describe a schema: %v", err)
	}
	if v1, v2 := reflect.ValueOf(cfg1), reflect.ValueOf(cfg2); v1.Elem().Type().Size() > 0 && v1.Pointer() == v2.Pointer() {
		t.Errorf("Config() returned the same pointer twice: it must return a new struct holding the defaults on every call")
	}
	checkNames(t, "", want)

	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	resp, err := c.Schema(ctx, &pb.Empty{})
	if err != nil {
		t.Fatalf("Schema RPC failed: %v", err)
	}
	got, err := sdk.SchemaFromProto(resp)
	if err != nil {
		t.Fatalf("decoding the Schema RPC's answer: %v", err)
	}
	compareSchemas(t, "", want, got)
	if v, ok := p.(sdk.Versioned); ok && resp.Version != v.Version() {
		t.Errorf("the Schema RPC reports version %q, Version() %q", resp.Version, v.Version())
	}
	return want
}

// checkNames reports empty and repeated attribute names.
func checkNames(t *testing.T, prefix string, sch schema.Schema) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range sch {
		if a.Name == "" {
			t.Errorf("the configuration has an attribute with an empty name%s", inBlock(prefix))
		}
		if seen[a.Name] {
			t.Errorf("the configuration declares attribute %q twice", prefix+a.Name)
		}
		seen[a.Name] = true
		checkNames(t, prefix+a.Name+".", a.Nested)
	}
}

// compareSchemas reports how got, a schema that crossed the wire, differs
// from want. Nested blocks' attributes are named "block.attr".
func compareSchemas(t *testing.T, prefix string, want, got schema.Schema) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("the Schema RPC describes %d attributes%s, Config() %d", len(got), inBlock(prefix), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		name := prefix + w.Name
		if g.Name != w.Name || g.Required != w.Required || g.Sensitive != w.Sensitive ||
			g.Description != w.Description || g.Block != w.Block {
			t.Errorf("attribute %q over the wire is {Name:%q Required:%t Sensitive:%t Block:%t Description:%q}, want {Name:%q Required:%t Sensitive:%t Block:%t Description:%q}",
				name, g.Name, g.Required, g.Sensitive, g.Block, g.Description, w.Name, w.Required, w.Sensitive, w.Block, w.Description)
		}
		if !g.Type.Equals(w.Type) {
			t.Errorf("attribute %q: type %s became %s over the wire", name, w.Type.FriendlyName(), g.Type.FriendlyName())
		}
		compareSchemas(t, name+".", w.Nested, g.Nested)
	}
}

// inBlock names the block prefix designates, for messages.
func inBlock(prefix string) string {
	if prefix == "" {
		return ""
	}
	return fmt.Sprintf(" in block %q", strings.TrimSuffix(prefix, "."))
}
