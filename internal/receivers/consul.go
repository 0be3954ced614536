package receivers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// ConsulAgent is a running Consul agent in development mode (an in-memory
// server of one), on ports of its own: what the tests of discovery and of
// the global tier register members in.
type ConsulAgent struct {
	// HTTP is the agent's HTTP API address, "127.0.0.1:PORT", as
	// consul/api's Config.Address takes it.
	HTTP string

	proc *process
}

// Consul starts `consul agent -dev` bound to 127.0.0.1, every port its own
// (DNS and gRPC off), and returns once its HTTP API has a leader. The agent
// is a consul on $PATH, or the one scripts/test-deps.sh builds into the test
// cache (Consul v1.20.6 from its Go module); the test is skipped without
// either. It is stopped when the test ends.
//
// Its ports, from a generated config file:
//
//	ports { http = P, dns = -1, grpc = -1, grpc_tls = -1, server = S, serf_lan = L, serf_wan = W }
func Consul(t testing.TB) *ConsulAgent {
	t.Helper()
	bin, err := exec.LookPath("consul")
	if err != nil {
		bin = cachedBinary(t, "consul", "Consul v1.20.6")
	}
	dir := t.TempDir()
	http := daemontest.FreePort(t, "tcp")
	conf := fmt.Sprintf(`ports {
  http     = %d
  dns      = -1
  grpc     = -1
  grpc_tls = -1
  server   = %d
  serf_lan = %d
  serf_wan = %d
}
`, port(http), port(freeTCPUDP(t)), port(freeTCPUDP(t)), port(freeTCPUDP(t)))
	path := filepath.Join(dir, "consul.hcl")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &ConsulAgent{HTTP: http}
	c.proc = startProcess(t, "consul", dir, nil, func() error {
		b, err := httpGet("http://" + http + "/v1/status/leader")
		if err != nil {
			return err
		}
		if strings.Trim(strings.TrimSpace(string(b)), `"`) == "" {
			return fmt.Errorf("no leader yet")
		}
		return nil
	},
		bin, "agent", "-dev", "-bind=127.0.0.1", "-client=127.0.0.1", "-config-file="+path, "-log-level=warn",
	)
	return c
}

// Stop stops the agent; a development agent forgets everything.
func (c *ConsulAgent) Stop() { c.proc.Stop() }

// Output returns what the agent logged.
func (c *ConsulAgent) Output() string { return c.proc.Output() }
