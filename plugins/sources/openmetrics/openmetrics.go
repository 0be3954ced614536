// Package openmetrics is the source plugin that scrapes Prometheus text and
// OpenMetrics endpoints, as veneur-prometheus did: every scrape_interval it
// fetches each target, parses the body with the Prometheus project's own
// parsers (textparse, see parse.go) and emits its series as veneurd
// samples, cumulative counters as their increase since the previous scrape
// (see mapping.go and the README).
package openmetrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/pkg/labels"
	"github.com/prometheus/prometheus/pkg/textparse"

	"github.com/veneurd/veneurd/sdk"
)

// Version is the source's version, shown by `veneurd plugins` and sent in
// the User-Agent.
const Version = "1.0.0"

// Protocol is what the source's samples are counted under in
// veneur.listen.received_per_protocol_total.
const Protocol = "openmetrics"

// Self-metrics, emitted through the pipeline with the scraped series,
// tagged veneurd:self. veneur-prometheus counted
// veneur.prometheus.connect_errors_total and decode_errors_total; these
// are per target and say why.
const (
	// ScrapeErrors counts failed scrapes, tagged reason and target.
	ScrapeErrors = "veneur.openmetrics.scrape_error_total"
	// Up is 1 after a good scrape of a target and 0 after a failed one,
	// tagged target: Prometheus's "up".
	Up = "veneur.openmetrics.up"
	// Each failed scrape also counts in veneur.packet.error_total under
	// packet_type PacketType and its reason, as every source's bad input.
	PacketType = "scrape"
)

// Reasons a scrape fails, the reason tag of ScrapeErrors.
const (
	ReasonConnect  = "connect"     // no connection: refused, unreachable, DNS, TLS handshake
	ReasonTimeout  = "timeout"     // the scrape took longer than timeout
	ReasonStatus   = "http_status" // an answer other than 2xx
	ReasonRead     = "read"        // the connection broke while the body was read
	ReasonTooLarge = "too_large"   // a body longer than max_body_bytes
	ReasonParse    = "parse"       // a body the parser refused
)

