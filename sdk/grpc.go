package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	pb "github.com/veneurd/veneurd/sdk/proto"
	"github.com/veneurd/veneurd/sdk/schema"
)

// SinkPlugin and SourcePlugin bind an implementation to go-plugin. On the
// host side Impl is nil and the client is the raw *grpc.ClientConn, which
// veneurd wraps in its own adapters.
type SinkPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Sink
}

// GRPCServer registers the sink's services.
func (p *SinkPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	ps := &pluginServer{impl: p.Impl, stats: NewStats()}
	pb.RegisterPluginServer(s, ps)
	pb.RegisterSinkServer(s, &sinkServer{impl: p.Impl, ps: ps})
	return nil
}

// GRPCClient returns the connection itself.
func (p *SinkPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// SourcePlugin is SinkPlugin's counterpart for sources.
type SourcePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Source
}

// GRPCServer registers the source's services.
func (p *SourcePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	ps := &pluginServer{impl: p.Impl, stats: NewStats()}
	pb.RegisterPluginServer(s, ps)
	pb.RegisterSourceServer(s, &sourceServer{impl: p.Impl, stats: ps.stats})
	return nil
}

// GRPCClient returns the connection itself.
func (p *SourcePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

type pluginServer struct {
	pb.UnimplementedPluginServer
	impl  Plugin
	stats *Stats // handed to the plugin in its Env
}

func (s *pluginServer) Schema(context.Context, *pb.Empty) (*pb.SchemaResponse, error) {
	sch, err := schema.Of(s.impl.Config())
	if err != nil {
		return nil, err
	}
	resp, err := SchemaToProto(sch)
	if v, ok := s.impl.(Versioned); ok && resp != nil {
		resp.Version = v.Version()
	}
	if r, ok := s.impl.(SocketReader); ok && resp != nil {
		resp.ReadsSockets = r.ReadsSockets()
	}
	return resp, err
}

func (s *pluginServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	cfg := s.impl.Config()
	if err := schema.UnmarshalValues(req.ConfigJson, cfg); err != nil {
		return &pb.ConfigureResponse{Diagnostics: []*pb.Diagnostic{{
			Severity: 1, Summary: "Invalid configuration", Detail: err.Error(),
		}}}, nil
	}
	env := Env{Address: req.Address, Hostname: req.Hostname, Logger: hclog.Default(), Stats: s.stats}
	return &pb.ConfigureResponse{Diagnostics: DiagnosticsToProto(s.impl.Configure(ctx, env, cfg))}, nil
}

// SchemaToProto encodes a schema for the wire.
func SchemaToProto(sch schema.Schema) (*pb.SchemaResponse, error) {
	attrs, err := attributesToProto(sch)
	return &pb.SchemaResponse{Attributes: attrs}, err
}

func attributesToProto(sch schema.Schema) ([]*pb.Attribute, error) {
	var out []*pb.Attribute
	for _, a := range sch {
		ty, err := schema.TypeJSON(a.Type)
		if err != nil {
			return nil, err
		}
		nested, err := attributesToProto(a.Nested)
		if err != nil {
			return nil, err
		}
		out = append(out, &pb.Attribute{
			Name: a.Name, Type: ty, Required: a.Required, Sensitive: a.Sensitive, Description: a.Description,
			Block: a.Block, Nested: nested,
		})
	}
	return out, nil
}

// SchemaFromProto decodes a schema from the wire.
func SchemaFromProto(resp *pb.SchemaResponse) (schema.Schema, error) {
	return attributesFromProto(resp.Attributes)
}

func attributesFromProto(attrs []*pb.Attribute) (schema.Schema, error) {
	var sch schema.Schema
	for _, a := range attrs {
		ty, err := schema.ParseType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name, err)
		}
		nested, err := attributesFromProto(a.Nested)
		if err != nil {
			return nil, err
		}
		sch = append(sch, schema.Attribute{
			Name: a.Name, Type: ty, Required: a.Required, Sensitive: a.Sensitive, Description: a.Description,
			Block: a.Block, Nested: nested,
		})
	}
	return sch, nil
}

// DiagnosticsFromProto is the inverse of DiagnosticsToProto: the error
// diagnostics as *AttrError, joined, or nil.
func DiagnosticsFromProto(diags []*pb.Diagnostic) error {
	var errs []error
	for _, d := range diags {
		if d.Severity == 1 {
			errs = append(errs, &AttrError{Attribute: d.Attribute, Summary: d.Summary, Detail: d.Detail})
		}
	}
	return errors.Join(errs...)
}

// DiagnosticsToProto encodes the error Configure returned.
func DiagnosticsToProto(err error) []*pb.Diagnostic {
	var out []*pb.Diagnostic
	for _, ae := range AttrErrors(err) {
		out = append(out, &pb.Diagnostic{Severity: 1, Summary: ae.Summary, Detail: ae.Detail, Attribute: ae.Attribute})
	}
	return out
}

type sinkServer struct {
	pb.UnimplementedSinkServer
	impl Sink
	ps   *pluginServer
}

func (s *sinkServer) Start(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, s.impl.Start(ctx)
}

func (s *sinkServer) Stop(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, s.impl.Stop(ctx)
}

// Flush hands the sink each chunk of a flush as it arrives, so that neither
// side ever holds a large flush as points: one chunk (a few MB packed) at a
// time, its points slice reused from chunk to chunk.
func (s *sinkServer) Flush(stream pb.Sink_FlushServer) error {
	var f Flush
	var points []Point
	var total uint64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if chunk.Timestamp != 0 {
			f.Timestamp = chunk.Timestamp
		}
		if chunk.IntervalMs != 0 {
			f.Interval = time.Duration(chunk.IntervalMs) * time.Millisecond
		}
		if points, err = UnpackPoints(chunk.Points, points[:0]); err != nil {
			return err
		}
		f.Points, f.Events = points, f.Events[:0]
		for _, e := range chunk.Events {
			f.Events = append(f.Events, EventFromProto(e))
		}
		if len(f.Points) == 0 && len(f.Events) == 0 {
			continue
		}
		if err := s.impl.Flush(stream.Context(), &f); err != nil {
			return err
		}
		total += uint64(len(f.Points))
		clear(points) // drop the chunk's strings before the next arrives
	}
	return stream.SendAndClose(&pb.FlushResult{Points: total, Counts: s.ps.stats.Take()})
}

// inheritedFile wraps a socket inherited from veneurd in an *os.File that
// this process's Go runtime does not poll. os.NewFile polls a descriptor
// that is non-blocking, and the socket's open file description is shared
// with veneurd and, during a reload, with another source process: polled, it
// would wake this runtime for every datagram that arrives. It is made
// blocking for the moment of the call only, and non-blocking again after.
// A source that wants the netpoller (net.FileListener, net.FilePacketConn)
// gets it on the duplicate those functions make.
func inheritedFile(fd int, name string) *os.File {
	unix.SetNonblock(fd, false)
	f := os.NewFile(uintptr(fd), name)
	unix.SetNonblock(fd, true)
	return f
}
