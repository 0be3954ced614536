// Package admin is veneurd's HTTP admin interface: the status page and its
// JSON, health, self-metrics in the Prometheus format, the effective config,
// reload, taps, and (when enabled) pprof.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/core/status"
)

// Backend is what the admin interface shows and drives.
type Backend interface {
	// Health returns why the daemon is unhealthy, or nil.
	Health() error
	// Ready returns why the daemon should not be sent traffic (starting,
	// shutting down), or nil.
	Ready() error
	// WriteMetrics writes the self-metrics in the Prometheus text format.
	WriteMetrics(w io.Writer) error
	// ConfigHCL renders the effective config, secrets redacted.
	ConfigHCL() []byte
	// Reload re-reads the config as SIGHUP does and returns the rendered
	// diagnostics, and an error if the reload did not happen.
	Reload() (diagnostics string, err error)
	// Status describes the pipeline now.
	Status() *status.Status
	// Tap taps the block at address for the names pattern matches (see
	// match.ParseName).
	Tap(address, pattern string) (Tap, error)
}

// Handler serves the admin endpoints:
//
//	GET  /              the status page: the pipeline's graph with live rates,
//	                    refreshed every few seconds, plain HTML (no script)
//	GET  /api/status    the same as JSON (package status)
//	GET  /api/tap       ?block=ADDRESS[&name=PATTERN][&format=json]: a live
//	                    stream of the samples a source reads or the points
//	                    a sink receives (see serveTap)
//	GET  /healthcheck   200 "ok", or 503 and the reason: liveness
//	GET  /readyz        200 "ready" once every socket is bound and every
//	                    plugin configured, 503 and the reason before that
//	                    and from the start of a shutdown: readiness
//	GET  /metrics       self-metrics, Prometheus text format
//	GET  /config        the effective config as HCL, sensitive values redacted
//	POST /-/reload      reload; 200 with diagnostics (warnings), or 400 with them
//	     /debug/pprof/  only when profiling is enabled
func Handler(b Backend, profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		writePage(w, b.Status())
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(b.Status())
	})
	mux.HandleFunc("GET /api/tap", func(w http.ResponseWriter, r *http.Request) { serveTap(b, w, r) })
	mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, _ *http.Request) {
		if err := b.Health(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := b.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		b.WriteMetrics(w)
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b.ConfigHCL())
	})
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		diags, err := b.Reload()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, diags)
			if diags == "" {
				io.WriteString(w, err.Error()+"\n")
			}
			return
		}
		io.WriteString(w, diags)
		io.WriteString(w, "reloaded\n")
	})
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server is a running admin HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr and serves h in the background.
func Listen(addr string, h http.Handler, log hclog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "error", err)
		}
	}()
	log.Info("admin interface listening", "address", ln.Addr().String())
	return &Server{srv: srv, ln: ln}, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
