package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core"
	"github.com/veneurd/veneurd/core/admin"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/plugins/routers/match"
)

//go:embed default.hcl
var defaultPipeline []byte

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "[-config FILE|DIR]",
		"Runs a pipeline until SIGINT or SIGTERM, which stop it after a final flush.\n"+
			"Without -config, runs the embedded default pipeline: DogStatsD on udp://127.0.0.1:8126,\n"+
			"a 10s interval, and the debug sink printing each flush to standard output.", stderr)
	path := fs.String("config", "", "pipeline file, or a directory whose *.hcl files are loaded together")
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn or error")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := usageError(stderr, "run")
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q: the pipeline is given with -config (veneurd run -config %s)", fs.Arg(0), fs.Arg(0))
	}
	logLevel := hclog.LevelFromString(*level)
	if logLevel == hclog.NoLevel {
		return usageErr("invalid -log-level %q: use trace, debug, info, warn or error", *level)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "veneurd", Level: logLevel, Output: stderr})
	if os.Getenv("GOGC") == "" {
		// The heap is mostly the interval's series, long-lived and large:
		// collecting at 50% growth rather than Go's 100% keeps the resident
		// set near what is live, for a little more collection work.
		debug.SetGCPercent(50)
	}

	// Signals are caught from the start: a SIGHUP's default action would end
	// the process, and one that arrives while plugins are starting waits for
	// the pipeline instead; a SIGTERM then stops it as soon as it runs.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, diags := loadPipeline(*path, log)
	if len(diags) > 0 {
		config.WriteDiagnostics(stderr, filesOf(cfg), diags)
	}
	if diags.HasErrors() {
		return 1
	}
	srv := core.New(cfg, core.Options{Logger: log})
	d := &daemon{path: *path, srv: srv, log: log}
	d.loaded(cfg)
	// The admin interface comes first, so that it answers (503 while the
	// plugins start) by the time the pipeline says it has started.
	if addr := cfg.Daemon.HTTPAddress; addr != "" {
		adm, err := admin.Listen(addr, admin.Handler(d, cfg.Daemon.EnableProfiling), log.Named("admin"))
		switch {
		case err == nil:
			defer adm.Close()
		case cfg.Daemon.HTTPAddressDefault:
			// Another veneurd on the host, most likely: the default address
			// is a convenience, not worth refusing to run for.
			log.Warn("cannot serve the admin interface on its default address; going on without it (set veneurd { http_address })",
				"address", addr, "error", err)
		default:
			log.Error("cannot serve the admin interface", "address", addr, "error", err)
			return 1
		}
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	go func() {
		for {
			select {
			case <-hup:
				d.Reload()
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Error("stopped with an error", "error", err)
		return 1
	}
	return 0
}

// daemon ties the running server to its config file: reloads (SIGHUP and
// POST /-/reload) and the admin interface's view of it.
type daemon struct {
	path string
	srv  *core.Server
	log  hclog.Logger
	mu   sync.Mutex // one reload at a time

	loadedAt atomic.Pointer[time.Time] // when the config in effect took effect
}

// loaded records a config taking effect in the self-metrics.
func (d *daemon) loaded(cfg *config.Config) {
	tel := d.srv.Telemetry()
	hash, _ := strconv.ParseUint(cfg.Hash[:8], 16, 64)
	tel.Gauge(telemetry.ConfigHash).Set(float64(hash))
	now := time.Now()
	d.loadedAt.Store(&now)
	tel.Gauge(telemetry.ConfigLoadTime).Set(float64(now.Unix()))
}

// Reload re-reads the config path. The new config is loaded and validated,
// and its new plugin processes started, before anything changes; on any
// error the running pipeline is untouched.
func (d *daemon) Reload() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	tel := d.srv.Telemetry()
	cfg, diags := loadPipeline(d.path, d.log)
	var rendered strings.Builder
	config.WriteDiagnostics(&rendered, filesOf(cfg), diags)
	if diags.HasErrors() {
		tel.Counter(telemetry.ConfigReloadErrors).Inc()
		d.log.Error("config reload failed; the running pipeline is unchanged", "path", d.path,
			"diagnostics", strings.TrimSpace(rendered.String()))
		return rendered.String(), fmt.Errorf("config has errors")
	}
	if len(diags) > 0 {
		d.log.Warn("config reload warnings", "diagnostics", strings.TrimSpace(rendered.String()))
	}
	if err := d.srv.Apply(cfg); err != nil {
		tel.Counter(telemetry.ConfigReloadErrors).Inc()
		d.log.Error("config reload failed; the running pipeline is unchanged", "path", d.path, "error", err)
		return rendered.String(), err
	}
	tel.Counter(telemetry.ConfigReloads).Inc()
	d.loaded(cfg)
	d.log.Info("config reloaded", "path", d.path, "config_hash", cfg.Hash, "load_time", time.Since(start))
	return rendered.String(), nil
}

// Health, WriteMetrics and ConfigHCL serve the admin interface.
func (d *daemon) Health() error                  { return d.srv.Health() }
func (d *daemon) Ready() error                   { return d.srv.Ready() }
func (d *daemon) WriteMetrics(w io.Writer) error { return d.srv.WriteMetrics(w) }
func (d *daemon) ConfigHCL() []byte              { return d.srv.Config().HCL() }

// Tap taps a block of the running pipeline.
func (d *daemon) Tap(address, pattern string) (admin.Tap, error) {
	name, err := match.ParseName(pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid name pattern %q: %w", pattern, err)
	}
	t, err := d.srv.Tap(address, name)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Status is the server's status with what only the daemon knows: its
// version and where its config came from.
func (d *daemon) Status() *status.Status {
	st := d.srv.Status()
	st.Version = version
	st.Config.Path = d.path
	st.Config.LoadedAt = *d.loadedAt.Load()
	return st
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "FILE|DIR...",
		"Checks pipeline files and prints every problem with its file:line:column.\n"+
			"Exits 0 when all are valid, 1 otherwise.", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	code := 0
	log := hclog.New(&hclog.LoggerOptions{Name: "veneurd", Level: hclog.Warn, Output: stderr})
	for _, path := range fs.Args() {
		cfg, diags := loadPipeline(path, log)
		config.WriteDiagnostics(stderr, filesOf(cfg), diags)
		if diags.HasErrors() {
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: valid\n", path)
	}
	return code
}
