// Package config loads veneurd pipelines from HCL files into a Config,
// reporting every problem it finds as an hcl.Diagnostic with a source range.
//
// Loading is one pass that keeps going where it is safe, so that a user sees
// all of their mistakes at once. Plugin blocks are decoded against the schema
// their plugin publishes (the host decodes HCL for plugins); the plugin then
// validates the values it received, and its complaints are mapped back onto
// the attribute they are about (see PluginBlock.Diagnose).
//
// The attributes of plugin blocks that veneurd acts on itself (a source's
// listen and readers, a sink's flush_timeout: HostAttributes) are decoded
// and checked here, into PluginBlock's typed fields, so that whatever would
// stop `veneurd run` from starting is reported by `veneurd validate` first.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/veneurd/veneurd/plugins/routers/match"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/schema"
)

// Config is a whole pipeline.
type Config struct {
	Daemon      Daemon
	Aggregation Aggregation
	Sources     []*PluginBlock
	Sinks       []*PluginBlock
	Externals   []External
	Routing     Routing
	// Forward and Receive place the instance in a tier: nil when absent.
	Forward *Forward
	Receive *Receive
	// Limits are the top-level limits block's (see Limits).
	Limits Limits
	// Files holds the parsed sources, for rendering diagnostics.
	Files map[string]*hcl.File
	// Secrets are the values of attributes a plugin marks sensitive, and
	// where they are written: never shown in a diagnostic.
	Secrets []Secret
	// Hash identifies the config's content.
	Hash string
}

// Daemon is the veneurd block.
type Daemon struct {
	PluginDir       string
	SelfMetrics     bool
	EnableProfiling bool
	Hostname        string
	Interval        time.Duration
	// HTTPAddress is the admin interface's address, "" for none. Left out,
	// it is DefaultHTTPAddress, and HTTPAddressDefault is set: veneurd then
	// goes on without the admin interface if another process holds it.
	HTTPAddress        string
	HTTPAddressDefault bool
	ShutdownTimeout    time.Duration
	// PluginStartTimeout bounds how long a plugin process has to start and
	// complete its handshake.
	PluginStartTimeout time.Duration

	httpAddress sdk.Address // HTTPAddress parsed, for checkListeners
	httpRange   hcl.Range
}

// Aggregation is the aggregation block.
type Aggregation struct {
	Percentiles        []float64
	Aggregates         []string
	ExtendTags         []string
	TDigestCompression float64
	HLLPrecision       int
}

// Aggregate names accepted in aggregation.aggregates, as Veneur names them.
var Aggregates = []string{"min", "max", "median", "avg", "count", "sum", "hmean"}

// Defaults for what a pipeline leaves out.
var (
	DefaultInterval           = 10 * time.Second
	DefaultShutdownTimeout    = 10 * time.Second
	DefaultHTTPAddress        = "127.0.0.1:8127" // as in Veneur's examples, on loopback
	DefaultPluginStartTimeout = 10 * time.Second
	DefaultPercentiles        = []float64{0.5, 0.75, 0.99}
	DefaultAggregates         = []string{"min", "max", "count"}
)

