package discovery

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/veneurd/veneurd/internal/receivers"
)

// member is a stand-in for a global: a listener Consul's TCP check dials.
type member struct {
	addr string
	l    net.Listener
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

// waitMembers waits until m's ring is exactly want.
func waitMembers(t *testing.T, m Members, want []string, timeout time.Duration) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.After(timeout)
	for {
		ring, changed := m.Ring()
		if slices.Equal(ring.Members(), want) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("members %v after %s, want %v", ring.Members(), timeout, want)
		}
	}
}

// TestConsulMembership registers three instances of a service, each with a
// TCP health check, in a real Consul agent, and checks that the ring is
// exactly the passing ones as they change: one whose listener closes turns
// critical and leaves, one that deregisters leaves, and the first comes
// back when its listener does. Instances of another tag are never members.
func TestConsulMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Consul")
	}
	agent := receivers.Consul(t)
	client, err := consul.NewClient(&consul.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	var ms []member
	for i := range 4 {
		l := listen(t, "127.0.0.1:0")
		defer l.Close()
		m := member{addr: l.Addr().String(), l: l}
		ms = append(ms, m)
		host, p, _ := net.SplitHostPort(m.addr)
		var port int
		fmt.Sscan(p, &port)
		tag := "global"
		if i == 3 {
			tag = "canary"
		}
		if err := client.Agent().ServiceRegister(&consul.AgentServiceRegistration{
			ID: fmt.Sprintf("veneurd-%d", i), Name: "veneurd", Tags: []string{tag}, Address: host, Port: port,
			Check: &consul.AgentServiceCheck{TCP: m.addr, Interval: "1s", Timeout: "1s"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewConsul(ConsulConfig{Address: agent.HTTP, Service: "veneurd", Tag: "global", Wait: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	const refresh = 10 * time.Second // a check's interval and a blocking query's wake, with room
	waitMembers(t, c, []string{ms[0].addr, ms[1].addr, ms[2].addr}, refresh)

	ms[0].l.Close() // its check fails: critical
	waitMembers(t, c, []string{ms[1].addr, ms[2].addr}, refresh)

	if err := client.Agent().ServiceDeregister("veneurd-1"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, c, []string{ms[2].addr}, refresh)

	ms[0].l = listen(t, ms[0].addr) // back on its port: passing again
	defer ms[0].l.Close()
	waitMembers(t, c, []string{ms[0].addr, ms[2].addr}, refresh)
}

// TestStatic checks that a static membership is its list, as a set.
func TestStatic(t *testing.T) {
	r, changed := NewStatic([]string{"b:1", "a:1", "a:1"}).Ring()
	if !slices.Equal(r.Members(), []string{"a:1", "b:1"}) || changed != nil {
		t.Fatalf("%v", r.Members())
	}
}
