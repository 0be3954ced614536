package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the sink block's configuration. Its `hcl` tags are the block's
// schema: url is required (no ",optional"); the token is marked sensitive, so
// veneurd never shows it; the other defaults are set in Sink.Config.
type Config struct {
	URL       string `hcl:"url" description:"where to POST points: an http or https URL"`
	Token     string `hcl:"token,optional" sensitive:"true" description:"sent as Authorization: Bearer <token>"`
	BatchSize int    `hcl:"batch_size,optional" description:"most points in one request"`
	Timeout   string `hcl:"timeout,optional" description:"how long one request may take, e.g. \"10s\""`
}

// Backoff between attempts at one batch: doubling from firstBackoff to
// maxBackoff, for as long as the flush's context allows.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// version is what `veneurd plugins` shows for this plugin; the User-Agent
// carries it too.
const version = "0.2.0"

// Sink POSTs points to an HTTP endpoint in gzipped batches.
type Sink struct {
	log       hclog.Logger
	url       string
	token     string
	batchSize int
	timeout   time.Duration
	client    *http.Client
}

// Version implements sdk.Versioned.
func (s *Sink) Version() string { return version }

// New returns an unconfigured sink.
func New() *Sink { return &Sink{log: hclog.NewNullLogger()} }

// Config returns a new Config holding the defaults.
func (s *Sink) Config() any { return &Config{BatchSize: 1000, Timeout: "10s"} }

// Configure checks the values and keeps them. It opens nothing: veneurd
// calls it also to validate a pipeline, in a process it never starts.
// Every problem is reported, each on its attribute; none quotes the token.
func (s *Sink) Configure(_ context.Context, env sdk.Env, config any) error {
	c := config.(*Config)
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, &sdk.AttrError{Attribute: "url", Summary: "Invalid URL",
			Detail: "Give an http:// or https:// URL with a host, such as https://metrics.example.com/v1/points."})
	}
	// A header cannot hold these; caught here, the mistake is reported at
	// the attribute instead of failing every request.
	if strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		errs = append(errs, &sdk.AttrError{Attribute: "token", Summary: "Invalid token",
			Detail: "The token holds a space, a newline or another control character."})
	}
	if c.BatchSize < 1 {
		errs = append(errs, &sdk.AttrError{Attribute: "batch_size", Summary: "Batch size too small",
			Detail: fmt.Sprintf("batch_size is %d; it must be at least 1.", c.BatchSize)})
	}
	timeout, err := time.ParseDuration(c.Timeout)
	if err != nil || timeout <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "timeout", Summary: "Invalid timeout",
			Detail: fmt.Sprintf("%q is not a positive duration such as \"10s\".", c.Timeout)})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.url, s.token, s.batchSize, s.timeout = c.URL, c.Token, c.BatchSize, timeout
	if env.Logger != nil {
		s.log = env.Logger
	}
	return nil
}

// Start makes the HTTP client. Its timeout bounds each request, retries
// apart; the flush's context bounds them all.
func (s *Sink) Start(context.Context) error {
	s.client = &http.Client{Timeout: s.timeout}
	u, _ := url.Parse(s.url)
	s.log.Info("posting points", "host", u.Host, "batch_size", s.batchSize) // not the URL: it may hold a key
	return nil
}

// Stop closes idle connections. Flush sends everything before it returns,
// so nothing is pending.
func (s *Sink) Stop(context.Context) error {
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	return nil
}

