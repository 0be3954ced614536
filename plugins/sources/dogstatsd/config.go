package dogstatsd

import (
	"fmt"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the dogstatsd source's configuration.
type Config struct {
	// Listen lists the sockets veneurd opens and hands to this source.
	Listen []string `hcl:"listen" description:"sockets to read, e.g. udp://127.0.0.1:8126"`
	// MaxPacketSize bounds a datagram; a longer one is dropped whole.
	MaxPacketSize int `hcl:"max_packet_size,optional" description:"largest datagram accepted, in bytes"`
	// ReadBufferBytes is the datagram sockets' SO_RCVBUF: what the kernel
	// holds while the reader is busy. Bursts larger than it are dropped.
	ReadBufferBytes int `hcl:"read_buffer_bytes,optional" description:"SO_RCVBUF of datagram sockets, in bytes"`
}

func defaultConfig() *Config { return &Config{MaxPacketSize: 8192, ReadBufferBytes: 4 << 20} }

func (c *Config) validate() error {
	if len(c.Listen) == 0 {
		return &sdk.AttrError{Attribute: "listen", Summary: "No listeners", Detail: "List at least one socket, such as \"udp://127.0.0.1:8126\"."}
	}
	if c.MaxPacketSize < 512 || c.MaxPacketSize > 65535 {
		return &sdk.AttrError{Attribute: "max_packet_size", Summary: "Packet size out of range",
			Detail: fmt.Sprintf("max_packet_size must be between 512 and 65535 bytes, not %d.", c.MaxPacketSize)}
	}
	if c.ReadBufferBytes < 0 || c.ReadBufferBytes > 1<<30 {
		return &sdk.AttrError{Attribute: "read_buffer_bytes", Summary: "Buffer size out of range",
			Detail: fmt.Sprintf("read_buffer_bytes must be between 0 (the system default) and 1 GiB, not %d.", c.ReadBufferBytes)}
	}
	return nil
}
