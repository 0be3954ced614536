package graphite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Version is the sink's version, shown by `veneurd plugins`.
const Version = "1.0.0"

// Config is the graphite sink's block.
type Config struct {
	Address    string `hcl:"address" description:"Carbon's plaintext receiver, host:port, e.g. \"carbon:2003\""`
	Prefix     string `hcl:"prefix,optional" description:"put before every name, e.g. \"veneur.\""`
	HostTag    bool   `hcl:"host_tag,optional" description:"write the point's hostname as the tag host (default true)"`
	MaxPerBody int    `hcl:"max_points_per_write,optional" description:"most lines in one write (default 10000)"`
	delivery.Options
}

// Sink writes points to Carbon in its plaintext protocol, tags included.
type Sink struct {
	env      sdk.Env
	cfg      Config
	settings delivery.Settings

	delivery.Running // guards the encoder: one flush at a time
	enc              Encoder
}

// New returns a graphite sink.
func New() *Sink { return &Sink{} }

// Version reports the sink's version.
func (s *Sink) Version() string { return Version }

// Config returns the defaults.
func (s *Sink) Config() any {
	return &Config{HostTag: true, MaxPerBody: 10000, Options: delivery.Options{MaxInFlight: 1}}
}

// Configure checks cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	settings, err := c.Options.Check()
	errs := []error{err}
	if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || port == "" {
		errs = append(errs, &sdk.AttrError{Attribute: "address", Summary: "Invalid address",
			Detail: fmt.Sprintf("address is Carbon's host:port, such as \"carbon:2003\", not %q.", c.Address)})
	}
	if c.MaxPerBody <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_points_per_write", Summary: "Invalid write size",
			Detail: fmt.Sprintf("max_points_per_write must be positive, not %d.", c.MaxPerBody)})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.env, s.cfg, s.settings = env, c, settings
	s.enc.Prefix, s.enc.NoHostTag = c.Prefix, !c.HostTag
	return nil
}

// Start starts delivering. The connection is made by the first write.
func (s *Sink) Start(context.Context) error {
	c := &conn{addr: s.cfg.Address, timeout: s.settings.Timeout}
	s.Begin(c, delivery.QueueConfig{Settings: s.settings, Stats: s.env.Stats, Log: s.env.Logger}, c.close)
	return nil
}

// Flush encodes f's points and queues their writes; it returns once they are
// queued, not written. Plaintext has no events: they are left out.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	return s.Do(func(q *delivery.Queue) {
		delivery.Encode(q, nil, &s.enc, f.Points, delivery.Limits{Bytes: maxWriteBytes, Items: s.cfg.MaxPerBody},
			(*Encoder).Point)
	})
}

// maxWriteBytes bounds one write.
const maxWriteBytes = 1 << 20

// Stop delivers what is buffered, within ctx, and closes the connection.
func (s *Sink) Stop(ctx context.Context) error {
	s.End(ctx)
	return nil
}

// conn is the delivery.Transport of plaintext: one TCP connection to
// Carbon, made again whenever it breaks.
type conn struct {
	addr    string
	timeout time.Duration

	mu sync.Mutex // one write at a time: lines must not interleave
	c  net.Conn
}

// Send writes p's lines. Plaintext has no acknowledgment: before writing,
// Send looks whether Carbon closed the connection (it never sends anything,
// so anything readable is its end), so that a receiver that went away is
// noticed before a write into the void rather than after. A failed write is
// retried whole on a new connection; lines that reached Carbon before the
// failure then arrive twice, which Carbon's last-write-wins per timestamp
// makes harmless.
func (t *conn) Send(ctx context.Context, p *delivery.Payload) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil && closedByPeer(t.c) {
		t.c.Close()
		t.c = nil
	}
	if t.c == nil {
		d := net.Dialer{Timeout: t.timeout, KeepAlive: 30 * time.Second}
		c, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return delivery.Retry(err, 0)
		}
		t.c = c
	}
	t.c.SetWriteDeadline(time.Now().Add(t.timeout))
	if _, err := t.c.Write(p.Body); err != nil {
		t.c.Close()
		t.c = nil
		return delivery.Retry(err, 0)
	}
	return nil
}

// closedByPeer reports whether c's other end has closed it, without
// waiting.
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now())
	var b [1]byte
	_, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func (t *conn) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil {
		t.c.Close()
		t.c = nil
	}
}
