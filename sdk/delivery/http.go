package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Dest is where an HTTP payload goes and how.
type Dest struct {
	URL         string
	ContentType string
	Compression Compression
	// Header holds the request's own headers, such as the API key, on top
	// of the sink's configured ones.
	Header http.Header
}

// Client is the HTTP Transport: it POSTs each payload to its Dest.
type Client struct {
	http    *http.Client
	header  http.Header
	secrets []string
	agent   string
}

// NewClient returns a Client for h, checked by Check, adding header to
// every request (for instance an API key) and scrubbing secrets from its
// errors. agent is the User-Agent, e.g. "veneurd-sink-datadog/1.2".
func NewClient(h HTTP, s Settings, agent string, secrets ...string) (*Client, error) {
	tc, err := h.TLS.Config()
	if err != nil {
		return nil, err
	}
	header := http.Header{}
	for k, v := range h.Headers {
		header.Set(k, v)
		secrets = append(secrets, v)
	}
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: min(s.Timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: s.MaxInFlight,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: min(s.Timeout, 10*time.Second),
	}
	return &Client{http: &http.Client{Transport: t, Timeout: s.Timeout}, header: header, secrets: secrets, agent: agent}, nil
}

// Check checks h's own attributes besides Options: its TLS files.
func (h HTTP) Check() (Settings, error) {
	s, err := h.Options.Check()
	_, terr := h.TLS.Config()
	return s, errors.Join(err, terr)
}

// maxShownBody is how much of a receiver's answer an error quotes.
const maxShownBody = 512

// Send POSTs p and classifies the outcome: 2xx is delivered; 408, 429 and
// 5xx, timeouts and connection errors are retried (429 and 503 after their
// Retry-After); any other status is a rejection, quoting the answer.
func (c *Client) Send(ctx context.Context, p *Payload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Dest.URL, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("building the request: %s", c.scrub(err.Error()))
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for k, v := range p.Dest.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", p.Dest.ContentType)
	if enc := p.Dest.Compression.encoding(); enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The error quotes the URL, which holds no secret by design, but
		// scrub it anyway.
		return Retry(errors.New(c.scrub(err.Error())), 0)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxShownBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s answered %s: %s", p.Dest.URL, resp.Status, c.scrub(shown(body)))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return Retry(err, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return err
}

// shown is a receiver's answer fit for a log line.
func shown(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if s == "" {
		return "(no body)"
	}
	if len(b) == maxShownBody {
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// maxRetryAfter bounds the wait a receiver may ask for.
const maxRetryAfter = 5 * time.Minute

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

func (c *Client) scrub(s string) string { return Scrub(s, c.secrets) }

// Close closes idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }
