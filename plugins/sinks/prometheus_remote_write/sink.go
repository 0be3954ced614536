package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Version is the sink's version, shown by `veneurd plugins` and sent in the
// User-Agent.
const Version = "1.0.0"

// Config is the prometheus_remote_write sink's block.
type Config struct {
	Endpoint    string `hcl:"endpoint" description:"the remote write URL, e.g. \"http://prometheus:9090/api/v1/write\""`
	BearerToken string `hcl:"bearer_token,optional" sensitive:"true" description:"sent as Authorization: Bearer TOKEN"`
	Username    string `hcl:"username,optional" description:"basic auth user, with password"`
	Password    string `hcl:"password,optional" sensitive:"true" description:"basic auth password"`
	MaxPerBody  int    `hcl:"max_samples_per_request,optional" description:"most samples in one request (default 5000)"`
	delivery.HTTP
}

// Sink sends points to a Prometheus remote write receiver.
type Sink struct {
	env      sdk.Env
	cfg      Config
	settings delivery.Settings
	dest     *delivery.Dest
	secrets  []string

	delivery.Running // guards the encoder: one flush at a time
	enc              Encoder
}

// New returns a prometheus_remote_write sink.
func New() *Sink { return &Sink{} }

// Version reports the sink's version.
func (s *Sink) Version() string { return Version }

// Config returns the defaults.
func (s *Sink) Config() any { return &Config{MaxPerBody: 5000} }

// Configure checks cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	settings, err := c.HTTP.Check()
	errs := []error{err, delivery.CheckURL("endpoint", c.Endpoint, "http://prometheus:9090/api/v1/write")}
	if c.BearerToken != "" && (c.Username != "" || c.Password != "") {
		errs = append(errs, &sdk.AttrError{Attribute: "bearer_token", Summary: "Two kinds of credentials",
			Detail: "Give bearer_token or username and password, not both: a request has one Authorization header."})
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, &sdk.AttrError{Attribute: "username", Summary: "Incomplete credentials",
			Detail: "username and password go together: give both or neither."})
	}
	if c.MaxPerBody <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_samples_per_request", Summary: "Invalid request size",
			Detail: fmt.Sprintf("max_samples_per_request must be positive, not %d.", c.MaxPerBody)})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The headers the remote write 1.0 specification requires.
	h := http.Header{"X-Prometheus-Remote-Write-Version": {"0.1.0"}}
	s.secrets = nil
	switch {
	case c.BearerToken != "":
		h.Set("Authorization", "Bearer "+c.BearerToken)
		s.secrets = append(s.secrets, c.BearerToken)
	case c.Username != "":
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(c.Username, c.Password)
		h.Set("Authorization", r.Header.Get("Authorization"))
		s.secrets = append(s.secrets, c.Password, r.Header.Get("Authorization"))
	}
	s.dest = &delivery.Dest{URL: c.Endpoint, ContentType: "application/x-protobuf", Compression: delivery.Snappy, Header: h}
	s.env, s.cfg, s.settings = env, c, settings
	return nil
}

// Start starts delivering.
func (s *Sink) Start(context.Context) error {
	return s.BeginHTTP(s.cfg.HTTP, s.settings, s.env, "veneurd-sink-prometheus_remote_write/"+Version, s.secrets...)
}

// Flush encodes f's points and queues their requests; it returns once they
// are queued, not sent. Events have no place in remote write and are left
// out.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	return s.Do(func(q *delivery.Queue) {
		delivery.Encode(q, s.dest, &s.enc, f.Points, delivery.Limits{Bytes: maxBodyBytes, Items: s.cfg.MaxPerBody},
			(*Encoder).Point)
	})
}

// maxBodyBytes bounds a request before compression.
const maxBodyBytes = 4 << 20

// Stop delivers what is buffered, within ctx.
func (s *Sink) Stop(ctx context.Context) error {
	s.End(ctx)
	return nil
}
