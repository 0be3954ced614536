// Package plugins lists the plugins compiled into veneurd. Builtins run out
// of process like any other plugin: veneurd re-executes itself as
// `veneurd plugin-serve <kind> <type>`, which serves the plugin named here.
package plugins

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/plugins/sinks/blackhole"
	"github.com/veneurd/veneurd/plugins/sinks/datadog"
	"github.com/veneurd/veneurd/plugins/sinks/debug"
	"github.com/veneurd/veneurd/plugins/sinks/graphite"
	"github.com/veneurd/veneurd/plugins/sinks/influxdb"
	"github.com/veneurd/veneurd/plugins/sinks/kafka"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
	"github.com/veneurd/veneurd/plugins/sinks/otlp"
	remotewrite "github.com/veneurd/veneurd/plugins/sinks/prometheus_remote_write"
	"github.com/veneurd/veneurd/plugins/sources/dogstatsd"
	"github.com/veneurd/veneurd/plugins/sources/openmetrics"
	otlpsource "github.com/veneurd/veneurd/plugins/sources/otlp"
	"github.com/veneurd/veneurd/plugins/sources/ssf"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/schema"
)

// Builtin is a compiled-in plugin.
type Builtin struct {
	Kind        string // sdk.KindSource or sdk.KindSink
	Type        string
	Description string
	New         func() sdk.Plugin
}

// Builtins is every compiled-in plugin: the one list, no init() registration.
var Builtins = []Builtin{
	{sdk.KindSource, "dogstatsd", "DogStatsD and StatsD over UDP, TCP and UNIX sockets", func() sdk.Plugin { return dogstatsd.New() }},
	{sdk.KindSource, "otlp", "OpenTelemetry metrics over OTLP/gRPC and OTLP/HTTP (protobuf and JSON) on the same sockets", func() sdk.Plugin { return otlpsource.New() }},
	{sdk.KindSource, "openmetrics", "scrapes Prometheus text and OpenMetrics endpoints, counters as their increase", func() sdk.Plugin { return openmetrics.New() }},
	{sdk.KindSource, "ssf", "Veneur's SSF spans over UDP, UNIX sockets and gRPC: their samples and indicator timers", func() sdk.Plugin { return ssf.New() }},
	{sdk.KindSink, "debug", "prints each flush to standard output", func() sdk.Plugin { return debug.New() }},
	{sdk.KindSink, "blackhole", "discards everything, counting it", func() sdk.Plugin { return blackhole.New() }},
	{sdk.KindSink, "localfile", "appends each point to a file as a JSON line", func() sdk.Plugin { return localfile.New() }},
	{sdk.KindSink, "datadog", "sends series, service checks and events to Datadog's API", func() sdk.Plugin { return datadog.New() }},
	{sdk.KindSink, "graphite", "writes points to Carbon in its plaintext protocol, with tags", func() sdk.Plugin { return graphite.New() }},
	{sdk.KindSink, "influxdb", "writes points to InfluxDB 1.x (/write) or 2 and 3 (/api/v2/write) in line protocol", func() sdk.Plugin { return influxdb.New() }},
	{sdk.KindSink, "kafka", "produces points to a Kafka topic as JSON or protobuf, keyed by series", func() sdk.Plugin { return kafka.New() }},
	{sdk.KindSink, "otlp", "sends points as OpenTelemetry metrics over OTLP/HTTP or OTLP/gRPC", func() sdk.Plugin { return otlp.New() }},
	{sdk.KindSink, "prometheus_remote_write", "sends points with Prometheus remote write 1.0", func() sdk.Plugin { return remotewrite.New() }},
}

// Lookup finds a builtin.
func Lookup(kind, typ string) (Builtin, bool) {
	for _, b := range Builtins {
		if b.Kind == kind && b.Type == typ {
			return b, true
		}
	}
	return Builtin{}, false
}

// BuiltinTypes answers the config loader's questions about builtins.
type BuiltinTypes struct{}

// Types lists the builtin types of a kind.
func (BuiltinTypes) Types(kind string) []string {
	var out []string
	for _, b := range Builtins {
		if b.Kind == kind {
			out = append(out, b.Type)
		}
	}
	sort.Strings(out)
	return out
}

// Lookup describes a builtin.
func (BuiltinTypes) Lookup(kind, typ string) (config.PluginInfo, error) {
	b, ok := Lookup(kind, typ)
	if !ok {
		return config.PluginInfo{}, fmt.Errorf("%s %q: %w", kind, typ, config.ErrUnknownPlugin)
	}
	s, err := schema.Of(b.New().Config())
	if err != nil {
		return config.PluginInfo{}, fmt.Errorf("builtin %s %s: %w", kind, typ, err)
	}
	r, ok := b.New().(sdk.SocketReader)
	return config.PluginInfo{Schema: s, Version: "builtin", ReadsSockets: ok && r.ReadsSockets()}, nil
}

// Check has a builtin validate values in process.
func (BuiltinTypes) Check(kind, typ string, values []byte) error {
	b, ok := Lookup(kind, typ)
	if !ok {
		return nil
	}
	p := b.New()
	cfg := p.Config()
	if err := schema.UnmarshalValues(values, cfg); err != nil {
		return err
	}
	return p.Configure(context.Background(), sdk.Env{Address: kind + "." + typ, Logger: hclog.NewNullLogger()}, cfg)
}
