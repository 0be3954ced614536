package delivery

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a payload's body is compressed, as its protocol wants.
type Compression uint8

// Compressions.
const (
	None   Compression = iota
	Gzip               // Content-Encoding: gzip
	Zstd               // Content-Encoding: zstd
	Snappy             // snappy's block format, as Prometheus remote write sends it
)

// ParseCompression reads a compression's name: "none", "gzip", "zstd" or
// "snappy".
func ParseCompression(s string) (Compression, error) {
	for c := None; c <= Snappy; c++ {
		if c.String() == s {
			return c, nil
		}
	}
	return None, fmt.Errorf("unknown compression %q: use none, gzip, zstd or snappy", s)
}

func (c Compression) String() string {
	return [...]string{"none", "gzip", "zstd", "snappy"}[c]
}

// encoding is c's Content-Encoding ("" for none).
func (c Compression) encoding() string {
	if c == None {
		return ""
	}
	return c.String()
}

var (
	gzips = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}}
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
)

// Compress returns src compressed by c in a new slice (a copy of src for
// None): src may be reused once it returns.
func (c Compression) Compress(src []byte) []byte {
	switch c {
	case Gzip:
		var b bytes.Buffer
		b.Grow(len(src)/4 + 64)
		w := gzips.Get().(*gzip.Writer)
		w.Reset(&b)
		w.Write(src) // a bytes.Buffer does not fail
		w.Close()
		gzips.Put(w)
		return b.Bytes()
	case Zstd:
		return zstdEncoder.EncodeAll(src, make([]byte, 0, len(src)/4+64))
	case Snappy:
		return s2.EncodeSnappy(nil, src)
	}
	return bytes.Clone(src)
}
