package core

import (
	"context"
	"os"
	"time"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Plugins starts the plugin processes of a pipeline's blocks. The daemon
// starts them with pluginhost; core's own tests start in-process fakes.
type Plugins interface {
	// StartSink starts a sink, configured and ready to flush.
	StartSink(b *config.PluginBlock, req *pb.ConfigureRequest) (SinkProcess, error)
	// StartSource starts a source reading files (its sockets, named by
	// addrs); it aggregates into digests and sketches of settings params and
	// sends what it reads to h.
	StartSource(b *config.PluginBlock, files []*os.File, addrs []string, req *pb.ConfigureRequest,
		params *pb.StateParams, h pluginhost.SourceHandlers) (SourceProcess, error)
}

// SinkProcess is a running sink, as the server drives it
// (*pluginhost.SinkProcess).
type SinkProcess interface {
	Address() string
	Running() bool
	// Flush delivers one flush within ctx. It returns what the sink
	// counted since its last flush (see sdk.Stats).
	Flush(ctx context.Context, b *pluginhost.FlushBatch) ([]*pb.Count, error)
	// Stop stops the sink within ctx and ends its process.
	Stop(ctx context.Context)
}

// SourceProcess is a running source, as the server drives it
// (*pluginhost.SourceProcess).
type SourceProcess interface {
	Address() string
	Running() bool
	// Cut has the source hand over the state of the interval that ends to
	// its State handler, and returns once it is merged or ctx ends; state
	// that comes later is merged when it comes. next are the settings of
	// the interval that starts.
	Cut(ctx context.Context, next *pb.StateParams) error
	// Stop stops reading and hands over what the source still holds, within
	// timeout, then ends its process.
	Stop(timeout time.Duration)
}

// processes starts real plugin processes.
type processes struct{ l *pluginhost.Launcher }

func (p processes) StartSink(b *config.PluginBlock, req *pb.ConfigureRequest) (SinkProcess, error) {
	k, err := pluginhost.StartSink(p.l, specOf(b), req)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (p processes) StartSource(b *config.PluginBlock, files []*os.File, addrs []string, req *pb.ConfigureRequest,
	params *pb.StateParams, h pluginhost.SourceHandlers) (SourceProcess, error) {
	spec := specOf(b)
	spec.Files = files
	limits := &pb.Limits{MaxSeries: uint64(b.Limits.MaxSeries), MaxSeriesPerName: uint64(b.Limits.MaxSeriesPerName)}
	src, err := pluginhost.StartSource(p.l, spec, addrs, req, params, sdk.DropRulesToProto(b.Drops), limits, h)
	if err != nil {
		return nil, err
	}
	return src, nil
}

// specOf says how to run a block's plugin.
func specOf(b *config.PluginBlock) pluginhost.Spec {
	return pluginhost.Spec{Type: b.Type, Address: b.Address(), Path: b.Info.Path, SHA256: b.Info.SHA256,
		StartTimeout: b.StartTimeout}
}
