package receivers

import (
	"os"
	"path/filepath"
	"testing"
)

// Veneur is a running Veneur v14.2.0, built from its module by
// scripts/test-deps.sh: the daemon veneurd interoperates with (its forward
// protocol, SSF) and is compared against.
type Veneur struct{ proc *process }

// VeneurBinary returns the path of the cached Veneur build, or skips the
// test naming what is missing.
func VeneurBinary(t testing.TB) string {
	t.Helper()
	return cachedBinary(t, "veneur", "Veneur v14.2.0")
}

// StartVeneur runs Veneur with the YAML configuration config, whose
// http_address is httpAddr, until the test ends, and waits until its health
// check answers. Its configuration and output are logged if the test fails.
func StartVeneur(t testing.TB, config, httpAddr string) *Veneur {
	t.Helper()
	bin := VeneurBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "veneur.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Veneur's configuration:\n%s", config)
		}
	})
	p := startProcess(t, "veneur", dir, nil, func() error {
		_, err := httpGet("http://" + httpAddr + "/healthcheck")
		return err
	}, bin, "-f", path)
	return &Veneur{proc: p}
}

// Pid is the process id of the running Veneur.
func (v *Veneur) Pid() int {
	v.proc.mu.Lock()
	defer v.proc.mu.Unlock()
	return v.proc.run.Process.Pid
}

// Output returns what Veneur printed.
func (v *Veneur) Output() string { return v.proc.Output() }

// VeneurEmitBinary returns the path of the cached veneur-emit v14.2.0,
// Veneur's own client, or skips the test naming what is missing.
func VeneurEmitBinary(t testing.TB) string {
	t.Helper()
	return cachedBinary(t, "veneur-emit", "veneur-emit v14.2.0")
}