// Flush sends f's points in batches of at most batch_size, one request at a
// time, before it returns. veneurd hands a large interval over in parts, one
// Flush call each, and the sink keeps no point past its call: it holds one
// compressed batch at a time, never a whole interval. Flushes may overlap;
// each has its own batch, and http.Client is safe for concurrent use.
//
// One bad point costs only itself: a value JSON cannot hold is skipped and
// logged. A batch the endpoint refuses costs only that batch: the others are
// still sent, and the error says how many points were lost.
func (s *Sink) Flush(ctx context.Context, f *sdk.Flush) error {
	b := newBatch()
	var sent, skipped int
	var firstErr error
	send := func() {
		if err := s.post(ctx, b.close(), b.n); err == nil {
			sent += b.n
		} else if firstErr == nil {
			firstErr = err
		}
		b.reset()
	}
	for i := range f.Points {
		p := &f.Points[i]
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			skipped++
			continue
		}
		b.add(p)
		if b.n == s.batchSize {
			send()
			if ctx.Err() != nil {
				break // out of time: the rest cannot be sent either
			}
		}
	}
	if b.n > 0 && ctx.Err() == nil {
		send()
	}
	if skipped > 0 {
		s.log.Warn("skipped points whose value is NaN or infinite, which JSON cannot hold", "points", skipped)
	}
	if want := len(f.Points) - skipped; sent < want {
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		return fmt.Errorf("%d of %d points not sent: %w", want-sent, want, firstErr)
	}
	return nil
}

// post sends one batch of n points, retrying with backoff while the failure
// may pass (a network error, a timeout, 429 or 5xx) and the flush's context
// allows. Other answers are final: sending the same body again would get the
// same answer.
func (s *Sink) post(ctx context.Context, body []byte, n int) error {
	wait := firstBackoff
	for attempt := 1; ; attempt++ {
		retry, err := s.try(ctx, body)
		if err == nil || !retry || ctx.Err() != nil {
			return err
		}
		// Jitter spreads the retries of many veneurd instances that the
		// endpoint refused at the same moment.
		sleep := wait/2 + rand.N(wait/2+1)
		s.log.Warn("request failed; retrying", "points", n, "attempt", attempt, "in", sleep, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(sleep):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// try makes one request and says whether a failure is worth retrying.
func (s *Sink) try(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", "veneurd-sink-example/"+version)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The network, or the request's timeout: worth retrying. The error
		// is stripped of the URL, which may hold a key.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	// Some endpoints echo the request's headers when they refuse it: the
	// token is removed before the answer is cut to an excerpt.
	excerpt := string(answer)
	if s.token != "" {
		excerpt = strings.ReplaceAll(excerpt, s.token, "[token]")
	}
	excerpt = strings.TrimSpace(excerpt[:min(len(excerpt), 200)])
	err = fmt.Errorf("the endpoint answered %s: %q", resp.Status, excerpt)
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}

// point is one line of a request's body. The format is this example's own;
// a vendor's sink writes what its backend reads.
type point struct {
	Metric  string   `json:"metric"`
	Type    string   `json:"type"`
	Value   float64  `json:"value"`
	Time    int64    `json:"time"`
	Host    string   `json:"host,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Message string   `json:"message,omitempty"` // status points (service checks)
}

// batch is one request's body in the making: points encoded as JSON lines
// straight into a gzip stream, so the uncompressed body is never held.
type batch struct {
	buf bytes.Buffer
	zw  *gzip.Writer
	enc *json.Encoder
	n   int
}

func newBatch() *batch {
	b := &batch{}
	b.zw = gzip.NewWriter(&b.buf)
	b.enc = json.NewEncoder(b.zw)
	return b
}

func toPoint(p *sdk.Point) point {
	return point{Metric: p.Name, Type: p.Type.String(), Value: p.Value, Time: p.Timestamp,
		Host: p.Hostname, Tags: p.Tags, Message: p.Message}
}

// add encodes p, whose value is finite: encoding cannot fail then, and
// writing to memory does not.
func (b *batch) add(p *sdk.Point) {
	b.enc.Encode(toPoint(p))
	b.n++
}

// close ends the gzip stream and returns the body, valid until reset.
func (b *batch) close() []byte {
	b.zw.Close()
	return b.buf.Bytes()
}

func (b *batch) reset() {
	b.buf.Reset()
	b.zw.Reset(&b.buf)
	b.n = 0
}
