package dogstatsd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the dogstatsd source's configuration. The sockets it reads are
// not in it: they are the block's listen attribute (and readers, for UDP),
// which veneurd owns, opens and hands to Run.
type Config struct {
	// MaxPacketSize bounds a datagram; a longer one is dropped whole.
	MaxPacketSize int `hcl:"max_packet_size,optional" description:"largest datagram accepted, in bytes"`
	// ReadBufferBytes is the datagram sockets' SO_RCVBUF: what the kernel
	// holds while the reader is busy. Bursts larger than it are dropped.
	ReadBufferBytes int `hcl:"read_buffer_bytes,optional" description:"SO_RCVBUF of datagram sockets, in bytes"`
	// MaxLineLength bounds a line on a stream connection; a longer one is
	// dropped whole. Each connection holds a buffer of this size.
	MaxLineLength int `hcl:"max_line_length,optional" description:"longest line accepted on a TCP or UNIX stream connection, in bytes"`
	// MaxConnections bounds the stream connections open at once, per
	// listener: with MaxLineLength, it bounds the memory they hold. A
	// connection past it is closed at once, and counted.
	MaxConnections int `hcl:"max_connections,optional" description:"stream connections open at once, per listener"`
	// IdleTimeout closes a stream connection that sends nothing for this
	// long.
	IdleTimeout string `hcl:"idle_timeout,optional" description:"close idle TCP and UNIX stream connections after this long"`
	// TLS turns tcp:// listeners into TLS listeners.
	TLS *sdk.ServerTLS `hcl:"tls,block" description:"TLS for tcp:// listeners"`

	idleTimeout time.Duration
	tlsConfig   *tls.Config
}

func defaultConfig() *Config {
	return &Config{MaxPacketSize: 8192, MaxLineLength: 64 << 10, MaxConnections: 1024, ReadBufferBytes: 4 << 20, IdleTimeout: "5m"}
}

// validate checks every value and reports every problem, joined.
func (c *Config) validate() error {
	var errs []error
	if c.MaxPacketSize < 512 || c.MaxPacketSize > 65535 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_packet_size", Summary: "Packet size out of range",
			Detail: fmt.Sprintf("max_packet_size must be between 512 and 65535 bytes, not %d.", c.MaxPacketSize)})
	}
	if c.MaxLineLength < 512 || c.MaxLineLength > 16<<20 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_line_length", Summary: "Line length out of range",
			Detail: fmt.Sprintf("max_line_length must be between 512 bytes and 16 MiB, not %d.", c.MaxLineLength)})
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1<<20 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_connections", Summary: "Connections out of range",
			Detail: fmt.Sprintf("max_connections must be between 1 and 1048576, not %d.", c.MaxConnections)})
	}
	if c.ReadBufferBytes < 0 || c.ReadBufferBytes > 1<<30 {
		errs = append(errs, &sdk.AttrError{Attribute: "read_buffer_bytes", Summary: "Buffer size out of range",
			Detail: fmt.Sprintf("read_buffer_bytes must be between 0 (the system default) and 1 GiB, not %d.", c.ReadBufferBytes)})
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
	return errors.Join(errs...)
}
