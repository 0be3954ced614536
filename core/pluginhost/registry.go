package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Registry knows the builtin plugins and the external ones a config names. An
// external plugin's schema comes from its own process, started while the
// config loads and ended by Close: loading a config with external plugins
// runs them, as Configure is free of side effects by contract.
type Registry struct {
	builtin  config.PluginTypes
	launcher *Launcher

	mu           sync.Mutex
	dir          string
	startTimeout time.Duration        // the config's plugin_start_timeout
	external     map[string]*external // by "kind.type"
}

type external struct {
	spec Spec
	info config.PluginInfo
	proc *Process
	err  error
}

// NewRegistry returns a registry of builtins that can be extended.
func NewRegistry(builtin config.PluginTypes, l *Launcher) *Registry {
	return &Registry{builtin: builtin, launcher: l, external: map[string]*external{}}
}

// Extend adds the external plugins a config declares and a plugin directory.
// Each declared plugin is started now, so that a missing binary, a checksum
// mismatch or an incompatible protocol is reported at its plugin block.
func (c *Registry) Extend(exts []config.External, daemon config.Daemon) (config.PluginTypes, hcl.Diagnostics) {
	c.mu.Lock()
	c.dir = daemon.PluginDir
	c.startTimeout = daemon.PluginStartTimeout
	c.mu.Unlock()
	var diags hcl.Diagnostics
	for _, e := range exts {
		if _, err := c.builtin.Lookup(e.Kind, e.Type); err == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin shadows a builtin",
				Detail:  fmt.Sprintf("veneurd has a builtin %s plugin %q; give the external plugin another type name.", e.Kind, e.Type),
				Subject: e.DeclRange.Ptr()})
			continue
		}
		x := c.load(e.Kind, e.Type, e.Path, e.SHA256)
		if x.err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot start plugin",
				Detail:  fmt.Sprintf("The %s plugin %q at %s cannot be used: %s.", e.Kind, e.Type, e.Path, x.err),
				Subject: e.PathRange.Ptr(), Context: e.DeclRange.Ptr()})
		}
	}
	return c, diags
}

// DirBinary is the file name under which a plugin directory holds a plugin.
func DirBinary(kind, typ string) string { return "veneurd-" + kind + "-" + typ }

// load starts an external plugin and asks for its schema, once per type.
func (c *Registry) load(kind, typ, path, sum string) *external {
	key := kind + "." + typ
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.external[key]; ok {
		return x
	}
	x := &external{spec: Spec{Kind: kind, Type: typ, Address: "plugin." + key, Path: path, SHA256: sum,
		StartTimeout: c.startTimeout}}
	c.external[key] = x
	proc, err := c.launcher.Start(x.spec)
	if err != nil {
		x.err = err
		return x
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := proc.Plugin.Schema(ctx, &pb.Empty{})
	if err == nil {
		x.info.Schema, err = sdk.SchemaFromProto(resp)
	}
	if err != nil {
		proc.Kill()
		x.err = fmt.Errorf("schema: %w", err)
		return x
	}
	x.proc = proc
	x.info.Path, x.info.SHA256, x.info.Version = path, sum, resp.Version
	x.info.ReadsSockets = resp.ReadsSockets
	return x
}

// Types lists builtin and external types of a kind.
func (c *Registry) Types(kind string) []string {
	types := c.builtin.Types(kind)
	c.mu.Lock()
	for _, x := range c.external {
		if x.spec.Kind == kind {
			types = append(types, x.spec.Type)
		}
	}
	dir := c.dir
	c.mu.Unlock()
	if dir != "" {
		matches, _ := filepath.Glob(filepath.Join(dir, DirBinary(kind, "*")))
		for _, m := range matches {
			types = append(types, strings.TrimPrefix(filepath.Base(m), DirBinary(kind, "")))
		}
	}
	sort.Strings(types)
	return dedupe(types)
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Lookup finds a builtin, a declared external plugin, or a binary in the
// plugin directory.
func (c *Registry) Lookup(kind, typ string) (config.PluginInfo, error) {
	if info, err := c.builtin.Lookup(kind, typ); !errors.Is(err, config.ErrUnknownPlugin) {
		return info, err
	}
	c.mu.Lock()
	x, ok := c.external[kind+"."+typ]
	dir := c.dir
	c.mu.Unlock()
	if !ok {
		if dir == "" {
			return config.PluginInfo{}, config.ErrUnknownPlugin
		}
		path := filepath.Join(dir, DirBinary(kind, typ))
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return config.PluginInfo{}, config.ErrUnknownPlugin
		}
		x = c.load(kind, typ, path, "")
	}
	return x.info, x.err
}

// Check validates values with the builtin in process, or with the external
// plugin's process.
func (c *Registry) Check(kind, typ string, values []byte) error {
	if _, err := c.builtin.Lookup(kind, typ); err == nil {
		return c.builtin.Check(kind, typ, values)
	}
	c.mu.Lock()
	x := c.external[kind+"."+typ]
	c.mu.Unlock()
	if x == nil || x.proc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	diags, err := x.proc.Configure(ctx, &pb.ConfigureRequest{ConfigJson: values, Address: kind + "." + typ})
	if err != nil {
		return err
	}
	return sdk.DiagnosticsFromProto(diags)
}

// Close ends the processes started for schemas.
func (c *Registry) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.external {
		if x.proc != nil {
			x.proc.Kill()
			x.proc = nil
		}
	}
}
