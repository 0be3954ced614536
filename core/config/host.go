package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/veneurd/veneurd/sdk"
)

// Attributes of plugin blocks that veneurd owns and acts on itself. They
// are declared here and nowhere else: the loader decodes and checks them
// into PluginBlock's typed fields, and the plugin never needs them (a source
// gets its sockets, with their addresses, in Run).
const (
	ListenAttribute       = "listen"
	ReadersAttribute      = "readers"
	FlushTimeoutAttribute = "flush_timeout"
)

// MaxReaders bounds a source's readers.
const MaxReaders = 64

// HostAttribute is an attribute every block of a kind has, owned by veneurd.
type HostAttribute struct {
	Kind        string // "source" or "sink"
	Name        string
	Type        cty.Type // as written, before veneurd's checks
	Description string
}

// HostAttributes lists the attributes veneurd owns, by kind. All are
// optional: a source without listen (one that scrapes, say) opens no socket.
var HostAttributes = []HostAttribute{
	{"source", ListenAttribute, cty.List(cty.String), `sockets veneurd opens and hands to the source, such as ["udp://127.0.0.1:8126"]`},
	{"source", ReadersAttribute, cty.Number, fmt.Sprintf("SO_REUSEPORT sockets veneurd opens for each UDP address, 1 to %d (default 1)", MaxReaders)},
	{"sink", FlushTimeoutAttribute, cty.String, "how long a flush to the sink may take, from the interval's end: the sink receives its points as they are packed (default: the interval)"},
	{"sink", AddTagsAttribute, cty.Map(cty.String), `tags the sink's points get, replacing their tags of the same keys, such as { env = "prod" }`},
	{"sink", StripTagsAttribute, cty.List(cty.String), `keys of tags the sink's points lose, such as ["host"]`},
	{"sink", MaxNameLengthAttribute, cty.Number, "longest point name the sink takes; longer points are dropped for it and counted"},
	{"sink", MaxTagLengthAttribute, cty.Number, "longest tag the sink takes; points with a longer one are dropped for it and counted"},
	{"sink", MaxTagsAttribute, cty.Number, "most tags a point sent to the sink may have; points with more are dropped for it and counted"},
}

// hostAttribute returns name's declaration if it is veneurd's in blocks of
// kind.
func hostAttribute(kind, name string) (HostAttribute, bool) {
	for _, a := range HostAttributes {
		if a.Kind == kind && a.Name == name {
			return a, true
		}
	}
	return HostAttribute{}, false
}

// hostSchema is the body schema of kind's host attributes.
func hostSchema(kind string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, a := range HostAttributes {
		if a.Kind == kind {
			s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a.Name})
		}
	}
	if kind == "source" {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: limitsBlock})
	}
	return s
}

// hostAttributes decodes and checks a block's host attributes into pb.
// raw receives the value of each that has the right type, for a plugin
// that declares the attribute too.
func (l *loader) hostAttributes(pb *PluginBlock, attrs hcl.Attributes, raw map[string]cty.Value) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for name, attr := range attrs {
		pb.attrRanges[name] = attr.Expr.Range()
		h, _ := hostAttribute(pb.Kind, name)
		if v, d := attr.Expr.Value(l.ctx); !d.HasErrors() && !v.IsNull() {
			if _, err := convert.Convert(v, h.Type); err == nil {
				raw[name] = v
			}
		}
	}
	if attr := attrs[ListenAttribute]; attr != nil {
		diags = append(diags, l.listen(attr, pb)...)
	}
	if attr := attrs[ReadersAttribute]; attr != nil {
		n := len(diags)
		var f float64
		diags = l.decode(attr, cty.Number, &f, diags)
		if len(diags) == n {
			if f != math.Trunc(f) || f < 1 || f > MaxReaders {
				diags = append(diags, attrError(attr, "Readers out of range",
					fmt.Sprintf("readers must be a whole number between 1 and %d, not %v.", MaxReaders, f)))
			} else {
				pb.Readers = int(f)
			}
		}
	}
	if attr := attrs[FlushTimeoutAttribute]; attr != nil {
		diags = l.duration(attr, &pb.FlushTimeout, diags)
	}
	if pb.Kind == "sink" {
		diags = append(diags, l.policy(pb, attrs)...)
	}
	return diags
}

// listen decodes a source's listen addresses, each problem at the element
// it is about.
func (l *loader) listen(attr *hcl.Attribute, pb *PluginBlock) hcl.Diagnostics {
	var addrs []string
	diags := l.decode(attr, cty.List(cty.String), &addrs, nil)
	if diags.HasErrors() {
		return diags
	}
	// A list written out has a range per element; anything else (a
	// function's result) is pointed at as a whole.
	ranges := make([]hcl.Range, len(addrs))
	elems, d := hcl.ExprList(attr.Expr)
	for i := range ranges {
		ranges[i] = attr.Expr.Range()
		if !d.HasErrors() && len(elems) == len(addrs) {
			ranges[i] = elems[i].Range()
		}
	}
	for i, s := range addrs {
		a, err := sdk.ParseAddress(s)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid listen address",
				Detail:   sentence(err.Error()),
				Subject:  ranges[i].Ptr(),
				Context:  attr.Range.Ptr(),
			})
			continue
		}
		pb.Listen = append(pb.Listen, a)
		pb.listenRanges = append(pb.listenRanges, ranges[i])
	}
	return diags
}