// PluginBlock is a source or sink block.
type PluginBlock struct {
	Kind string // "source" or "sink"
	Type string
	Name string
	// Schema is the plugin's, as its PluginTypes gave it.
	Schema schema.Schema
	// Values are the plugin's decoded attributes; JSON is their wire form.
	// The attributes veneurd owns (HostAttributes) are in the fields below.
	Values map[string]cty.Value
	JSON   []byte
	// Hash identifies kind, type, name, values, host attributes and the
	// plugin binary: a block whose hash is unchanged across a reload keeps
	// its process.
	Hash string
	// Info is what PluginTypes said of the plugin type.
	Info PluginInfo

	// Listen are the sockets veneurd opens for a source and hands to it, in
	// the order written (sources only; none when listen is not set).
	Listen []sdk.Address
	// Readers is how many SO_REUSEPORT sockets veneurd opens for each UDP
	// address of Listen (sources only; default 1).
	Readers int
	// FlushTimeout bounds a sink's flush (sinks only; default the interval).
	FlushTimeout time.Duration
	// StartTimeout bounds the start of the block's process: the veneurd
	// block's plugin_start_timeout.
	StartTimeout time.Duration
	// Policy is a sink's tag policy (sinks only; the zero Policy changes
	// nothing).
	Policy match.Policy
	// Limits are the series limits the source applies (sources only): its
	// own limits block's (OwnLimits, nil when it has none) or else the
	// pipeline's. They count in the block's Hash.
	Limits    Limits
	OwnLimits *Limits
	// Drops are the pipeline's drop rules, which a source applies (sources
	// only). They count in the block's Hash: a reload that changes them
	// gives every source a new process.
	Drops match.Drops

	DeclRange    hcl.Range
	TypeRange    hcl.Range
	attrRanges   map[string]hcl.Range
	listenRanges []hcl.Range // of each of Listen
}

// Address is the block's identifier in logs, tags and references:
// "<kind>.<type>.<name>".
func (b *PluginBlock) Address() string { return b.Kind + "." + b.Type + "." + b.Name }

// Diagnose turns the problems a plugin found with its values into
// diagnostics pointing at the attribute, or at the block when none is named.
func (b *PluginBlock) Diagnose(summary, detail, attribute string) *hcl.Diagnostic {
	subject := b.DeclRange
	if r, ok := b.attrRanges[attribute]; ok {
		subject = r
	}
	if summary == "" {
		summary = "Invalid " + b.Kind + " configuration"
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: subject.Ptr()}
}

// PluginTypes tells the loader which plugin types exist, their schemas, and
// whether values suit them. plugins.BuiltinTypes answers for the builtins,
// pluginhost.Registry for builtins and external plugins.
type PluginTypes interface {
	// Types lists the plugin types of a kind, for suggestions.
	Types(kind string) []string
	// Lookup describes a plugin type; an error wrapping ErrUnknownPlugin if
	// there is none, another error if it cannot be loaded.
	Lookup(kind, typ string) (PluginInfo, error)
	// Check has the plugin validate decoded values (schema.MarshalValues),
	// as Configure would, without side effects. Problems come back as
	// *sdk.AttrError, joined.
	Check(kind, typ string, values []byte) error
}

// ErrUnknownPlugin is wrapped by PluginTypes.Lookup for a type it does not know.
var ErrUnknownPlugin = errors.New("unknown plugin type")

// PluginInfo is what PluginTypes knows of a plugin type.
type PluginInfo struct {
	Schema schema.Schema
	// Path is an external plugin's binary; empty for builtins.
	Path string
	// SHA256 pins Path's checksum (hex); empty when not pinned.
	SHA256  string
	Version string
	// ReadsSockets is set for a source that reads nothing but its listen
	// sockets (sdk.SocketReader): a block of it needs a listen address.
	ReadsSockets bool
}

// External is a plugin block: a third-party binary serving a plugin type.
type External struct {
	Kind, Type string
	Path       string // absolute: relative paths are resolved at load
	SHA256     string
	DeclRange  hcl.Range
	PathRange  hcl.Range
}

// Extensible PluginTypes can take external plugins: those a config declares
// with plugin blocks, and those found in veneurd { plugin_dir } as
// veneurd-<kind>-<type> binaries.
type Extensible interface {
	PluginTypes
	// The daemon block gives the plugin directory and the plugin start
	// timeout.
	Extend(ext []External, daemon Daemon) (PluginTypes, hcl.Diagnostics)
}

// LoadPath loads a file, or every *.hcl file of a directory.
func LoadPath(path string, cat PluginTypes) (*Config, hcl.Diagnostics) {
	files, err := hclFiles(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}
	}
	srcs := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}
		}
		srcs[f] = b
	}
	return Load(srcs, cat)
}

func hclFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.hcl"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.hcl files in %s", path)
	}
	return files, nil
}

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "veneurd"},
	{Type: "aggregation"},
	{Type: "source", LabelNames: []string{"type", "name"}},
	{Type: "sink", LabelNames: []string{"type", "name"}},
	{Type: "plugin", LabelNames: []string{"kind", "type"}},
	{Type: "metric_sink_routing", LabelNames: []string{"name"}},
	{Type: "drop", LabelNames: []string{"name"}},
	{Type: "forward"},
	{Type: "receive"},
	{Type: limitsBlock},
}}

// Load parses and decodes files (name -> content) as one pipeline.
func Load(srcs map[string][]byte, cat PluginTypes) (*Config, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	p := hclparse.NewParser()
	names := make([]string, 0, len(srcs))
	for name := range srcs {
		names = append(names, name)
	}
	sort.Strings(names)
	var files []*hcl.File
	h := sha256.New()
	for _, name := range names {
		f, d := p.ParseHCL(srcs[name], name)
		diags = append(diags, d...)
		if f != nil {
			files = append(files, f)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(srcs[name]))
		h.Write(srcs[name])
	}
	cfg := &Config{Files: p.Files(), Hash: hex.EncodeToString(h.Sum(nil))[:16]}
	if diags.HasErrors() {
		return cfg, diags
	}
	content, d := hcl.MergeFiles(files).Content(rootSchema)
	diags = append(diags, d...)

	cfg.Daemon = Daemon{Interval: DefaultInterval, ShutdownTimeout: DefaultShutdownTimeout,
		PluginStartTimeout: DefaultPluginStartTimeout, SelfMetrics: true,
		HTTPAddress: DefaultHTTPAddress, HTTPAddressDefault: true}
	l := &loader{ctx: evalContext(), cat: cat}
	var daemonSeen, aggSeen, limitsSeen *hcl.Block
	seen := map[string]*hcl.Block{}
	// First the blocks that say which plugins exist, then the plugin blocks.
	for _, block := range content.Blocks {
		switch block.Type {
		case "veneurd":
			if daemonSeen != nil {
				diags = append(diags, duplicate(block, daemonSeen, "veneurd block", "Only one veneurd block is allowed"))
				continue
			}
			daemonSeen = block
			diags = append(diags, l.daemon(block, &cfg.Daemon)...)
		case "aggregation":
			if aggSeen != nil {
				diags = append(diags, duplicate(block, aggSeen, "aggregation block", "Only one aggregation block is allowed"))
				continue
			}
			aggSeen = block
			diags = append(diags, l.aggregation(block, &cfg.Aggregation)...)
		case "forward":
			if cfg.Forward != nil {
				diags = append(diags, duplicate(block, &hcl.Block{DefRange: cfg.Forward.DeclRange}, "forward block", "Only one forward block is allowed"))
				continue
			}
			f, d := l.forward(block)
			diags = append(diags, d...)
			cfg.Forward = f
		case "receive":
			if cfg.Receive != nil {
				diags = append(diags, duplicate(block, &hcl.Block{DefRange: cfg.Receive.DeclRange}, "receive block", "Only one receive block is allowed"))
				continue
			}
			r, d := l.receive(block)
			diags = append(diags, d...)
			cfg.Receive = r
		case limitsBlock:
			lim, d := l.limits(block, limitsSeen)
			diags = append(diags, d...)
			if limitsSeen == nil {
				limitsSeen = block
			}
			if lim != nil {
				cfg.Limits = *lim
			}
		case "plugin":
			addr := "plugin." + block.Labels[0] + "." + block.Labels[1]
			if first, ok := seen[addr]; ok {
				diags = append(diags, duplicate(block, first, "plugin block",
					fmt.Sprintf("A %s plugin %q is already declared", block.Labels[0], block.Labels[1])))
				continue
			}
			seen[addr] = block
			ext, d := l.external(block)
			diags = append(diags, d...)
			if ext != nil {
				cfg.Externals = append(cfg.Externals, *ext)
			}
		}
	}
	if len(cfg.Externals) > 0 || cfg.Daemon.PluginDir != "" {
		if ec, ok := cat.(Extensible); ok {
			extended, d := ec.Extend(cfg.Externals, cfg.Daemon)
			diags = append(diags, d...)
			l.cat = extended
		} else if len(cfg.Externals) > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "External plugins unsupported",
				Detail: "This tool cannot load external plugins.", Subject: cfg.Externals[0].DeclRange.Ptr()})
		}
	}
	for _, block := range content.Blocks {
		switch block.Type {
		case "source", "sink":
			addr := block.Type + "." + block.Labels[0] + "." + block.Labels[1]
			if first, ok := seen[addr]; ok {
				diags = append(diags, duplicate(block, first, block.Type+" block",
					fmt.Sprintf("A %s of type %q named %q is already declared", block.Type, block.Labels[0], block.Labels[1])))
				continue
			}
			seen[addr] = block
			pb, d := l.plugin(block, cfg.Daemon.Interval)
			diags = append(diags, d...)
			if pb == nil {
				continue
			}
			pb.StartTimeout = cfg.Daemon.PluginStartTimeout
			if block.Type == "source" {
				cfg.Sources = append(cfg.Sources, pb)
			} else {
				cfg.Sinks = append(cfg.Sinks, pb)
			}
		}
	}

	var declared []sinkRef
	var rules []*hcl.Block
	for _, block := range content.Blocks {
		switch block.Type {
		case "sink":
			addr := "sink." + block.Labels[0] + "." + block.Labels[1]
			if seen[addr] != block {
				continue
			}
			ref := sinkRef{addr: addr, index: -1}
			for i, k := range cfg.Sinks {
				if k.Address() == addr {
					ref.index = i
				}
			}
			declared = append(declared, ref)
		case "metric_sink_routing", "drop":
			rules = append(rules, block)
		}
	}
	diags = append(diags, l.routing(rules, cfg, declared)...)
	if len(cfg.Routing.Drops) > 0 {
		h := sha256.New()
		f := hclwrite.NewEmptyFile()
		for i := range cfg.Routing.Drops {
			writeRule(f.Body().AppendNewBlock("drop", []string{cfg.Routing.Drops[i].Name}).Body(), &cfg.Routing.Drops[i], nil)
		}
		for _, src := range cfg.Sources {
			src.Drops = cfg.Routing.Drops
			h.Reset()
			fmt.Fprintf(h, "%s\x00%s", src.Hash, f.Bytes())
			src.Hash = hex.EncodeToString(h.Sum(nil)[:8])
		}
	}
	for _, src := range cfg.Sources {
		src.Limits = cfg.Limits
		if src.OwnLimits != nil {
			src.Limits = *src.OwnLimits
		}
		if src.Limits != (Limits{}) {
			h := sha256.New()
			fmt.Fprintf(h, "%s\x00%d\x00%d", src.Hash, src.Limits.MaxSeries, src.Limits.MaxSeriesPerName)
			src.Hash = hex.EncodeToString(h.Sum(nil)[:8])
		}
	}
	diags = append(diags, checkListeners(cfg)...)
	if r := cfg.Receive; r != nil && !r.Aggregate && cfg.Forward == nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Proxy without upstream",
			Detail: "A receive block with aggregate = false routes what it receives onward: it needs a forward block.", Subject: r.DeclRange.Ptr()})
	}

	if cfg.Daemon.Hostname == "" {
		cfg.Daemon.Hostname, _ = os.Hostname()
	}
	if aggSeen == nil {
		cfg.Aggregation = defaultAggregation()
	}
	if len(cfg.Sinks) == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "No sinks",
			Detail:   "The pipeline has no sink block: metrics are aggregated and then discarded.",
		})
	}
	cfg.Secrets = l.secrets
	return cfg, sorted(diags)
}