// accept asks for the Prometheus text format first, which every Prometheus
// client serves, then OpenMetrics, for endpoints that serve nothing else.
// The answer's Content-Type picks the parser.
const accept = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,*/*;q=0.1"

// keepBuffer is the largest body buffer a target keeps between scrapes: a
// target that once sent 10 MB does not hold 10 MB for ever.
const keepBuffer = 4 << 20

// Source scrapes targets.
type Source struct {
	cfg    Config
	log    hclog.Logger
	header http.Header
}

// New returns an openmetrics source.
func New() *Source { return &Source{log: hclog.NewNullLogger()} }

// Version reports the source's version.
func (s *Source) Version() string { return Version }

// Config returns the defaults.
func (s *Source) Config() any { return defaultConfig() }

// Configure checks and stores cfg. It opens nothing.
func (s *Source) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := cfg.(*Config)
	if err := c.validate(); err != nil {
		return err
	}
	s.cfg = *c
	if env.Logger != nil {
		s.log = env.Logger
	}
	h := http.Header{
		"Accept":     {accept},
		"User-Agent": {"veneurd-source-openmetrics/" + Version},
		// Exporters that probe (the blackbox exporter) fit their work in it.
		"X-Prometheus-Scrape-Timeout-Seconds": {strconv.FormatFloat(c.settings.timeout.Seconds(), 'f', -1, 64)},
	}
	if c.BearerToken != "" {
		h.Set("Authorization", "Bearer "+c.BearerToken)
	}
	s.header = h
	return nil
}

// Run scrapes every target, each in its own goroutine, until ctx ends.
func (s *Source) Run(ctx context.Context, listeners []sdk.Listener, out sdk.Output) error {
	if len(listeners) > 0 {
		s.log.Warn("an openmetrics source reads no sockets: its listen addresses are ignored")
	}
	client := s.client()
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for _, u := range s.cfg.settings.targets {
		t := s.newTarget(u, client, out.Writer(Protocol))
		wg.Go(func() { t.run(ctx) })
	}
	wg.Wait()
	return nil
}

func (s *Source) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Targets are scraped directly, as Prometheus does: a proxy from the
	// environment meant for the outside would take the scrapes of local
	// exporters.
	tr.Proxy = nil
	tr.TLSClientConfig = s.cfg.settings.tls
	tr.MaxIdleConnsPerHost = 4
	// The body's size is bounded after decompression (max_body_bytes);
	// the Transport asks for gzip and decompresses.
	return &http.Client{Transport: tr}
}

// target is one URL and what is remembered of it. It belongs to its
// goroutine.
type target struct {
	s      *Source
	url    string
	client *http.Client
	w      sdk.Writer
	m      *mapper
	body   bytes.Buffer

	// The parser's scratch, reused.
	fam  []byte               // the family the last TYPE line named
	typ  textparse.MetricType // and its type
	lbls labels.Labels        // a new series' labels
	kvs  []kv                 // and as tags

	down bool // the last scrape failed; logged once when it went down

	// Self-metric tags, built once.
	upTags  []byte
	errTags map[string][]byte
}

var upName = []byte(Up)
var errName = []byte(ScrapeErrors)

func (s *Source) newTarget(u *url.URL, client *http.Client, w sdk.Writer) *target {
	instance := ""
	if s.cfg.settings.rules.instanceTag != "" {
		instance = sanitize(u.Host, false)
	}
	t := &target{
		s: s, url: u.String(), client: client, w: w,
		m:       newMapper(s.cfg.settings.rules, instance),
		errTags: map[string][]byte{},
	}
	name := sanitize(t.url, false)
	t.upTags = []byte("target:" + name + ",veneurd:self")
	for _, r := range []string{ReasonConnect, ReasonTimeout, ReasonStatus, ReasonRead, ReasonTooLarge, ReasonParse} {
		t.errTags[r] = []byte("reason:" + r + ",target:" + name + ",veneurd:self")
	}
	return t
}

// run scrapes at once, then every interval. A scrape's timeout is at most
// the interval, so scrapes of one target never overlap; a slow target
// delays no other, each having its goroutine.
func (t *target) run(ctx context.Context) {
	tick := time.NewTicker(t.s.cfg.settings.interval)
	defer tick.Stop()
	for {
		t.scrapeOnce(ctx)
		t.w.Flush()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scrapeOnce scrapes and maps the target, and counts and logs a failure.
func (t *target) scrapeOnce(ctx context.Context) {
	reason, err := t.scrape(ctx)
	if reason == "" {
		t.w.Metric(sdk.Gauge, sdk.ScopeDefault, upName, t.upTags, 1, 1)
		if t.down {
			t.down = false
			t.s.log.Info("target is up again", "target", t.url)
		}
		return
	}
	if ctx.Err() != nil {
		return // stopping cut the scrape short: not the target's fault
	}
	t.w.Metric(sdk.Gauge, sdk.ScopeDefault, upName, t.upTags, 0, 1)
	t.w.Metric(sdk.Counter, sdk.ScopeDefault, errName, t.errTags[reason], 1, 1)
	t.w.Error(PacketType, reason)
	if !t.down {
		t.down = true
		t.s.log.Warn("target is down; scrapes go on, and it is logged again when one succeeds",
			"target", t.url, "reason", reason, "error", shorten(err.Error()))
	}
}

// scrape fetches the body and maps it; it returns the reason of a failure.
// A body is mapped only once it was read and parsed whole: a failed scrape
// emits nothing and leaves the remembered counters as they were, so the
// next good scrape counts the increase since the last good one.
func (t *target) scrape(ctx context.Context) (string, error) {
	cfg := &t.s.cfg.settings
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return ReasonConnect, err
	}
	req.Header = t.s.header
	resp, err := t.client.Do(req)
	if err != nil {
		return classify(err, ReasonConnect), err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little, so that the connection can be kept.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return ReasonStatus, fmt.Errorf("HTTP %s", resp.Status)
	}
	if resp.ContentLength > cfg.maxBodyBytes {
		return ReasonTooLarge, fmt.Errorf("a body of %d bytes, more than max_body_bytes (%d)", resp.ContentLength, cfg.maxBodyBytes)
	}
	if t.body.Cap() > keepBuffer {
		t.body = bytes.Buffer{}
	}
	t.body.Reset()
	n, err := t.body.ReadFrom(io.LimitReader(resp.Body, cfg.maxBodyBytes+1))
	if err != nil {
		return classify(err, ReasonRead), err
	}
	if n > cfg.maxBodyBytes {
		return ReasonTooLarge, fmt.Errorf("a body of more than max_body_bytes (%d)", cfg.maxBodyBytes)
	}
	// The text parser appends a newline to the body: room for it saves
	// copying the body.
	t.body.Grow(1)
	if err := t.ingest(expfmt.ResponseFormat(resp.Header), t.body.Bytes()); err != nil {
		return ReasonParse, err
	}
	return "", nil
}

// classify tells a timeout from the other failures.
func classify(err error, otherwise string) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return otherwise
}

// shorten bounds an error for a log line: a parse error may quote the body.
func shorten(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
