// Command counting is a test source that counts with sdk.Stats: each
// datagram it reads is a counter's name, added 1, and counted in
// veneur.counting.datagrams_total.
package main

import (
	"context"
	"net"
	"sync"

	"github.com/veneurd/veneurd/sdk"
)

type config struct{}

type source struct{ datagrams *sdk.Count }

func (s *source) Config() any { return &config{} }

func (s *source) Configure(_ context.Context, env sdk.Env, _ any) error {
	s.datagrams = env.Stats.Counter("veneur.counting.datagrams_total", "protocol:udp")
	return nil
}

func (s *source) Run(ctx context.Context, listeners []sdk.Listener, out sdk.Output) error {
	var readers sync.WaitGroup
	defer readers.Wait() // nothing is written once Run returns
	for _, l := range listeners {
		c, err := net.FilePacketConn(l.File)
		if err != nil {
			return err
		}
		context.AfterFunc(ctx, func() { c.Close() })
		readers.Go(func() { s.read(c, out.Writer("udp")) })
	}
	<-ctx.Done()
	return nil
}

func (s *source) read(c net.PacketConn, w sdk.Writer) {
	buf := make([]byte, 1024)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		w.Metric(sdk.Counter, sdk.ScopeDefault, buf[:n], nil, 1, 1)
		w.Flush()
		s.datagrams.Add(1)
	}
}

func main() { sdk.Serve(&source{}) }
