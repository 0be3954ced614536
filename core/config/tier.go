package config

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Forward is the forward block: the instance is a local, forwarding the
// fleet's share of its state (docs/global-tier.md) to its upstream.
type Forward struct {
	// Address is the upstream's receive grpc_address, host:port.
	Address string
	// MaxBufferedIntervals is how many intervals are held while the
	// upstream is down.
	MaxBufferedIntervals int
	DeclRange            hcl.Range
}

// Receive is the receive block: the instance takes state forwarded to it.
type Receive struct {
	// GRPCAddress is where it listens, host:port.
	GRPCAddress string
	DeclRange   hcl.Range
}

// DefaultMaxBufferedIntervals is forward's max_buffered_intervals when
// left out.
const DefaultMaxBufferedIntervals = 10

var forwardSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "address", Required: true}, {Name: "max_buffered_intervals"},
}}

var receiveSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "grpc_address", Required: true},
}}

// forward decodes a forward block.
func (l *loader) forward(block *hcl.Block) (*Forward, hcl.Diagnostics) {
	content, diags := block.Body.Content(forwardSchema)
	f := &Forward{MaxBufferedIntervals: DefaultMaxBufferedIntervals, DeclRange: block.DefRange}
	if attr := content.Attributes["address"]; attr != nil {
		diags = l.str(attr, &f.Address, diags)
		diags = append(diags, hostPort(attr, f.Address, false)...)
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
	}
	if c.Receive != nil {
		root.AppendNewline()
		b := root.AppendNewBlock("receive", nil).Body()
		b.SetAttributeValue("grpc_address", cty.StringVal(c.Receive.GRPCAddress))
	}
}
