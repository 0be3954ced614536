package config

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/veneurd/veneurd/core/forward"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Forward is the forward block: the instance is a local, forwarding the
// fleet's share of its state (docs/global-tier.md) to its upstream.
type Forward struct {
	// Address is the upstream's receive grpc_address, host:port.
	Address string
	// TLS, when set, secures the connection (client certificate included,
	// for a receiver that requires one).
	TLS *delivery.TLS
	// MaxBufferedIntervals is how many intervals are held while the
	// upstream is down.
	MaxBufferedIntervals int
	DeclRange            hcl.Range
}

// Receive is the receive block: the instance takes state forwarded to it.
type Receive struct {
	// GRPCAddress is where it listens, host:port.
	GRPCAddress string
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
	{Name: "address", Required: true}, {Name: "max_buffered_intervals"},
}, Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}}}

var receiveSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "grpc_address", Required: true},
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
	f := &Forward{MaxBufferedIntervals: DefaultMaxBufferedIntervals, DeclRange: block.DefRange}
	if attr := content.Attributes["address"]; attr != nil {
		diags = l.str(attr, &f.Address, diags)
		diags = append(diags, hostPort(attr, f.Address, false)...)
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
	r := &Receive{DeclRange: block.DefRange}
	if attr := content.Attributes["grpc_address"]; attr != nil {
		diags = l.str(attr, &r.GRPCAddress, diags)
		diags = append(diags, hostPort(attr, r.GRPCAddress, true)...)
	}
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
		b.SetAttributeValue("address", cty.StringVal(c.Forward.Address))
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
