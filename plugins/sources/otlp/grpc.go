package otlp

import (
	"context"
	"errors"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // gzip-compressed requests
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// OTLP/gRPC is the service opentelemetry.proto.collector.metrics.v1.MetricsService
// and its one method, Export. It is registered by hand rather than through
// the generated RegisterMetricsServiceServer so that the handler receives
// the request's bytes, which the source's decoder decodes into messages it
// reuses (see decoder.go).

// grpcService is MetricsService with Export served by s.
func grpcService(s *server) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.metrics.v1.MetricsService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				return s.grpcExport(ctx, dec)
			},
		}},
		Metadata: "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
	}
}

// rawBody receives a request's bytes from rawCodec.
type rawBody struct{ b *[]byte }

// rawCodec is the proto codec, except that it copies a request into a
// *rawBody instead of decoding it.
type rawCodec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawBody); ok {
		b := (*r.b)[:0]
		for _, buf := range data {
			b = append(b, buf.ReadOnlyData()...)
		}
		*r.b = b
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

func (rawCodec) Name() string { return proto.Name }

// grpcExport serves one Export call: it reads the message, then waits for
// a worker to decode it and write its samples.
func (s *server) grpcExport(ctx context.Context, dec func(any) error) (any, error) {
	if !s.enter() {
		return nil, status.Error(codes.Unavailable, "the source is stopping")
	}
	defer s.leave()
	buf := getBuffer()
	defer putBuffer(buf)
	if err := dec(&rawBody{buf}); err != nil {
		switch code := status.Code(err); code {
		case codes.Canceled, codes.DeadlineExceeded: // the client gave up
		case codes.ResourceExhausted: // over max_request_bytes, compressed or not
			s.countAlone("grpc", ReasonTooLarge)
		default:
			s.countAlone("grpc", ReasonBadRequest)
		}
		return nil, err
	}
	wk, err := s.pool.acquire(ctx)
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	defer s.pool.release(wk)
	resp, err := s.process(wk, "grpc", *buf, false)
	if err != nil {
		code := codes.InvalidArgument
		var le *limitError
		if errors.As(err, &le) {
			code = codes.ResourceExhausted
		}
		return nil, status.Error(code, err.Error())
	}
	return resp, nil
}

// response returns the answer to a request of which rejected data points
// were rejected, the first for msg.
func response(rejected int64, msg string) *colmetricspb.ExportMetricsServiceResponse {
	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if rejected > 0 || msg != "" {
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{RejectedDataPoints: rejected, ErrorMessage: msg}
	}
	return resp
}
