package otlp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/sdk/delivery"
)

// exportMethod is OTLP's metrics export RPC.
const exportMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

// grpcTransport sends each body, already an encoded
// ExportMetricsServiceRequest, as the message of an Export call: a codec
// that passes bytes through spares decoding what was just encoded.
type grpcTransport struct {
	conn    *grpc.ClientConn
	md      metadata.MD
	timeout time.Duration
	opts    []grpc.CallOption
}

func dialGRPC(c Config, s delivery.Settings) (*grpcTransport, error) {
	creds := insecure.NewCredentials()
	if !c.Insecure {
		tc, err := c.TLS.Config()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc) // nil: the system's roots
	}
	conn, err := grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("veneurd-sink-otlp/"+Version))
	if err != nil {
		return nil, fmt.Errorf("otlp endpoint %s: %w", c.Endpoint, err)
	}
	t := &grpcTransport{conn: conn, md: metadata.New(c.Headers), timeout: s.Timeout,
		opts: []grpc.CallOption{grpc.ForceCodec(rawCodec{})}}
	if c.Compression == "gzip" {
		t.opts = append(t.opts, grpc.UseCompressor("gzip"))
	}
	return t, nil
}

// Send makes one Export call. Failures are retried as the OTLP
// specification says: the codes that may succeed later, and
// RESOURCE_EXHAUSTED, which a receiver answers when it is full.
func (t *grpcTransport) Send(ctx context.Context, p *delivery.Payload) error {
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, t.md), t.timeout)
	defer cancel()
	var resp []byte
	err := t.conn.Invoke(ctx, exportMethod, p.Body, &resp, t.opts...)
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable,
		codes.DataLoss, codes.ResourceExhausted:
		return delivery.Retry(err, 0)
	}
	return err
}

// Close closes the connection.
func (t *grpcTransport) Close() { t.conn.Close() }

// rawCodec passes a message's bytes through: the request is a []byte
// already encoded, the response a *[]byte left encoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return nil, errors.New("otlp: the raw codec marshals []byte only")
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return errors.New("otlp: the raw codec unmarshals into *[]byte only")
}

func (rawCodec) Name() string { return "proto" }