// sorted orders diagnostics by file, line and column, as a reader goes
// through the files; those about no place in them come first.
func sorted(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Column < b.Start.Column
	})
	return diags
}

func defaultAggregation() Aggregation {
	return Aggregation{
		Percentiles:        DefaultPercentiles,
		Aggregates:         DefaultAggregates,
		TDigestCompression: 100,
		HLLPrecision:       14,
	}
}

func duplicate(block, first *hcl.Block, what, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Duplicate " + what,
		Detail: fmt.Sprintf("%s; the first was declared at %s:%d:%d.", detail,
			first.DefRange.Filename, first.DefRange.Start.Line, first.DefRange.Start.Column),
		Subject: block.DefRange.Ptr(),
	}
}

type loader struct {
	ctx     *hcl.EvalContext
	cat     PluginTypes
	secrets []Secret
}

var daemonSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "hostname"}, {Name: "interval"}, {Name: "http_address"}, {Name: "shutdown_timeout"},
	{Name: "plugin_dir"}, {Name: "self_metrics"}, {Name: "enable_profiling"}, {Name: "plugin_start_timeout"},
}}

func (l *loader) daemon(block *hcl.Block, d *Daemon) hcl.Diagnostics {
	content, diags := block.Body.Content(daemonSchema)

	a := content.Attributes
	diags = l.str(a["hostname"], &d.Hostname, diags)
	diags = l.httpAddress(a["http_address"], d, diags)
	diags = l.str(a["plugin_dir"], &d.PluginDir, diags)
	diags = l.decode(a["self_metrics"], cty.Bool, &d.SelfMetrics, diags)
	diags = l.decode(a["enable_profiling"], cty.Bool, &d.EnableProfiling, diags)
	if d.PluginDir != "" {
		d.PluginDir = relativeTo(block.DefRange.Filename, d.PluginDir)
	}
	diags = l.duration(a["interval"], &d.Interval, diags)
	diags = l.duration(a["shutdown_timeout"], &d.ShutdownTimeout, diags)
	diags = l.duration(a["plugin_start_timeout"], &d.PluginStartTimeout, diags)
	return diags
}

var aggregationSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "percentiles"}, {Name: "aggregates"}, {Name: "extend_tags"},
	{Name: "tdigest_compression"}, {Name: "hll_precision"},
}}

func (l *loader) aggregation(block *hcl.Block, agg *Aggregation) hcl.Diagnostics {
	content, diags := block.Body.Content(aggregationSchema)
	*agg = defaultAggregation()
	a := content.Attributes
	if attr := a["percentiles"]; attr != nil {
		var ps []float64
		diags = l.decode(attr, cty.List(cty.Number), &ps, diags)
		for _, p := range ps {
			if !(p > 0 && p < 1) {
				diags = append(diags, attrError(attr, "Percentile out of range",
					fmt.Sprintf("Percentiles are fractions between 0 and 1, exclusive: %v is not. Write 0.99 for the 99th percentile.", p)))
			}
		}
		agg.Percentiles = ps
	}
	if attr := a["aggregates"]; attr != nil {
		var as []string
		diags = l.decode(attr, cty.List(cty.String), &as, diags)
		for _, name := range as {
			if !contains(Aggregates, name) {
				diags = append(diags, attrError(attr, "Unknown aggregate",
					fmt.Sprintf("There is no aggregate %q.%s Valid aggregates are %s.", name, suggest(name, Aggregates), strings.Join(Aggregates, ", "))))
			}
		}
		agg.Aggregates = as
	}
	if attr := a["extend_tags"]; attr != nil {
		diags = l.decode(attr, cty.List(cty.String), &agg.ExtendTags, diags)
	}
	if attr := a["tdigest_compression"]; attr != nil {
		diags = l.decode(attr, cty.Number, &agg.TDigestCompression, diags)
		if c := agg.TDigestCompression; c < 10 || c > 10000 {
			diags = append(diags, attrError(attr, "Compression out of range",
				fmt.Sprintf("tdigest_compression must be between 10 and 10000, not %v; 100 is the default.", c)))
		}
	}
	if attr := a["hll_precision"]; attr != nil {
		diags = l.decode(attr, cty.Number, &agg.HLLPrecision, diags)
		if p := agg.HLLPrecision; p < 4 || p > 18 {
			diags = append(diags, attrError(attr, "Precision out of range",
				fmt.Sprintf("hll_precision must be between 4 and 18, not %d; 14 is the default.", p)))
		}
	}
	return diags
}