// httpAddress decodes veneurd { http_address }, a TCP host:port, or "" to
// serve no admin interface.
func (l *loader) httpAddress(attr *hcl.Attribute, d *Daemon, diags hcl.Diagnostics) hcl.Diagnostics {
	if attr == nil {
		return diags
	}
	d.HTTPAddressDefault = false
	n := len(diags)
	diags = l.str(attr, &d.HTTPAddress, diags)
	if len(diags) > n {
		return diags
	}
	s := d.HTTPAddress
	if s == "" {
		return diags
	}
	bad := func(detail string, args ...any) hcl.Diagnostics {
		return append(diags, attrError(attr, "Invalid address", fmt.Sprintf(detail, args...)))
	}
	if strings.Contains(s, "://") {
		return bad("http_address is HOST:PORT, such as \"127.0.0.1:8127\", without a scheme: not %q.", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return bad("%q has no port: http_address is HOST:PORT, such as %q.", s, net.JoinHostPort(strings.Trim(s, "[]:"), "8127"))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("The port of %q must be a number from 1 to 65535.", s)
	}
	a, err := sdk.ParseAddress("tcp://" + net.JoinHostPort(host, port))
	if err != nil {
		return bad("%q is not HOST:PORT: %s.", s, err)
	}
	d.httpAddress, d.httpRange = a, attr.Expr.Range()
	return diags
}

// checkListeners refuses two listen addresses, of one source or of two,
// that would take the same socket or port, and a listen address that takes
// the admin interface's port.
func checkListeners(cfg *Config) hcl.Diagnostics {
	type taken struct {
		addr  sdk.Address
		what  string
		where hcl.Range
	}
	var seen []taken
	if cfg.Daemon.httpAddress.Network != "" {
		seen = append(seen, taken{cfg.Daemon.httpAddress, "veneurd's http_address", cfg.Daemon.httpRange})
	}
	var diags hcl.Diagnostics
	for _, src := range cfg.Sources {
		for i, a := range src.Listen {
			r := src.listenRanges[i]
			clash := -1
			for j, t := range seen {
				if t.addr.Overlaps(a) {
					clash = j
					break
				}
			}
			if clash < 0 {
				seen = append(seen, taken{a, src.Address(), r})
				continue
			}
			first := seen[clash]
			var detail string
			switch {
			case first.addr == a:
				detail = fmt.Sprintf("%s is already listened on", a)
			case a.IsUnix():
				detail = fmt.Sprintf("%s takes the socket path of %s, listened on", a, first.addr)
			default:
				detail = fmt.Sprintf("%s takes the same port as %s, listened on", a, first.addr)
			}
			detail += fmt.Sprintf(" by %s, declared at %s:%d:%d.", first.what,
				first.where.Filename, first.where.Start.Line, first.where.Start.Column)
			if a.IsDatagram() && first.addr.IsDatagram() && !a.IsUnix() {
				detail += " To read a UDP address with several sockets, set readers."
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate listen address",
				Detail:   detail,
				Subject:  r.Ptr(),
			})
		}
	}
	return diags
}

// hostDeclared is a host attribute a plugin's schema declares too.
type hostDeclared struct {
	name     string
	ty       cty.Type
	required bool
}

// pluginHostValues gives a plugin that declares host attributes in its own
// schema (as plugins did before veneurd owned them) their values, converted
// to its types, and reports those it requires but the block lacks.
func pluginHostValues(block *hcl.Block, pb *PluginBlock, declared []hostDeclared, raw map[string]cty.Value) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, h := range declared {
		v, ok := raw[h.name]
		if !ok {
			// Written but wrong: veneurd said so already.
			if _, written := pb.attrRanges[h.name]; !written && h.required {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Missing required argument",
					Detail:   fmt.Sprintf("The argument %q is required, but no definition was found.", h.name),
					Subject:  block.Body.MissingItemRange().Ptr(),
				})
			}
			continue
		}
		cv, err := convert.Convert(v, h.ty)
		if err != nil {
			diags = append(diags, pb.Diagnose("Incorrect attribute value type",
				fmt.Sprintf("The %s plugin %q takes %q as %s: %s.", pb.Kind, pb.Type, h.name, h.ty.FriendlyName(), err), h.name))
			continue
		}
		pb.Values[h.name] = cv
	}
	return diags
}

// listenValue is how listen addresses are written in HCL.
func listenValue(addrs []sdk.Address) cty.Value {
	ss := make([]string, len(addrs))
	for i, a := range addrs {
		ss[i] = a.String()
	}
	v, _ := gocty.ToCtyValue(ss, cty.List(cty.String))
	return v
}

// sentence makes an error message a sentence: capitalized, with a period.
func sentence(s string) string {
	if s == "" {
		return s
	}
	if s[0] >= 'a' && s[0] <= 'z' {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
