package influxdb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Version is the sink's version, shown by `veneurd plugins` and sent in the
// User-Agent.
const Version = "1.0.0"

// Config is the influxdb sink's block.
type Config struct {
	Address    string `hcl:"address" description:"InfluxDB's base URL, e.g. \"http://influxdb:8086\""`
	APIVersion int    `hcl:"api_version,optional" description:"1 (/write, InfluxDB 1.x; default) or 2 (/api/v2/write, InfluxDB 2 and 3)"`
	// Version 1.
	Database        string `hcl:"database,optional" description:"v1: the database to write to"`
	RetentionPolicy string `hcl:"retention_policy,optional" description:"v1: the retention policy (default: the database's)"`
	Username        string `hcl:"username,optional" description:"v1: basic auth user, with password"`
	Password        string `hcl:"password,optional" sensitive:"true" description:"v1: basic auth password"`
	// Version 2.
	Org    string `hcl:"org,optional" description:"v2: the organization"`
	Bucket string `hcl:"bucket,optional" description:"v2: the bucket to write to"`
	Token  string `hcl:"token,optional" sensitive:"true" description:"v2: the API token, sent as Authorization: Token TOKEN"`

	HostTag      bool   `hcl:"host_tag,optional" description:"write the point's hostname as the tag host (default true)"`
	MessageField bool   `hcl:"message_field,optional" description:"write a service check's message as the string field message (default true)"`
	Compression  string `hcl:"compression,optional" description:"\"gzip\" (default) or \"none\""`
	MaxPerBody   int    `hcl:"max_points_per_request,optional" description:"most points in one request (default 5000, as InfluxDB advises)"`
	delivery.HTTP
}

// Sink writes points to InfluxDB in line protocol.
type Sink struct {
	env      sdk.Env
	cfg      Config
	settings delivery.Settings
	dest     *delivery.Dest
	secrets  []string

	delivery.Running // guards the encoder: one flush at a time
	enc              Encoder
}

// New returns an influxdb sink.
func New() *Sink { return &Sink{} }

// Version reports the sink's version.
func (s *Sink) Version() string { return Version }

// Config returns the defaults.
func (s *Sink) Config() any {
	return &Config{APIVersion: 1, HostTag: true, MessageField: true, Compression: "gzip", MaxPerBody: 5000}
}

func required(attr, version, what string) error {
	return &sdk.AttrError{Attribute: attr, Summary: "Missing " + attr,
		Detail: fmt.Sprintf("API version %s writes to %s: set %s.", version, what, attr)}
}

// unused refuses the attributes of attrs (name, value) that are set: they
// belong to the other API version.
func unused(version string, attrs [][2]string) error {
	var errs []error
	for _, a := range attrs {
		if a[1] != "" {
			errs = append(errs, &sdk.AttrError{Attribute: a[0], Summary: "Not used by this API version",
				Detail: fmt.Sprintf("%s belongs to the other API version, not %s: remove it or change api_version.", a[0], version)})
		}
	}
	return errors.Join(errs...)
}

// Configure checks cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	settings, err := c.HTTP.Check()
	errs := []error{err, delivery.CheckURL("address", c.Address, "http://influxdb:8086")}
	base := strings.TrimSuffix(c.Address, "/")
	h := http.Header{}
	s.secrets = nil
	var target string
	switch c.APIVersion {
	case 1:
		if c.Database == "" {
			errs = append(errs, required("database", "1", "a database"))
		}
		errs = append(errs, unused("1", [][2]string{{"org", c.Org}, {"bucket", c.Bucket}, {"token", c.Token}}))
		if (c.Username == "") != (c.Password == "") {
			errs = append(errs, &sdk.AttrError{Attribute: "username", Summary: "Incomplete credentials",
				Detail: "username and password go together: give both or neither."})
		}
		q := url.Values{"db": {c.Database}, "precision": {"s"}}
		if c.RetentionPolicy != "" {
			q.Set("rp", c.RetentionPolicy)
		}
		target = base + "/write?" + q.Encode()
		if c.Username != "" {
			// In a header: InfluxDB 1.x also reads u and p from the query,
			// where they would show in every log that shows the URL.
			r := http.Request{Header: http.Header{}}
			r.SetBasicAuth(c.Username, c.Password)
			h.Set("Authorization", r.Header.Get("Authorization"))
			s.secrets = append(s.secrets, c.Password, r.Header.Get("Authorization"))
		}
	case 2:
		if c.Org == "" {
			errs = append(errs, required("org", "2", "an organization's bucket"))
		}
		if c.Bucket == "" {
			errs = append(errs, required("bucket", "2", "a bucket"))
		}
		errs = append(errs, unused("2", [][2]string{{"database", c.Database}, {"retention_policy", c.RetentionPolicy},
			{"username", c.Username}, {"password", c.Password}}))
		target = base + "/api/v2/write?" + url.Values{"org": {c.Org}, "bucket": {c.Bucket}, "precision": {"s"}}.Encode()
		if c.Token != "" {
			h.Set("Authorization", "Token "+c.Token)
			s.secrets = append(s.secrets, c.Token)
		}
	default:
		errs = append(errs, &sdk.AttrError{Attribute: "api_version", Summary: "Unknown API version",
			Detail: fmt.Sprintf("api_version is 1 or 2, not %d.", c.APIVersion)})
	}
	comp, cerr := delivery.ParseCompression(c.Compression)
	if cerr != nil || (comp != delivery.None && comp != delivery.Gzip) {
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
	s.dest = &delivery.Dest{URL: target, ContentType: "text/plain; charset=utf-8", Compression: comp, Header: h}
	s.env, s.cfg, s.settings = env, c, settings
	s.enc.NoHostTag, s.enc.NoMessage = !c.HostTag, !c.MessageField
	return nil
}

// Start starts delivering.
func (s *Sink) Start(context.Context) error {
	return s.BeginHTTP(s.cfg.HTTP, s.settings, s.env, "veneurd-sink-influxdb/"+Version, s.secrets...)
}

// Flush encodes f's points and queues their requests; it returns once they
// are queued, not sent. Line protocol has no events: they are left out.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	return s.Do(func(q *delivery.Queue) {
		delivery.Encode(q, s.dest, &s.enc, f.Points, delivery.Limits{Bytes: maxBodyBytes, Items: s.cfg.MaxPerBody},
			(*Encoder).Point)
	})
}

// maxBodyBytes bounds a request before compression, under InfluxDB 1.x's
// default max-body-size of 25 MB.
const maxBodyBytes = 4 << 20

// Stop delivers what is buffered, within ctx.
func (s *Sink) Stop(ctx context.Context) error {
	s.End(ctx)
	return nil
}
