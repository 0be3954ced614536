package sdk

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the version of the plugin protocol this SDK speaks.
// veneurd refuses a plugin built against another version, naming both.
const ProtocolVersion = 2

// Handshake is the go-plugin handshake shared by veneurd and its plugins. The
// cookie only keeps a plugin binary from being run by hand by mistake; it is
// not a security measure.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "VENEURD_PLUGIN",
	MagicCookieValue: "6f1d0c3e-metrics-aggregation-daemon",
}

// Plugin set keys, one per kind.
const (
	KindSource = "source"
	KindSink   = "sink"
)

// LogLevelEnv names the environment variable through which veneurd passes
// its log level to plugin processes.
const LogLevelEnv = "VENEURD_PLUGIN_LOG_LEVEL"

// Serve serves p over gRPC and does not return. A plugin's main calls it.
func Serve(p Plugin) {
	// veneurd reads the plugin's stderr as JSON log lines and logs them
	// under the block's address.
	logger := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.LevelFromString(os.Getenv(LogLevelEnv)),
		Output:     os.Stderr,
		JSONFormat: true,
	})
	hclog.SetDefault(logger)
	profile(logger)
	set, err := PluginSet(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}

// PluginSet returns the go-plugin set that serves p.
func PluginSet(p Plugin) (plugin.PluginSet, error) {
	switch impl := p.(type) {
	case Source:
		return plugin.PluginSet{KindSource: &SourcePlugin{Impl: impl}}, nil
	case Sink:
		return plugin.PluginSet{KindSink: &SinkPlugin{Impl: impl}}, nil
	}
	return nil, fmt.Errorf("%T implements neither sdk.Source nor sdk.Sink", p)
}

// HostPlugins is the plugin set a host dispenses from.
func HostPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: {KindSource: &SourcePlugin{}, KindSink: &SinkPlugin{}}}
}

// Environment variables that make a plugin process profile itself: with
// VENEURD_PLUGIN_CPUPROFILE=/tmp/prof, a plugin writes its CPU profile for
// the first VENEURD_PLUGIN_CPUPROFILE_SECONDS (default 30) seconds to
// /tmp/prof.<pid>. For measuring, not for production.
const (
	CPUProfileEnv        = "VENEURD_PLUGIN_CPUPROFILE"
	CPUProfileSecondsEnv = "VENEURD_PLUGIN_CPUPROFILE_SECONDS"
)

func profile(log hclog.Logger) {
	prefix := os.Getenv(CPUProfileEnv)
	if prefix == "" {
		return
	}
	secs, err := strconv.Atoi(os.Getenv(CPUProfileSecondsEnv))
	if err != nil || secs <= 0 {
		secs = 30
	}
	path := fmt.Sprintf("%s.%d", prefix, os.Getpid())
	f, err := os.Create(path)
	if err != nil {
		log.Error("cannot write a CPU profile", "error", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Error("cannot start the CPU profile", "error", err)
		f.Close()
		return
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() {
		pprof.StopCPUProfile()
		f.Close()
		log.Info("CPU profile written", "path", path)
	})
}