func (l *loader) plugin(block *hcl.Block, interval time.Duration) (*PluginBlock, hcl.Diagnostics) {
	kind, typ := block.Type, block.Labels[0]
	info, err := l.cat.Lookup(kind, typ)
	if errors.Is(err, ErrUnknownPlugin) {
		types := l.cat.Types(kind)
		sort.Strings(types)
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown " + kind + " type",
			Detail: fmt.Sprintf("There is no %s plugin of type %q.%s Known %s types: %s. A third-party plugin needs a plugin \"%s\" %q block naming its binary.",
				kind, typ, suggest(typ, types), kind, strings.Join(types, ", "), kind, typ),
			Subject: block.LabelRanges[0].Ptr(),
		}}
	}
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot load " + kind + " plugin",
			Detail:   fmt.Sprintf("The %s plugin %q cannot be loaded: %s.", kind, typ, err),
			Subject:  block.LabelRanges[0].Ptr(),
		}}
	}
	pb := &PluginBlock{
		Kind: kind, Type: typ, Name: block.Labels[1], Schema: info.Schema, Info: info,
		Values:     map[string]cty.Value{},
		DeclRange:  block.DefRange,
		TypeRange:  block.LabelRanges[0],
		attrRanges: map[string]hcl.Range{},
	}
	switch kind {
	case "source":
		pb.Readers = 1
	case "sink":
		pb.FlushTimeout = interval
	}
	// veneurd's own attributes first; the plugin's schema decodes the rest.
	// A plugin that declares one of veneurd's attributes too is given its
	// value.
	own, rest, diags := block.Body.PartialContent(hostSchema(kind))
	raw := map[string]cty.Value{}
	diags = append(diags, l.hostAttributes(pb, own.Attributes, raw)...)
	if kind == "source" && info.ReadsSockets && len(pb.Listen) == 0 && !diags.HasErrors() {
		subject := block.DefRange
		if attr := own.Attributes[ListenAttribute]; attr != nil {
			subject = attr.Expr.Range()
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No listen address",
			Detail:  fmt.Sprintf("The %s source reads nothing but the sockets of its listen attribute, so this block would read nothing. Give it the sockets to read, as listen = [\"NETWORK://HOST:PORT\", ...].", typ),
			Subject: subject.Ptr()})
	}
	var limitsSeen *hcl.Block
	for _, b := range own.Blocks {
		lim, d := l.limits(b, limitsSeen)
		diags = append(diags, d...)
		if limitsSeen == nil {
			limitsSeen, pb.OwnLimits = b, lim
		}
	}
	var pluginSchema schema.Schema
	var declared []hostDeclared
	for _, a := range info.Schema {
		if _, ok := hostAttribute(kind, a.Name); ok && !a.Block {
			declared = append(declared, hostDeclared{a.Name, a.Type, a.Required})
			continue
		}
		pluginSchema = append(pluginSchema, a)
	}
	pluginDiags := l.decodeBody(rest, pluginSchema, "", pb.Values, pb.attrRanges)
	pluginDiags = append(pluginDiags, pluginHostValues(block, pb, declared, raw)...)
	diags = append(diags, pluginDiags...)
	js, err := schema.MarshalValues(pb.Values)
	if err != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot encode configuration",
			Detail: err.Error(), Subject: block.DefRange.Ptr()})
	}
	pb.JSON = js
	// The plugin checks its values even when veneurd's attributes have
	// problems, so that every problem of the block is reported at once.
	if !pluginDiags.HasErrors() && err == nil {
		for _, ae := range sdk.AttrErrors(l.cat.Check(kind, typ, js)) {
			diags = append(diags, pb.Diagnose(ae.Summary, ae.Detail, ae.Attribute))
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%d", pb.Address(), js, info.Path, info.SHA256, pb.FlushTimeout, pb.Readers)
	for _, a := range pb.Listen {
		fmt.Fprintf(h, "\x00%s", a)
	}
	pb.Hash = hex.EncodeToString(h.Sum(nil)[:8])
	return pb, diags
}

var externalSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "path", Required: true}, {Name: "sha256"},
}}

