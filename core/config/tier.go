package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/veneurd/veneurd/core/forward"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Forward is the forward block: the instance is a local (or a proxy),
// forwarding the fleet's share of its state (docs/global-tier.md) to the
// tier above: one address, a static list of members, or the passing
// instances of a Consul service, each series to the member that hashing its
// key chooses.
type Forward struct {
	// Address is the upstream's receive grpc_address, host:port.
	Address string
	// Members are the upstream tier's addresses.
	Members []string
	// Consul, when set, finds the members in Consul.
	Consul *ConsulDiscovery
	// Protocol is "veneurd" (the default) or "veneur", for a Veneur global.
	Protocol string
	// TLS, when set, secures the connection (client certificate included,
	// for a receiver that requires one).
	TLS *delivery.TLS
	// MaxBufferedIntervals is how many intervals are held while the
	// upstream is down.
	MaxBufferedIntervals int
	DeclRange            hcl.Range
}

// ConsulDiscovery is a forward block's discovery "consul" block.
type ConsulDiscovery struct {
	// Service is the Consul service whose passing instances are the
	// members; Tag, when set, keeps those carrying it.
	Service, Tag string
	// Address is Consul's HTTP API; empty: CONSUL_HTTP_ADDR, then
	// 127.0.0.1:8500.
	Address string
}

// Receive is the receive block: the instance takes state forwarded to it,
// in veneurd's protocol or Veneur's.
type Receive struct {
	// GRPCAddress is where it listens, host:port.
	GRPCAddress string
	// Aggregate false makes a proxy: what it receives is routed onward by
	// its forward block, not merged.
	Aggregate bool
	// TLS, when set, serves TLS; with a client CA, only clients with a
	// certificate it signed are served.
	TLS       *ReceiveTLS
	DeclRange hcl.Range
}

// ReceiveTLS is a receive block's tls block.
type ReceiveTLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// DefaultMaxBufferedIntervals is forward's max_buffered_intervals when
// left out.
const DefaultMaxBufferedIntervals = 10

var forwardSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "address"}, {Name: "members"}, {Name: "protocol"}, {Name: "max_buffered_intervals"},
}, Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}, {Type: "discovery", LabelNames: []string{"kind"}}}}

var consulSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "service", Required: true}, {Name: "tag"}, {Name: "address"},
}}

var receiveSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "grpc_address", Required: true}, {Name: "aggregate"},
}, Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}}}

var forwardTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "ca_file"}, {Name: "cert_file"}, {Name: "key_file"}, {Name: "server_name"}, {Name: "insecure_skip_verify"},
}}

var receiveTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "cert_file", Required: true}, {Name: "key_file", Required: true}, {Name: "client_ca_file"},
}}

// tlsBlock returns the single tls block of content, reporting others.
func tlsBlock(content *hcl.BodyContent) (*hcl.Block, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var first *hcl.Block
	for _, b := range content.Blocks {
		if b.Type != "tls" {
			continue
		}
		if first != nil {
			diags = append(diags, duplicate(b, first, "tls block", "Only one tls block is allowed"))
			continue
		}
		first = b
	}
	return first, diags
}

