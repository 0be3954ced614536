// Package discovery finds the members of the tier an instance forwards to:
// a static list, or the instances of a service that Consul says are
// passing their health checks. A member is an address, host:port; the
// members make a consistenthash.Ring, which spreads series over them.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	consistenthash "github.com/veneurd/veneurd/plugins/routers/consistent_hash"
)

// Members is what a forwarder asks of a membership: the ring of the
// members now, and a channel closed when it changes.
type Members interface {
	Ring() (*consistenthash.Ring, <-chan struct{})
}

// Static is a fixed membership.
type Static struct{ ring *consistenthash.Ring }

// NewStatic returns the membership of members.
func NewStatic(members []string) *Static { return &Static{ring: consistenthash.New(members)} }

// Ring returns the ring, and a channel that never closes.
func (s *Static) Ring() (*consistenthash.Ring, <-chan struct{}) { return s.ring, nil }

// ConsulConfig says which Consul service's instances are the members.
type ConsulConfig struct {
	// Address is Consul's HTTP API, host:port; empty: CONSUL_HTTP_ADDR,
	// then consul/api's default (127.0.0.1:8500).
	Address string
	Service string
	// Tag, when set, keeps only the instances that carry it.
	Tag string
	// Wait bounds each blocking query (default 5 minutes, as Consul's
	// own); a change is seen as soon as Consul has it.
	Wait time.Duration
}

// Consul is the membership of a Consul service: exactly its instances
// whose every health check passes. It follows changes with blocking
// queries on the health endpoint, so that a member that turns critical or
// deregisters leaves the ring as soon as Consul knows it. When Consul
// cannot be reached the last membership stands. Safe for concurrent use.
type Consul struct {
	cfg    ConsulConfig
	client *consul.Client
	log    hclog.Logger

	mu      sync.Mutex
	ring    *consistenthash.Ring
	changed chan struct{}
	ready   chan struct{} // closed once the first answer came
}

// NewConsul returns the membership cfg describes; Run follows it.
func NewConsul(cfg ConsulConfig, log hclog.Logger) (*Consul, error) {
	if cfg.Service == "" {
		return nil, errors.New("consul discovery needs a service name")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 5 * time.Minute
	}
	cc := consul.DefaultConfig() // reads CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN
	if cfg.Address != "" {
		cc.Address = cfg.Address
	}
	client, err := consul.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Consul{cfg: cfg, client: client, log: log, ring: consistenthash.New(nil),
		changed: make(chan struct{}), ready: make(chan struct{})}, nil
}

// Ring returns the ring of the members now, and a channel closed when they
// change.
func (c *Consul) Ring() (*consistenthash.Ring, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring, c.changed
}

// Ready is closed once Consul first answered.
func (c *Consul) Ready() <-chan struct{} { return c.ready }

// Run follows the membership until ctx ends.
func (c *Consul) Run(ctx context.Context) {
	var index uint64
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		q := (&consul.QueryOptions{WaitIndex: index, WaitTime: c.cfg.Wait, AllowStale: false}).WithContext(ctx)
		entries, meta, err := c.client.Health().Service(c.cfg.Service, c.cfg.Tag, true, q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("consul unreachable: keeping the last members", "service", c.cfg.Service, "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 10*time.Second)
			index = 0
			continue
		}
		backoff = 100 * time.Millisecond
		// A blocking query's index may go backwards (Consul's documented
		// reset rule); start again from zero then.
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		c.set(members(entries))
		if first {
			first = false
			close(c.ready)
		}
	}
}

// members are the addresses of entries: the service's address, or its
// node's when the service registered none.
func members(entries []*consul.ServiceEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		host := e.Service.Address
		if host == "" {
			host = e.Node.Address
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(e.Service.Port)))
	}
	return out
}

func (c *Consul) set(m []string) {
	ring := consistenthash.New(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ring.Equal(c.ring) {
		return
	}
	c.log.Info("members changed", "service", c.cfg.Service, "members", ring.Members(), "was", c.ring.Members())
	c.ring = ring
	close(c.changed)
	c.changed = make(chan struct{})
}
