package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core"
	"github.com/veneurd/veneurd/core/config"
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
	log := hclog.New(&hclog.LoggerOptions{Name: "veneurd", Level: hclog.LevelFromString(*level), Output: stderr})

	cfg, diags := loadPipeline(*path, log)
	if len(diags) > 0 {
		config.WriteDiagnostics(stderr, filesOf(cfg), diags)
	}
	if diags.HasErrors() {
		return 1
	}
	srv := core.New(cfg, core.Options{Logger: log})
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error("stopped with an error", "error", err)
		return 1
	}
	return 0
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
