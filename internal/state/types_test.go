package state_test

import (
	"testing"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// TestTypesMatchSDK keeps the type numbers of series keys equal to sdk's.
func TestTypesMatchSDK(t *testing.T) {
	for _, c := range []struct {
		ours uint8
		sdk  sdk.MetricType
	}{{state.Counter, sdk.Counter}, {state.Gauge, sdk.Gauge}, {state.Histogram, sdk.Histogram}, {state.Timer, sdk.Timer}, {state.Set, sdk.Set}} {
		if c.ours != uint8(c.sdk) {
			t.Errorf("%s is %d here and %d in sdk", c.sdk, c.ours, c.sdk)
		}
	}
}

// TestScopesMatchSDK keeps the scope numbers equal to sdk's.
func TestScopesMatchSDK(t *testing.T) {
	for _, c := range []struct {
		ours uint8
		sdk  sdk.Scope
	}{{state.ScopeDefault, sdk.ScopeDefault}, {state.ScopeLocal, sdk.ScopeLocal}, {state.ScopeGlobal, sdk.ScopeGlobal}} {
		if c.ours != uint8(c.sdk) {
			t.Errorf("scope %d here is %d in sdk", c.ours, c.sdk)
		}
	}
}
