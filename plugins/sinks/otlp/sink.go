package otlp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Version is the sink's version, shown by `veneurd plugins`, sent in the
// User-Agent and as the instrumentation scope's version.
const Version = "1.0.0"

// Config is the otlp sink's block.
type Config struct {
	Endpoint    string `hcl:"endpoint" description:"OTLP/HTTP: the metrics URL, e.g. \"http://collector:4318/v1/metrics\"; OTLP/gRPC: host:port, e.g. \"collector:4317\""`
	Protocol    string `hcl:"protocol,optional" description:"\"http/protobuf\" (default) or \"grpc\""`
	Compression string `hcl:"compression,optional" description:"\"gzip\" (default) or \"none\""`
	Insecure    bool   `hcl:"insecure,optional" description:"gRPC without TLS (plain text), for a collector on the same host or network"`
	MaxPerBody  int    `hcl:"max_points_per_request,optional" description:"most points in one request (default 10000)"`
	delivery.HTTP
}

// Sink sends points to an OpenTelemetry collector or backend, over
// OTLP/HTTP or OTLP/gRPC.
type Sink struct {
	env      sdk.Env
	cfg      Config
	settings delivery.Settings
	dest     *delivery.Dest

	delivery.Running // guards the encoder: one flush at a time
	enc              *Encoder
}

// New returns an otlp sink.
func New() *Sink { return &Sink{} }

// Version reports the sink's version.
func (s *Sink) Version() string { return Version }

// Config returns the defaults.
func (s *Sink) Config() any {
	return &Config{Protocol: "http/protobuf", Compression: "gzip", MaxPerBody: 10000}
}

// Configure checks cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	settings, err := c.HTTP.Check()
	errs := []error{err}
	switch c.Protocol {
	case "http/protobuf":
		errs = append(errs, delivery.CheckURL("endpoint", c.Endpoint, "http://collector:4318/v1/metrics"))
		if c.Insecure {
			errs = append(errs, &sdk.AttrError{Attribute: "insecure", Summary: "gRPC only",
				Detail: "insecure applies to protocol \"grpc\"; over HTTP the endpoint's scheme says http or https."})
		}
	case "grpc":
		if c.Endpoint == "" || strings.Contains(c.Endpoint, "/") {
			errs = append(errs, &sdk.AttrError{Attribute: "endpoint", Summary: "Invalid endpoint",
				Detail: fmt.Sprintf("Over gRPC the endpoint is host:port, such as \"collector:4317\", not %q.", c.Endpoint)})
		}
	default:
		errs = append(errs, &sdk.AttrError{Attribute: "protocol", Summary: "Unknown protocol",
			Detail: fmt.Sprintf("protocol is \"http/protobuf\" or \"grpc\", not %q.", c.Protocol)})
	}
	comp := delivery.None
	switch c.Compression {
	case "gzip":
		comp = delivery.Gzip
	case "none":
	default:
		errs = append(errs, &sdk.AttrError{Attribute: "compression", Summary: "Unknown compression",
			Detail: fmt.Sprintf("compression is \"gzip\" or \"none\", not %q.", c.Compression)})
	}
	if c.MaxPerBody <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_points_per_request", Summary: "Invalid request size",
			Detail: fmt.Sprintf("max_points_per_request must be positive, not %d.", c.MaxPerBody)})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.dest = &delivery.Dest{URL: c.Endpoint, ContentType: "application/x-protobuf", Compression: comp}
	if c.Protocol == "grpc" {
		s.dest.Compression = delivery.None // gRPC compresses its messages itself
	}
	s.env, s.cfg, s.settings = env, c, settings
	s.enc = NewEncoder(Version)
	return nil
}

// Start starts delivering.
func (s *Sink) Start(context.Context) error {
	var (
		t       delivery.Transport
		closer  func()
		secrets []string
	)
	for _, v := range s.cfg.Headers {
		secrets = append(secrets, v)
	}
	if s.cfg.Protocol == "grpc" {
		g, err := dialGRPC(s.cfg, s.settings)
		if err != nil {
			return err
		}
		t, closer = g, g.Close
	} else {
		c, err := delivery.NewClient(s.cfg.HTTP, s.settings, "veneurd-sink-otlp/"+Version)
		if err != nil {
			return err
		}
		t, closer = c, c.Close
	}
	s.Begin(t, delivery.QueueConfig{Settings: s.settings, Stats: s.env.Stats, Log: s.env.Logger, Secrets: secrets}, closer)
	return nil
}

// Flush encodes f's points and queues their requests; it returns once they
// are queued, not sent. OTLP metrics have no events: they are left out.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	return s.Do(func(q *delivery.Queue) {
		s.enc.Interval = f.Interval
		delivery.Encode(q, s.dest, s.enc, f.Points, delivery.Limits{Bytes: maxBodyBytes, Items: s.cfg.MaxPerBody},
			(*Encoder).Point)
	})
}

// maxBodyBytes keeps a request under gRPC's default 4 MiB message limit,
// which collectors keep.
const maxBodyBytes = 3 << 20

// Stop delivers what is buffered, within ctx.
func (s *Sink) Stop(ctx context.Context) error {
	s.End(ctx)
	return nil
}
