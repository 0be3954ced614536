// Command v1source is a test source speaking plugin protocol 1, in which a
// source streams every sample to veneurd as a packed frame and holds no
// state (it has no Cut). It takes `count` and, once running, sends that many
// increments of the counter v1.count, one frame per hundred, then waits.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/frame"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

type sourcePlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (sourcePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := &server{}
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
	count int
}

func (s *server) Schema(context.Context, *pb.Empty) (*pb.SchemaResponse, error) {
	return &pb.SchemaResponse{Attributes: []*pb.Attribute{
		{Name: "listen", Type: []byte(`["list","string"]`), Required: true},
		{Name: "count", Type: []byte(`"number"`), Required: true},
	}}, nil
}

func (s *server) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	var cfg struct{ Count int }
	if err := json.Unmarshal(req.ConfigJson, &cfg); err != nil {
		return &pb.ConfigureResponse{Diagnostics: []*pb.Diagnostic{{Severity: 1, Summary: "Bad config", Detail: err.Error()}}}, nil
	}
	s.count = cfg.Count
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Run(_ *pb.RunRequest, stream pb.Source_RunServer) error {
	for sent := 0; sent < s.count; {
		var w frame.Writer
		for ; sent < s.count && w.Len() < 100; sent++ {
			w.Append(uint8(sdk.Counter), uint8(sdk.ScopeDefault), []byte("v1.count"), nil, 1, 1)
		}
		if err := stream.Send(&pb.Batch{Samples: w.Bytes(), Protocol: "udp", Received: uint64(w.Len())}); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

func (s *server) Stop(context.Context, *pb.Empty) (*pb.Empty, error) { return &pb.Empty{}, nil }

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
