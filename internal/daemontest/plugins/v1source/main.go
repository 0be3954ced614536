// Command v1source is a test source speaking plugin protocol 1, in which a
// source streams every sample to veneurd as a packed frame and holds no
// state (it has no Cut). It takes `count` and, once running, sends that many
// increments of the counter v1.count, one frame per hundred, then waits.
// With `hang_cut = true` it answers Cut, as a protocol 2 source would, but
// never returns from it: a source stuck at a flush.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

type sourcePlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (sourcePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := &server{stop: make(chan struct{})}
	pb.RegisterPluginServer(s, srv)
	pb.RegisterSourceServer(s, srv)
	return nil
}

func (sourcePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

type server struct {
	pb.UnimplementedPluginServer
	pb.UnimplementedSourceServer
	count   int
	hangCut bool
	stop    chan struct{} // closed by Stop
	stopped sync.Once
}

func (s *server) Schema(context.Context, *pb.Empty) (*pb.SchemaResponse, error) {
	return &pb.SchemaResponse{Attributes: []*pb.Attribute{
		{Name: "listen", Type: []byte(`["list","string"]`), Required: true},
		{Name: "count", Type: []byte(`"number"`), Required: true},
		{Name: "hang_cut", Type: []byte(`"bool"`)},
	}}, nil
}

func (s *server) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	var cfg struct {
		Count   int
		HangCut bool `json:"hang_cut"`
	}
	if err := json.Unmarshal(req.ConfigJson, &cfg); err != nil {
		return &pb.ConfigureResponse{Diagnostics: []*pb.Diagnostic{{Severity: 1, Summary: "Bad config", Detail: err.Error()}}}, nil
	}
	s.count, s.hangCut = cfg.Count, cfg.HangCut
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Run(_ *pb.RunRequest, stream pb.Source_RunServer) error {
	for sent := 0; sent < s.count; {
		n := min(s.count-sent, 100)
		if err := stream.Send(&pb.Batch{Samples: increments(n), Protocol: "udp", Received: uint64(n)}); err != nil {
			return err
		}
		sent += n
	}
	select {
	case <-stream.Context().Done():
	case <-s.stop:
	}
	return nil
}

// increments packs n increments of v1.count as protocol 1 streamed samples:
// a version byte, then for each sample its value, rate, scope, type, name
// and tags lengths, name and tags.
func increments(n int) []byte {
	name := "v1.count"
	b := []byte{1}
	for range n {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(1))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(1))
		b = append(b, byte(sdk.ScopeDefault), byte(sdk.Counter))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = append(b, name...)
	}
	return b
}

func (s *server) Cut(ctx context.Context, req *pb.CutRequest) (*pb.Empty, error) {
	if !s.hangCut {
		return s.UnimplementedSourceServer.Cut(ctx, req)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *server) Stop(context.Context, *pb.Empty) (*pb.Empty, error) {
	s.stopped.Do(func() { close(s.stop) })
	return &pb.Empty{}, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			1: {sdk.KindSource: sourcePlugin{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true}),
	})
}
