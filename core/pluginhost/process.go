// Package pluginhost runs plugin processes and keeps them running: it
// launches builtins by re-executing veneurd and external plugins from their
// path, speaks the sdk's gRPC contract to them, and restarts a process that
// dies, re-sending its configuration.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Launcher starts plugin processes.
type Launcher struct {
	// Self is the veneurd binary that serves builtins.
	Self   string
	Logger hclog.Logger
	// OnRestart, if set, is called with a block address each time a
	// supervised process is restarted.
	OnRestart func(address string)
	// StartTimeout bounds how long a process has to start and complete
	// the plugin handshake, when its Spec does not say (default
	// DefaultStartTimeout).
	StartTimeout time.Duration
}

// DefaultStartTimeout is how long a plugin process has to start when
// neither its Spec nor the Launcher says.
const DefaultStartTimeout = 10 * time.Second

// Spec says which plugin to run.
type Spec struct {
	Kind    string // sdk.KindSource or sdk.KindSink
	Type    string
	Address string // block address, names the process's logger
	// Path is an external plugin's binary; empty for builtins.
	Path string
	// SHA256 pins Path's checksum (hex): a binary that differs is refused.
	SHA256 string
	// Files are handed to the process as fds 3, 4, ... (sources' sockets).
	Files []*os.File
	// StartTimeout, if set, overrides the Launcher's.
	StartTimeout time.Duration
}

// Process is one running plugin process.
type Process struct {
	client *plugin.Client
	conn   *grpc.ClientConn
	Plugin pb.PluginClient
	Sink   pb.SinkClient
	Source pb.SourceClient
}

// Start launches a process for spec and connects to it.
func (l *Launcher) Start(spec Spec) (*Process, error) {
	var cmd *exec.Cmd
	var secure *plugin.SecureConfig
	if spec.Path == "" {
		cmd = exec.Command(l.Self, "plugin-serve", spec.Kind, spec.Type)
	} else {
		// A path without a slash would be searched for in $PATH, and a
		// relative one depends on the working directory: config makes
		// plugin paths absolute, and anything else is refused.
		if !filepath.IsAbs(spec.Path) {
			return nil, fmt.Errorf("plugin path %q is not absolute", spec.Path)
		}
		cmd = exec.Command(spec.Path)
		if spec.SHA256 != "" {
			sum, err := hex.DecodeString(spec.SHA256)
			if err != nil {
				return nil, fmt.Errorf("sha256 %q: %w", spec.SHA256, err)
			}
			secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		}
	}
	cmd.Env = append(os.Environ(), sdk.LogLevelEnv+"="+l.Logger.GetLevel().String())
	if os.Getenv("GOGC") == "" {
		// As for veneurd itself: a resident set near what is live.
		cmd.Env = append(cmd.Env, "GOGC=50")
	}
	cmd.ExtraFiles = spec.Files
	// Plugins live in their own process group, so that a terminal's Ctrl-C
	// or a supervisor signalling veneurd's group reaches veneurd alone, which
	// then stops them in order after a final flush; and they die with
	// veneurd rather than outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	timeout := spec.StartTimeout
	if timeout <= 0 {
		timeout = l.StartTimeout
	}
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		StartTimeout:     timeout,
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.HostPlugins(),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           l.Logger.Named(spec.Address),
		SyncStdout:       os.Stdout,
		SyncStderr:       os.Stderr,
	})
	rpc, err := client.Client()
	if err != nil {
		// The process may have children of its own, which would outlive
		// it and hold its output open: end its whole group.
		killGroup(cmd)
		client.Kill()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			actual, err := fileSHA256(spec.Path)
			if err != nil {
				actual = "unknown (" + err.Error() + ")"
			}
			return nil, fmt.Errorf("%s does not match its sha256: expected %s, the file's is %s; refusing to run it",
				spec.Path, spec.SHA256, actual)
		}
		if err.Error() == "timeout while waiting for plugin to start" {
			return nil, fmt.Errorf("start %s plugin %q: no plugin handshake within %s (plugin_start_timeout); the process and its children were killed", spec.Kind, spec.Type, timeout)
		}
		return nil, fmt.Errorf("start %s plugin %q: %w", spec.Kind, spec.Type, err)
	}
	raw, err := rpc.Dispense(spec.Kind)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("%s plugin %q: %w", spec.Kind, spec.Type, err)
	}
	conn, ok := raw.(*grpc.ClientConn)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("%s plugin %q: unexpected client %T", spec.Kind, spec.Type, raw)
	}
	p := &Process{client: client, conn: conn, Plugin: pb.NewPluginClient(conn)}
	switch spec.Kind {
	case sdk.KindSink:
		p.Sink = pb.NewSinkClient(conn)
	case sdk.KindSource:
		p.Source = pb.NewSourceClient(conn)
	}
	return p, nil
}

// Configure sends a block's values; the plugin's complaints come back as
// diagnostics.
func (p *Process) Configure(ctx context.Context, req *pb.ConfigureRequest) ([]*pb.Diagnostic, error) {
	resp, err := p.Plugin.Configure(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.Diagnostics, nil
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// Pid returns the process id.
func (p *Process) Pid() int {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Kill ends the process, gracefully first.
func (p *Process) Kill() { p.client.Kill() }

// fileSHA256 returns the hex sha256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// killGroup sends SIGKILL to the process group of cmd's process (plugins run
// with Setpgid, so the group is theirs alone).
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil && cmd.Process.Pid > 0 {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
