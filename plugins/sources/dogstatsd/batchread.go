package dogstatsd

import (
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is how many datagrams one system call may read.
const batchSize = 64

// batchReader reads datagrams several at a time with recvmmsg where the
// socket allows it (UDP), one at a time otherwise (unixgram). Buffers are
// allocated once; a datagram is valid until the next read.
type batchReader struct {
	conn  net.PacketConn
	batch interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
	}
	msgs []ipv4.Message
	bufs [][]byte
}

func newBatchReader(conn net.PacketConn, size int) *batchReader {
	r := &batchReader{conn: conn}
	n := 1
	if u, ok := conn.(*net.UDPConn); ok {
		if a, ok := u.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
			r.batch = ipv4.NewPacketConn(u)
		} else {
			r.batch = ipv6BatchConn{ipv6.NewPacketConn(u)}
		}
		n = batchSize
	}
	r.msgs = make([]ipv4.Message, n)
	r.bufs = make([][]byte, n)
	for i := range r.msgs {
		r.bufs[i] = make([]byte, size)
		r.msgs[i].Buffers = [][]byte{r.bufs[i]}
	}
	return r
}

// ipv6BatchConn adapts ipv6.PacketConn, whose Message is the same type.
type ipv6BatchConn struct{ c *ipv6.PacketConn }

func (c ipv6BatchConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return c.c.ReadBatch(ms, flags)
}

// read reads one or more datagrams and returns how many.
func (r *batchReader) read() (int, error) {
	if r.batch != nil {
		return r.batch.ReadBatch(r.msgs, 0)
	}
	n, _, err := r.conn.ReadFrom(r.bufs[0])
	if err != nil {
		return 0, err
	}
	r.msgs[0].N = n
	return 1, nil
}

// datagram returns the i-th datagram of the last read.
func (r *batchReader) datagram(i int) []byte { return r.bufs[i][:r.msgs[i].N] }
