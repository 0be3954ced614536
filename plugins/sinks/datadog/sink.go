package datadog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Version is the sink's version, shown by `veneurd plugins` and sent in the
// User-Agent.
const Version = "1.0.0"

// DefaultAddress is Datadog's US1 API.
const DefaultAddress = "https://api.datadoghq.com"

// Config is the datadog sink's block.
type Config struct {
	Address    string `hcl:"address,optional" description:"the Datadog API's base URL (default https://api.datadoghq.com; https://api.datadoghq.eu for EU1)"`
	APIKey     string `hcl:"api_key" sensitive:"true" description:"the Datadog API key, sent in the DD-API-KEY header; read it with env() or file()"`
	APIVersion int    `hcl:"api_version,optional" description:"1 (/api/v1/series, as Veneur) or 2 (/api/v2/series); default 1"`
	CountersAs string `hcl:"counters_as,optional" description:"\"rate\" (per second over the interval, as Veneur sends them; default) or \"count\""`
	MaxPerBody int    `hcl:"flush_max_per_body,optional" description:"most series in one request (default 25000, as Veneur)"`
	delivery.HTTP
}

// Datadog's documented limits on a series request: 3.2 MB compressed and
// 62 MiB decompressed. Bodies are cut well below both: JSON series
// compress about tenfold.
const maxBodyBytes = 8 << 20

// Sink sends points to Datadog: series, service checks and events.
type Sink struct {
	env      sdk.Env
	cfg      Config
	settings delivery.Settings
	series   *delivery.Dest
	checks   *delivery.Dest
	events   *delivery.Dest

	delivery.Running // guards the encoders: one flush at a time
	v1               SeriesV1
	v2               SeriesV2
	cr               CheckRuns
	ev               Events
}

// New returns a datadog sink.
func New() *Sink { return &Sink{} }

// Version reports the sink's version.
func (s *Sink) Version() string { return Version }

// Config returns the defaults.
func (s *Sink) Config() any {
	return &Config{Address: DefaultAddress, APIVersion: 1, CountersAs: "rate", MaxPerBody: 25000}
}

// Configure checks cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	settings, err := c.HTTP.Check()
	errs := []error{err}
	errs = append(errs, delivery.CheckURL("address", c.Address, DefaultAddress))
	if strings.TrimSpace(c.APIKey) == "" {
		errs = append(errs, &sdk.AttrError{Attribute: "api_key", Summary: "Empty API key",
			Detail: "Datadog refuses requests without an API key; set api_key, for instance to env(\"DD_API_KEY\")."})
	}
	if c.APIVersion != 1 && c.APIVersion != 2 {
		errs = append(errs, &sdk.AttrError{Attribute: "api_version", Summary: "Unknown API version",
			Detail: fmt.Sprintf("api_version is 1 or 2, not %d.", c.APIVersion)})
	}
	if c.CountersAs != "rate" && c.CountersAs != "count" {
		errs = append(errs, &sdk.AttrError{Attribute: "counters_as", Summary: "Unknown counter type",
			Detail: fmt.Sprintf("counters_as is \"rate\" or \"count\", not %q.", c.CountersAs)})
	}
	if c.MaxPerBody <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "flush_max_per_body", Summary: "Invalid body size",
			Detail: fmt.Sprintf("flush_max_per_body must be positive, not %d.", c.MaxPerBody)})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	base := strings.TrimSuffix(c.Address, "/")
	key := http.Header{"Dd-Api-Key": {c.APIKey}}
	s.series = &delivery.Dest{URL: base + "/api/v1/series", ContentType: "application/json", Compression: delivery.Gzip, Header: key}
	if c.APIVersion == 2 {
		s.series.URL = base + "/api/v2/series"
	}
	s.checks = &delivery.Dest{URL: base + "/api/v1/check_run", ContentType: "application/json", Compression: delivery.Gzip, Header: key}
	s.events = &delivery.Dest{URL: base + "/api/v1/events", ContentType: "application/json", Compression: delivery.Gzip, Header: key}
	s.env, s.cfg, s.settings = env, c, settings
	s.v1.CountersAsCount = c.CountersAs == "count"
	s.v2.CountersAsCount = s.v1.CountersAsCount
	s.ev.Hostname = env.Hostname
	return nil
}

// Start starts delivering.
func (s *Sink) Start(context.Context) error {
	return s.BeginHTTP(s.cfg.HTTP, s.settings, s.env, "veneurd-sink-datadog/"+Version, s.cfg.APIKey)
}

// Flush encodes f and queues its requests: series, then service checks,
// then each event. It returns once they are queued, not sent.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	return s.Do(func(q *delivery.Queue) { s.flush(q, f) })
}

func (s *Sink) flush(q *delivery.Queue, f *sdk.Flush) {
	notStatus := func(p *sdk.Point) bool { return p.Type != sdk.PointStatus }
	if s.cfg.APIVersion == 2 {
		s.v2.Interval = f.Interval
		encode(q, s.series, &s.v2, f.Points, s.cfg.MaxPerBody, notStatus, (*SeriesV2).Point)
	} else {
		s.v1.Interval = f.Interval
		encode(q, s.series, &s.v1, f.Points, s.cfg.MaxPerBody, notStatus, (*SeriesV1).Point)
	}
	encode(q, s.checks, &s.cr, f.Points, s.cfg.MaxPerBody, func(p *sdk.Point) bool { return !notStatus(p) }, (*CheckRuns).Point)
	var refused int
	for i := range f.Events {
		if body := s.ev.Event(&f.Events[i], f.Timestamp); body != nil {
			q.Send(s.events, body, 0)
		} else {
			refused++
		}
	}
	if refused > 0 {
		s.env.Logger.Warn("dropped events without a title, which Datadog requires", "events", refused)
	}
}

// encode sends the points that take, through e, in bodies of at most max
// series and maxBodyBytes.
func encode[E delivery.Encoder](q *delivery.Queue, dest *delivery.Dest, e E, points []sdk.Point, max int, take func(*sdk.Point) bool, add func(E, *sdk.Point) bool) {
	delivery.Encode(q, dest, e, points, delivery.Limits{Bytes: maxBodyBytes, Items: max}, func(e E, p *sdk.Point) bool {
		return !take(p) || add(e, p)
	})
}

// Stop delivers what is buffered, within ctx.
func (s *Sink) Stop(ctx context.Context) error {
	s.End(ctx)
	return nil
}