// forward decodes a forward block.
func (l *loader) forward(block *hcl.Block) (*Forward, hcl.Diagnostics) {
	content, diags := block.Body.Content(forwardSchema)
	f := &Forward{MaxBufferedIntervals: DefaultMaxBufferedIntervals, Protocol: forward.ProtocolVeneurd, DeclRange: block.DefRange}
	var upstreams []string // the ways of naming the upstream given
	if attr := content.Attributes["address"]; attr != nil {
		upstreams = append(upstreams, "address")
		diags = l.str(attr, &f.Address, diags)
		diags = append(diags, hostPort(attr, f.Address, false)...)
	}
	if attr := content.Attributes["members"]; attr != nil {
		upstreams = append(upstreams, "members")
		diags = l.decode(attr, cty.List(cty.String), &f.Members, diags)
		for _, m := range f.Members {
			diags = append(diags, hostPort(attr, m, false)...)
		}
		if len(f.Members) == 0 && !diags.HasErrors() {
			diags = append(diags, attrError(attr, "No members", "members must list at least one host:port address."))
		}
	}
	for _, b := range content.Blocks {
		if b.Type != "discovery" {
			continue
		}
		upstreams = append(upstreams, "discovery")
		if b.Labels[0] != "consul" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown discovery",
				Detail: fmt.Sprintf("Discovery %q is not known; \"consul\" is.", b.Labels[0]), Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		dc, d := b.Body.Content(consulSchema)
		diags = append(diags, d...)
		f.Consul = &ConsulDiscovery{}
		diags = l.str(dc.Attributes["service"], &f.Consul.Service, diags)
		diags = l.str(dc.Attributes["tag"], &f.Consul.Tag, diags)
		if attr := dc.Attributes["address"]; attr != nil {
			diags = l.str(attr, &f.Consul.Address, diags)
			diags = append(diags, hostPort(attr, f.Consul.Address, false)...)
		}
	}
	switch {
	case len(upstreams) == 0:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No upstream",
			Detail: `A forward block needs one of address, members or a discovery "consul" block.`, Subject: block.DefRange.Ptr()})
	case len(upstreams) > 1:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Conflicting upstreams",
			Detail:  fmt.Sprintf("A forward block takes one of address, members or a discovery block, not %s.", strings.Join(upstreams, " and ")),
			Subject: block.DefRange.Ptr()})
	}
	if attr := content.Attributes["protocol"]; attr != nil {
		diags = l.str(attr, &f.Protocol, diags)
		if f.Protocol != forward.ProtocolVeneurd && f.Protocol != forward.ProtocolVeneur {
			diags = append(diags, attrError(attr, "Unknown protocol",
				fmt.Sprintf("protocol is %q (the default) or %q (to a Veneur global), not %q.", forward.ProtocolVeneurd, forward.ProtocolVeneur, f.Protocol)))
		}
	}
	if b, d := tlsBlock(content); b != nil || d != nil {
		diags = append(diags, d...)
		if b != nil {
			tc, d := b.Body.Content(forwardTLSSchema)
			diags = append(diags, d...)
			f.TLS = &delivery.TLS{}
			a := tc.Attributes
			diags = l.str(a["ca_file"], &f.TLS.CAFile, diags)
			diags = l.str(a["cert_file"], &f.TLS.CertFile, diags)
			diags = l.str(a["key_file"], &f.TLS.KeyFile, diags)
			diags = l.str(a["server_name"], &f.TLS.ServerName, diags)
			diags = l.decode(a["insecure_skip_verify"], cty.Bool, &f.TLS.InsecureSkipVerify, diags)
			if !diags.HasErrors() {
				if _, err := f.TLS.Config(); err != nil {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid TLS settings",
						Detail: err.Error(), Subject: b.DefRange.Ptr()})
				}
			}
		}
	}
	if attr := content.Attributes["max_buffered_intervals"]; attr != nil {
		diags = l.decode(attr, cty.Number, &f.MaxBufferedIntervals, diags)
		if f.MaxBufferedIntervals < 1 || f.MaxBufferedIntervals > 1000 {
			diags = append(diags, attrError(attr, "Buffer out of range",
				fmt.Sprintf("max_buffered_intervals must be from 1 to 1000, not %d; %d is the default.", f.MaxBufferedIntervals, DefaultMaxBufferedIntervals)))
		}
	}
	return f, diags
}