// external decodes a plugin block.
func (l *loader) external(block *hcl.Block) (*External, hcl.Diagnostics) {
	ext := &External{Kind: block.Labels[0], Type: block.Labels[1], DeclRange: block.DefRange}
	var diags hcl.Diagnostics
	if ext.Kind != "source" && ext.Kind != "sink" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown plugin kind",
			Detail:  fmt.Sprintf("A plugin block's first label is \"source\" or \"sink\", not %q.", ext.Kind),
			Subject: block.LabelRanges[0].Ptr()})
	}
	content, d := block.Body.Content(externalSchema)
	diags = append(diags, d...)
	if attr := content.Attributes["path"]; attr != nil {
		ext.PathRange = attr.Expr.Range()
		diags = l.str(attr, &ext.Path, diags)
		ext.Path = relativeTo(block.DefRange.Filename, ext.Path)
	}
	if attr := content.Attributes["sha256"]; attr != nil {
		diags = l.str(attr, &ext.SHA256, diags)
		if b, err := hex.DecodeString(ext.SHA256); err != nil || len(b) != sha256.Size {
			diags = append(diags, attrError(attr, "Invalid checksum",
				fmt.Sprintf("sha256 must be 64 hexadecimal digits, as sha256sum prints them, not %q.", ext.SHA256)))
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return ext, diags
}

// relativeTo resolves a relative path against the directory of the config
// file that names it (the working directory for a config that is not a
// file), and makes it absolute: a plugin path such as "./xsink" must name
// that file, never be searched for in $PATH.
func relativeTo(file, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	if file != "" && !strings.HasPrefix(file, "<") {
		path = filepath.Join(filepath.Dir(file), path)
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// decodeBody decodes body against sch into values, recording each
// attribute's range under prefix+name (nested blocks' attributes as
// "block.attr", which is how plugins name them in AttrErrors).
func (l *loader) decodeBody(body hcl.Body, sch schema.Schema, prefix string, values map[string]cty.Value, ranges map[string]hcl.Range) hcl.Diagnostics {
	content, diags := body.Content(sch.BodySchema())
	for name, attr := range content.Attributes {
		a, _ := sch.Lookup(name)
		ranges[prefix+name] = attr.Expr.Range()
		v, d := attr.Expr.Value(l.ctx)
		if a.Sensitive {
			l.secrets = append(l.secrets, secretsOf(attr.Expr.Range(), v)...)
		}
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		cv, err := convert.Convert(v, a.Type)
		if err != nil {
			diags = append(diags, attrError(attr, "Incorrect attribute value type",
				fmt.Sprintf("Inappropriate value for attribute %q: %s.", name, err)))
			continue
		}
		values[name] = cv
	}
	seen := map[string]*hcl.Block{}
	for _, b := range content.Blocks {
		if first, ok := seen[b.Type]; ok {
			diags = append(diags, duplicate(b, first, b.Type+" block", fmt.Sprintf("Only one %s block is allowed", b.Type)))
			continue
		}
		seen[b.Type] = b
		a, _ := sch.Lookup(b.Type)
		ranges[prefix+b.Type] = b.DefRange
		nested := map[string]cty.Value{}
		diags = append(diags, l.decodeBody(b.Body, a.Nested, prefix+b.Type+".", nested, ranges)...)
		full := map[string]cty.Value{}
		for _, na := range a.Nested {
			if v, ok := nested[na.Name]; ok {
				full[na.Name] = v
			} else {
				full[na.Name] = cty.NullVal(na.Type)
			}
		}
		values[b.Type] = cty.ObjectVal(full)
	}
	return diags
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
