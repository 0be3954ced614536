package sdk

import (
	"os"
	"testing"

	"github.com/veneurd/veneurd/internal/testpki"
)

// TestCertReloaderKeepsTheLastGoodPair: files caught half written leave the
// last good pair served, and the next good pair is taken at the next look.
// Each look is forced by forgetting when the files were last looked at.
func TestCertReloaderKeepsTheLastGoodPair(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "reloader test")
	cert, key := testpki.WriteCert(t, dir, "server", ca.Issue(t, "first"))
	r := &certReloader{certFile: cert, keyFile: key}
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		r.mu.Lock()
		r.looked = r.looked.AddDate(-1, 0, 0) // a look is due
		r.mu.Unlock()
		c, err := r.get(nil)
		if err != nil || c == nil {
			t.Fatalf("get: %v, %v", c, err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	if err := os.WriteFile(cert, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "first" {
		t.Errorf("served %q from files that do not load, want the last good one", got)
	}
	testpki.WriteCert(t, dir, "server", ca.Issue(t, "second"))
	if got := served(); got != "second" {
		t.Errorf("served %q once the files load again, want second", got)
	}
}
