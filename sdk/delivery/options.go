// Package delivery is what every network sink needs between encoding its
// points and the receiver, written once: a bounded buffer of request bodies
// that outlives a flush, a bounded number of requests in flight, retries
// with exponential backoff and jitter (honouring Retry-After), compression,
// HTTP with TLS, and the self-metrics that say what was dropped and why.
//
// A sink encodes each flush into bodies of a bounded size and hands each to
// a Queue, which returns at once: a flush never waits for the network.
// The Queue delivers bodies in order, several at a time; when the receiver
// fails, every request waits behind the failed one, which is retried, so a
// receiver that is down for a while gets everything once it is back, as long
// as the buffer held it. Past max_buffered_points the oldest bodies are
// dropped. Nothing is dropped silently: every point lost is counted in
// veneur.sink.metrics_dropped_total{reason} and every retry in
// veneur.sink.retries_total (see sdk.Stats).
//
// A secret (an API key, a token) is only ever sent in a header. The Queue
// and the HTTP client scrub the secrets they are given from every error and
// log line, and a receiver's answer is logged scrubbed too.
package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// Self-metrics a delivering sink keeps (tagged sink:ADDRESS by veneurd).
const (
	MetricsDropped = "veneur.sink.metrics_dropped_total" // reason
	Retries        = "veneur.sink.retries_total"
)

// Reasons a point is dropped, the reason tag of MetricsDropped.
const (
	// ReasonBufferFull: the receiver was down or slow for longer than
	// max_buffered_points could hold, and the oldest points made room.
	ReasonBufferFull = "buffer_full"
	// ReasonRejected: the receiver refused the request (a 4xx other than
	// 408 and 429), which would fail again if retried.
	ReasonRejected = "rejected"
	// ReasonInvalid: the protocol cannot hold the point (a NaN where it
	// has none, a name that sanitises to nothing).
	ReasonInvalid = "invalid_value"
	// ReasonShutdown: still buffered when the sink was stopped and the
	// receiver did not take it in the time stopping allows.
	ReasonShutdown = "shutdown"
)

// Defaults of Options.
const (
	DefaultTimeout           = 10 * time.Second
	DefaultMaxBufferedPoints = 2_000_000
	DefaultMaxInFlight       = 4
	DefaultMaxRetryBackoff   = 10 * time.Second
)

// Options are the delivery attributes every network sink takes. Embed them
// in a sink's Config (HTTP sinks embed HTTP, which holds them).
type Options struct {
	Timeout           string `hcl:"timeout,optional" description:"how long one request may take, e.g. \"10s\" (default 10s)"`
	MaxBufferedPoints int    `hcl:"max_buffered_points,optional" description:"points kept while the receiver is down or slow; past it the oldest are dropped and counted (default 2000000)"`
	MaxInFlight       int    `hcl:"max_requests_in_flight,optional" description:"requests sent at once (default 4)"`
	MaxRetryBackoff   string `hcl:"max_retry_backoff,optional" description:"longest wait between retries, e.g. \"10s\" (default 10s)"`
}

// HTTP is Options and the attributes of every HTTP sink.
type HTTP struct {
	Options
	TLS     *TLS              `hcl:"tls,block" description:"TLS settings for https receivers"`
	Headers map[string]string `hcl:"headers,optional" sensitive:"true" description:"headers added to every request"`
}

// TLS configures the client side of TLS.
type TLS struct {
	CAFile             string `hcl:"ca_file,optional" description:"PEM file of the CAs to trust instead of the system's"`
	CertFile           string `hcl:"cert_file,optional" description:"PEM client certificate, with key_file"`
	KeyFile            string `hcl:"key_file,optional" description:"PEM key of cert_file"`
	InsecureSkipVerify bool   `hcl:"insecure_skip_verify,optional" description:"accept any server certificate (testing only)"`
	ServerName         string `hcl:"server_name,optional" description:"name to verify the server certificate against, when it differs from the address's"`
}

