package config

import (
	"strings"
	"testing"
)

// TestTierBlocks loads forward and receive blocks, renders them back, and
// reports a bad address and a second block at their place.
func TestTierBlocks(t *testing.T) {
	src := `
forward {
  address                = "global.internal:8128"
  max_buffered_intervals = 5
}
receive {
  grpc_address = "0.0.0.0:8128"
}
`
	cfg, diags := Load(map[string][]byte{"a.hcl": []byte(src)}, testTypes{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if cfg.Forward == nil || cfg.Forward.Address != "global.internal:8128" || cfg.Forward.MaxBufferedIntervals != 5 ||
		cfg.Receive == nil || cfg.Receive.GRPCAddress != "0.0.0.0:8128" {
		t.Fatalf("forward %+v, receive %+v", cfg.Forward, cfg.Receive)
	}
	again, diags := Load(map[string][]byte{"b.hcl": cfg.HCL()}, testTypes{})
	if diags.HasErrors() || *again.Forward != (Forward{Address: cfg.Forward.Address, MaxBufferedIntervals: 5, DeclRange: again.Forward.DeclRange}) ||
		again.Receive.GRPCAddress != cfg.Receive.GRPCAddress {
		t.Fatalf("rendered back: %s\n%s", diags.Error(), cfg.HCL())
	}

	def, _ := Load(map[string][]byte{"a.hcl": []byte(`forward { address = "g:8128" }`)}, testTypes{})
	if def.Forward.MaxBufferedIntervals != DefaultMaxBufferedIntervals || def.Receive != nil {
		t.Errorf("defaults: %+v %+v", def.Forward, def.Receive)
	}

	f := func(src, want string) {
		t.Helper()
		_, diags := Load(map[string][]byte{"a.hcl": []byte(src)}, testTypes{})
		if !strings.Contains(diags.Error(), want) {
			t.Errorf("%s: diagnostics %q lack %q", src, diags.Error(), want)
		}
	}
	f(`forward { address = "global" }`, `a.hcl:1,21-29: Invalid address`)
	f(`forward { address = ":8128" }`, `Invalid address`)
	f(`receive { grpc_address = "0.0.0.0:http" }`, `Invalid address`)
	f(`forward {
  address = "g:1"
  max_buffered_intervals = 0
}`, `Buffer out of range`)
	f("forward { address = \"g:1\" }\nforward { address = \"g:2\" }", `Duplicate forward block`)
	f(`forward { members = ["a:1"] }`, `The argument "address" is required`)
	f(`forward {
  address = "g:1"
  tls { ca_file = "/nonexistent/ca.pem" }
}`, `a.hcl:3,3-6: Invalid TLS settings`)
	f(`receive {
  grpc_address = ":8128"
  tls { client_ca_file = "/x" }
}`, `The argument "cert_file" is required`)
	f(`receive {
  grpc_address = ":8128"
  tls {
    cert_file = "/nonexistent/cert.pem"
    key_file  = "/nonexistent/key.pem"
  }
}`, `Invalid TLS settings`)
}
