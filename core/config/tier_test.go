package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
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
	if diags.HasErrors() || !reflect.DeepEqual(*again.Forward, Forward{Address: cfg.Forward.Address, MaxBufferedIntervals: 5,
		Protocol: "veneurd", DeclRange: again.Forward.DeclRange}) || again.Receive.GRPCAddress != cfg.Receive.GRPCAddress {
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
	f(`forward { max_buffered_intervals = 3 }`, `a.hcl:1,1-8: No upstream`)
	f(`forward {
  address = "g:1"
  members = ["a:1"]
}`, `Conflicting upstreams; A forward block takes one of address, members or a discovery block, not address and members`)
	f(`forward { members = [] }`, `No members`)
	f(`forward { members = ["a:1", "b"] }`, `"b" is not a host:port address`)
	f(`forward {
  discovery "etcd" { service = "veneur" }
}`, `a.hcl:2,13-19: Unknown discovery`)
	f(`forward {
  discovery "consul" { tag = "x" }
}`, `The argument "service" is required`)
	f(`forward {
  address  = "g:1"
  protocol = "statsd"
}`, `Unknown protocol`)
	f(`receive {
  grpc_address = ":8128"
  aggregate    = false
}`, `a.hcl:1,1-8: Proxy without upstream`)
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

// TestTierMembers loads the other ways of naming the upstream, a proxy's
// receive block and the Veneur protocol, and renders them back the same.
func TestTierMembers(t *testing.T) {
	for _, src := range []string{`
forward {
  members  = ["g1:8128", "g2:8128"]
  protocol = "veneur"
}
receive {
  grpc_address = ":8128"
  aggregate    = false
}
`, `
forward {
  discovery "consul" {
    service = "veneur-global"
    tag     = "prod"
    address = "127.0.0.1:8500"
  }
}
`} {
		cfg, diags := Load(map[string][]byte{"a.hcl": []byte(src)}, testTypes{})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		again, diags := Load(map[string][]byte{"b.hcl": cfg.HCL()}, testTypes{})
		if diags.HasErrors() {
			t.Fatalf("%s\n%s", diags.Error(), cfg.HCL())
		}
		again.Forward.DeclRange, cfg.Forward.DeclRange = hcl.Range{}, hcl.Range{}
		if !reflect.DeepEqual(again.Forward, cfg.Forward) {
			t.Errorf("rendered back %+v, loaded %+v", again.Forward, cfg.Forward)
		}
		if cfg.Receive != nil && (cfg.Receive.Aggregate || again.Receive.Aggregate) {
			t.Errorf("aggregate = false lost: %+v %+v", cfg.Receive, again.Receive)
		}
	}
	cfg, _ := Load(map[string][]byte{"a.hcl": []byte("forward {\n  members = [\"g1:8128\", \"g2:8128\"]\n  protocol = \"veneur\"\n}\n")}, testTypes{})
	if !reflect.DeepEqual(cfg.Forward.Members, []string{"g1:8128", "g2:8128"}) || cfg.Forward.Protocol != "veneur" {
		t.Errorf("forward %+v", cfg.Forward)
	}
	cfg, _ = Load(map[string][]byte{"a.hcl": []byte("forward {\n  discovery \"consul\" {\n    service = \"g\"\n  }\n}\n")}, testTypes{})
	if c := cfg.Forward.Consul; c == nil || c.Service != "g" || c.Tag != "" || c.Address != "" {
		t.Errorf("consul %+v", c)
	}
}
