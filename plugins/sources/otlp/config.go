package otlp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the otlp source's configuration. The sockets it serves are not
// in it: they are the block's listen attribute, which veneurd owns, opens
// and hands to Run.
type Config struct {
	// MaxRequestBytes bounds a request body, compressed and once
	// decompressed: what one request can make the source hold in bytes.
	MaxRequestBytes int `hcl:"max_request_bytes,optional" description:"largest request accepted, in bytes, compressed and decompressed"`
	// MaxRequestDataPoints bounds the data points of one request, counted
	// on the wire before anything is decoded: what one request can make the
	// source hold in decoded messages (a few hundred bytes a point).
	MaxRequestDataPoints int `hcl:"max_request_data_points,optional" description:"most data points in one request; a request with more is refused whole"`
	// MaxConcurrentRequests bounds the requests decoded and written at
	// once; others wait, their bodies read. With MaxRequestDataPoints it
	// bounds the memory decoded requests take.
	MaxConcurrentRequests int `hcl:"max_concurrent_requests,optional" description:"requests decoded and written at once; others wait their turn"`
	// MaxConnections bounds the connections open at once per listener.
	MaxConnections int `hcl:"max_connections,optional" description:"connections open at once, per listener"`
	// IdleTimeout closes connections that carry no request for this long.
	IdleTimeout string `hcl:"idle_timeout,optional" description:"close connections idle for this long"`
	// IncludeResourceAttributes lists the resource attributes that become
	// tags. Resource attributes describe the process (service.instance.id,
	// process.pid, host.*, k8s.pod.uid...): most change with every
	// deployment or restart, so all of them as tags would multiply series.
	IncludeResourceAttributes []string `hcl:"include_resource_attributes,optional" description:"resource attributes that become tags (host.name becomes the host tag)"`
	// StreamExpiry forgets a cumulative stream not seen for this long.
	StreamExpiry string `hcl:"stream_expiry,optional" description:"forget a cumulative stream's last point after this long without one"`
	// MaxStreams bounds the cumulative streams remembered.
	MaxStreams int `hcl:"max_streams,optional" description:"most cumulative streams remembered; points of new streams past it are rejected"`
	// TLS serves OTLP/gRPC and OTLP/HTTP over TLS on tcp:// listeners.
	TLS *sdk.ServerTLS `hcl:"tls,block" description:"TLS for tcp:// listeners, OTLP/gRPC and OTLP/HTTP alike"`

	idleTimeout  time.Duration
	streamExpiry time.Duration
	tlsConfig    *tls.Config
}

func defaultConfig() *Config {
	return &Config{
		MaxRequestBytes:           16 << 20,
		MaxRequestDataPoints:      100_000,
		MaxConcurrentRequests:     8,
		MaxConnections:            1024,
		IdleTimeout:               "5m",
		IncludeResourceAttributes: []string{"service.name"},
		StreamExpiry:              "15m",
		MaxStreams:                250_000,
	}
}

// validate checks every value and reports every problem, joined.
func (c *Config) validate() error {
	var errs []error
	rangeErr := func(attr, summary string, v, lo, hi int, unit string) {
		if v < lo || v > hi {
			errs = append(errs, &sdk.AttrError{Attribute: attr, Summary: summary,
				Detail: fmt.Sprintf("%s must be between %d and %d%s, not %d.", attr, lo, hi, unit, v)})
		}
	}
	rangeErr("max_request_bytes", "Request size out of range", c.MaxRequestBytes, 1024, 1<<30, " bytes")
	rangeErr("max_request_data_points", "Data points out of range", c.MaxRequestDataPoints, 1, 10_000_000, "")
	rangeErr("max_concurrent_requests", "Concurrent requests out of range", c.MaxConcurrentRequests, 1, 1024, "")
	rangeErr("max_connections", "Connections out of range", c.MaxConnections, 1, 1<<20, "")
	rangeErr("max_streams", "Streams out of range", c.MaxStreams, 1, 100_000_000, "")
	duration := func(attr, s string, d *time.Duration) {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			errs = append(errs, &sdk.AttrError{Attribute: attr, Summary: "Invalid duration",
				Detail: fmt.Sprintf("%q is not a positive duration such as \"5m\".", s)})
			return
		}
		*d = v
	}
	duration("idle_timeout", c.IdleTimeout, &c.idleTimeout)
	duration("stream_expiry", c.StreamExpiry, &c.streamExpiry)
	seen := map[string]bool{}
	for _, a := range c.IncludeResourceAttributes {
		switch {
		case strings.TrimSpace(a) == "":
			errs = append(errs, &sdk.AttrError{Attribute: "include_resource_attributes", Summary: "Empty attribute name",
				Detail: "include_resource_attributes lists resource attribute keys, such as \"service.name\"; an empty one matches nothing."})
		case seen[a]:
			errs = append(errs, &sdk.AttrError{Attribute: "include_resource_attributes", Summary: "Repeated attribute",
				Detail: fmt.Sprintf("%q is listed twice.", a)})
		}
		seen[a] = true
	}
	tc, err := c.TLS.Config()
	if err != nil {
		errs = append(errs, err)
	}
	c.tlsConfig = withALPN(tc)
	return errors.Join(errs...)
}

// withALPN returns tc choosing, for each client, the application protocol
// that serves it: HTTP/1.1 for a client that offers it (OTLP/HTTP clients
// do), HTTP/2 for one that offers only h2 (gRPC clients), and none for one
// that offers neither, whose first bytes then tell. Each connection's first
// bytes are read after the handshake, as on cleartext, so that one port
// serves OTLP/gRPC and OTLP/HTTP over TLS as it does without. nil for nil.
func withALPN(tc *tls.Config) *tls.Config {
	if tc == nil {
		return nil
	}
	h1, h2 := tc.Clone(), tc.Clone()
	h1.NextProtos, h2.NextProtos = []string{"http/1.1"}, []string{"h2"}
	out := tc.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		switch {
		case slices.Contains(hello.SupportedProtos, "http/1.1"):
			return h1, nil
		case slices.Contains(hello.SupportedProtos, "h2"):
			return h2, nil
		}
		return nil, nil
	}
	return out
}