// receive decodes a receive block.
func (l *loader) receive(block *hcl.Block) (*Receive, hcl.Diagnostics) {
	content, diags := block.Body.Content(receiveSchema)
	r := &Receive{Aggregate: true, DeclRange: block.DefRange}
	if attr := content.Attributes["grpc_address"]; attr != nil {
		diags = l.str(attr, &r.GRPCAddress, diags)
		diags = append(diags, hostPort(attr, r.GRPCAddress, true)...)
	}
	diags = l.decode(content.Attributes["aggregate"], cty.Bool, &r.Aggregate, diags)
	if b, d := tlsBlock(content); b != nil || d != nil {
		diags = append(diags, d...)
		if b != nil {
			tc, d := b.Body.Content(receiveTLSSchema)
			diags = append(diags, d...)
			r.TLS = &ReceiveTLS{}
			a := tc.Attributes
			diags = l.str(a["cert_file"], &r.TLS.CertFile, diags)
			diags = l.str(a["key_file"], &r.TLS.KeyFile, diags)
			diags = l.str(a["client_ca_file"], &r.TLS.ClientCAFile, diags)
			if !diags.HasErrors() {
				if _, err := forward.ServerTLS(r.TLS.CertFile, r.TLS.KeyFile, r.TLS.ClientCAFile); err != nil {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid TLS settings",
						Detail: err.Error() + ".", Subject: b.DefRange.Ptr()})
				}
			}
		}
	}
	return r, diags
}

// hostPort checks that attr's value v is host:port, the host optional when
// listening.
func hostPort(attr *hcl.Attribute, v string, listening bool) hcl.Diagnostics {
	host, port, err := net.SplitHostPort(v)
	n, perr := strconv.Atoi(port)
	switch {
	case err != nil || perr != nil || n < 0 || n > 65535 || (!listening && (host == "" || n == 0)):
		example := "global.internal:8128"
		if listening {
			example = "0.0.0.0:8128"
		}
		return hcl.Diagnostics{attrError(attr, "Invalid address",
			fmt.Sprintf("%q is not a host:port address such as %q.", v, example))}
	}
	return nil
}

// writeTier renders the forward and receive blocks.
func (c *Config) writeTier(root *hclwrite.Body) {
	if c.Forward != nil {
		root.AppendNewline()
		b := root.AppendNewBlock("forward", nil).Body()
		fw := c.Forward
		setIf(b, "address", fw.Address)
		if len(fw.Members) > 0 {
			vals := make([]cty.Value, len(fw.Members))
			for i, m := range fw.Members {
				vals[i] = cty.StringVal(m)
			}
			b.SetAttributeValue("members", cty.ListVal(vals))
		}
		if fw.Protocol != forward.ProtocolVeneurd {
			b.SetAttributeValue("protocol", cty.StringVal(fw.Protocol))
		}
		if d := fw.Consul; d != nil {
			db := b.AppendNewBlock("discovery", []string{"consul"}).Body()
			db.SetAttributeValue("service", cty.StringVal(d.Service))
			setIf(db, "tag", d.Tag)
			setIf(db, "address", d.Address)
		}
		b.SetAttributeValue("max_buffered_intervals", cty.NumberIntVal(int64(c.Forward.MaxBufferedIntervals)))
		if t := c.Forward.TLS; t != nil {
			tb := b.AppendNewBlock("tls", nil).Body()
			setIf(tb, "ca_file", t.CAFile)
			setIf(tb, "cert_file", t.CertFile)
			setIf(tb, "key_file", t.KeyFile)
			setIf(tb, "server_name", t.ServerName)
			if t.InsecureSkipVerify {
				tb.SetAttributeValue("insecure_skip_verify", cty.True)
			}
		}
	}
	if c.Receive != nil {
		root.AppendNewline()
		b := root.AppendNewBlock("receive", nil).Body()
		b.SetAttributeValue("grpc_address", cty.StringVal(c.Receive.GRPCAddress))
		if !c.Receive.Aggregate {
			b.SetAttributeValue("aggregate", cty.False)
		}
		if t := c.Receive.TLS; t != nil {
			tb := b.AppendNewBlock("tls", nil).Body()
			setIf(tb, "cert_file", t.CertFile)
			setIf(tb, "key_file", t.KeyFile)
			setIf(tb, "client_ca_file", t.ClientCAFile)
		}
	}
}

// setIf sets attribute name to v unless v is empty.
func setIf(b *hclwrite.Body, name, v string) {
	if v != "" {
		b.SetAttributeValue(name, cty.StringVal(v))
	}
}
