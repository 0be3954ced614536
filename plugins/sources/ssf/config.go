package ssf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the ssf source's configuration. The sockets it reads are the
// block's listen attribute, which veneurd owns: udp:// and unixgram:// take
// one span per datagram, unix:// framed spans on stream connections, tcp://
// Veneur's gRPC service.
type Config struct {
	// IndicatorSpanTimerName and ObjectiveSpanTimerName are Veneur's
	// indicator_span_timer_name and objective_span_timer_name: the timers
	// an indicator span's duration is recorded in; empty for none.
	IndicatorSpanTimerName string `hcl:"indicator_span_timer_name,optional" description:"timer of indicator spans' durations, in nanoseconds, tagged service and error; empty for none"`
	ObjectiveSpanTimerName string `hcl:"objective_span_timer_name,optional" description:"timer of indicator spans' durations, in nanoseconds, tagged service, objective and error, global; empty for none"`
	// NamesUniqueRate is the share of trace spans whose name goes into the
	// set veneur.ssf.names_unique, per service: 0.01 in Veneur, where it is
	// fixed.
	NamesUniqueRate float64 `hcl:"names_unique_rate,optional" description:"share of trace spans counted in the set veneur.ssf.names_unique (0 for none)"`
	// MaxPacketSize bounds a datagram (Veneur's trace_max_length_bytes); a
	// longer one is dropped whole.
	MaxPacketSize int `hcl:"max_packet_size,optional" description:"largest datagram accepted, in bytes"`
	// MaxSpanSize bounds a span on a UNIX stream or over gRPC.
	MaxSpanSize int `hcl:"max_span_size,optional" description:"largest span accepted on a UNIX stream connection or over gRPC, in bytes"`
	// ReadBufferBytes is the datagram sockets' SO_RCVBUF.
	ReadBufferBytes int `hcl:"read_buffer_bytes,optional" description:"SO_RCVBUF of datagram sockets, in bytes"`
	// MaxConnections bounds the UNIX stream connections open at once, per
	// listener; one more is closed at once, and counted.
	MaxConnections int `hcl:"max_connections,optional" description:"UNIX stream connections open at once, per listener"`
	// IdleTimeout closes a UNIX stream connection that sends nothing for
	// this long.
	IdleTimeout string `hcl:"idle_timeout,optional" description:"close idle UNIX stream connections after this long"`
	// TLS serves the gRPC service over TLS on tcp:// listeners.
	TLS *sdk.ServerTLS `hcl:"tls,block" description:"TLS for the gRPC service on tcp:// listeners"`

	indicatorName []byte
	objectiveName []byte
	idleTimeout   time.Duration
	tlsConfig     *tls.Config
}

func defaultConfig() *Config {
	return &Config{
		NamesUniqueRate: 0.01,
		MaxPacketSize:   16384,
		MaxSpanSize:     4 << 20,
		ReadBufferBytes: 4 << 20,
		MaxConnections:  1024,
		IdleTimeout:     "5m",
	}
}

// validate checks every value and reports every problem, joined.
func (c *Config) validate() error {
	var errs []error
	for _, t := range []struct{ attr, v string }{
		{"indicator_span_timer_name", c.IndicatorSpanTimerName},
		{"objective_span_timer_name", c.ObjectiveSpanTimerName},
	} {
		if len(t.v) > maxLen {
			errs = append(errs, &sdk.AttrError{Attribute: t.attr, Summary: "Name too long",
				Detail: fmt.Sprintf("%s must be at most %d bytes, not %d.", t.attr, maxLen, len(t.v))})
		}
	}
	if math.IsNaN(c.NamesUniqueRate) || c.NamesUniqueRate < 0 || c.NamesUniqueRate > 1 {
		errs = append(errs, &sdk.AttrError{Attribute: "names_unique_rate", Summary: "Rate out of range",
			Detail: fmt.Sprintf("names_unique_rate must be between 0 and 1, not %v.", c.NamesUniqueRate)})
	}
	if c.MaxPacketSize < 512 || c.MaxPacketSize > 65535 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_packet_size", Summary: "Packet size out of range",
			Detail: fmt.Sprintf("max_packet_size must be between 512 and 65535 bytes, not %d.", c.MaxPacketSize)})
	}
	if c.MaxSpanSize < 512 || c.MaxSpanSize > 64<<20 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_span_size", Summary: "Span size out of range",
			Detail: fmt.Sprintf("max_span_size must be between 512 bytes and 64 MiB, not %d.", c.MaxSpanSize)})
	}
	if c.ReadBufferBytes < 0 || c.ReadBufferBytes > 1<<30 {
		errs = append(errs, &sdk.AttrError{Attribute: "read_buffer_bytes", Summary: "Buffer size out of range",
			Detail: fmt.Sprintf("read_buffer_bytes must be between 0 (the system default) and 1 GiB, not %d.", c.ReadBufferBytes)})
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1<<20 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_connections", Summary: "Connections out of range",
			Detail: fmt.Sprintf("max_connections must be between 1 and 1048576, not %d.", c.MaxConnections)})
	}
	if d, err := time.ParseDuration(c.IdleTimeout); err != nil || d <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "idle_timeout", Summary: "Invalid duration",
			Detail: fmt.Sprintf("%q is not a positive duration such as \"5m\".", c.IdleTimeout)})
	} else {
		c.idleTimeout = d
	}
	tc, err := c.TLS.Config()
	if err != nil {
		errs = append(errs, err)
	}
	c.tlsConfig = tc
	c.indicatorName = []byte(c.IndicatorSpanTimerName)
	c.objectiveName = []byte(c.ObjectiveSpanTimerName)
	return errors.Join(errs...)
}
