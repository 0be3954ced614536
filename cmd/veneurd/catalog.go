package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/plugins"
)

// loadPipeline loads path (or the embedded default pipeline when path is
// "") with a registry of builtins and the external plugins the pipeline
// names. The processes started to learn external plugins' schemas end
// before it returns.
func loadPipeline(path string, log hclog.Logger) (*config.Config, hcl.Diagnostics) {
	self, _ := os.Executable()
	cat := pluginhost.NewRegistry(plugins.BuiltinTypes{}, &pluginhost.Launcher{Self: self, Logger: log})
	defer cat.Close()
	var cfg *config.Config
	var diags hcl.Diagnostics
	if path == "" {
		cfg, diags = config.Load(map[string][]byte{"<default>": defaultPipeline}, cat)
	} else {
		cfg, diags = config.LoadPath(path, cat)
	}
	return cfg, diags
}

// filesOf is what cfg's diagnostics are rendered from.
func filesOf(cfg *config.Config) config.Text { return cfg.Text() }