// Settings are Options checked and resolved.
type Settings struct {
	Timeout           time.Duration
	MaxBufferedPoints int
	MaxInFlight       int
	MaxRetryBackoff   time.Duration
}

// Check resolves o, filling in defaults. Problems are *sdk.AttrErrors,
// joined.
func (o Options) Check() (Settings, error) {
	s := Settings{Timeout: DefaultTimeout, MaxBufferedPoints: DefaultMaxBufferedPoints,
		MaxInFlight: DefaultMaxInFlight, MaxRetryBackoff: DefaultMaxRetryBackoff}
	var errs []error
	if o.Timeout != "" {
		d, err := parseDuration("timeout", o.Timeout)
		errs = append(errs, err)
		s.Timeout = d
	}
	if o.MaxRetryBackoff != "" {
		d, err := parseDuration("max_retry_backoff", o.MaxRetryBackoff)
		errs = append(errs, err)
		s.MaxRetryBackoff = d
	}
	switch {
	case o.MaxBufferedPoints < 0:
		errs = append(errs, &sdk.AttrError{Attribute: "max_buffered_points", Summary: "Invalid buffer size",
			Detail: fmt.Sprintf("max_buffered_points must be positive, not %d.", o.MaxBufferedPoints)})
	case o.MaxBufferedPoints > 0:
		s.MaxBufferedPoints = o.MaxBufferedPoints
	}
	switch {
	case o.MaxInFlight < 0 || o.MaxInFlight > 256:
		errs = append(errs, &sdk.AttrError{Attribute: "max_requests_in_flight", Summary: "Invalid request count",
			Detail: fmt.Sprintf("max_requests_in_flight must be from 1 to 256, not %d.", o.MaxInFlight)})
	case o.MaxInFlight > 0:
		s.MaxInFlight = o.MaxInFlight
	}
	return s, errors.Join(errs...)
}

func parseDuration(attr, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, &sdk.AttrError{Attribute: attr, Summary: "Invalid duration",
			Detail: fmt.Sprintf("%q is not a positive duration; write it as a number and a unit, such as \"10s\".", v)}
	}
	return d, nil
}

// Config returns the TLS configuration t describes, nil for none. It reads
// the files it names, so Configure can report a missing one.
func (t *TLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	var errs []error
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, &sdk.AttrError{Attribute: "tls", Summary: "Unreadable CA file", Detail: err.Error() + "."})
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, &sdk.AttrError{Attribute: "tls", Summary: "Invalid CA file",
				Detail: fmt.Sprintf("%s holds no PEM certificate.", t.CAFile)})
		default:
			c.RootCAs = pool
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		errs = append(errs, &sdk.AttrError{Attribute: "tls", Summary: "Incomplete client certificate",
			Detail: "cert_file and key_file go together: give both or neither."})
	case t.CertFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, &sdk.AttrError{Attribute: "tls", Summary: "Invalid client certificate", Detail: err.Error() + "."})
		} else {
			c.Certificates = []tls.Certificate{cert}
		}
	}
	return c, errors.Join(errs...)
}

// CheckURL checks that the value of attribute attr is an http or https URL
// holding no credentials or query, which would show wherever the URL does:
// a secret goes in its own attribute and is sent in a header. example is
// shown in the error.
func CheckURL(attr, value, example string) error {
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return &sdk.AttrError{Attribute: attr, Summary: "Invalid URL",
			Detail: fmt.Sprintf("%q is not an http or https URL such as %q, without credentials or query (a secret has an attribute of its own, sent in a header).",
				Scrub(value, userinfo(u)), example)}
	}
	return nil
}

// userinfo returns the password of u, for scrubbing, if it has one.
func userinfo(u *url.URL) []string {
	if u == nil || u.User == nil {
		return nil
	}
	if p, ok := u.User.Password(); ok {
		return []string{p}
	}
	return []string{u.User.Username()}
}
