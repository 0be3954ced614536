package ssf

import (
	"testing"
)

// FuzzDecode feeds arbitrary packets to the source and to Veneur's own
// code: the source must refuse exactly the packets Veneur's
// protocol.ParseSSF refuses, with the same cause (truncated or not), and
// make of the others exactly the metrics Veneur's parser makes, but for the
// samples it refuses on purpose (wantRejected). It must never panic. The
// seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	cfg := testConfig()
	if err := cfg.validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		if len(packet) == 0 {
			return // refused before decoding, by both
		}
		compareWithVeneur(t, cfg, packet)
	})
}
