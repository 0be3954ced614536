// Command veneurd-sink-prometheus_remote_write is the prometheus_remote_write
// sink as a plugin binary of its own: the code veneurd serves as its builtin,
// to ship and pin with `plugin "sink" "prometheus_remote_write" { path sha256 }`.
package main

import (
	remotewrite "github.com/veneurd/veneurd/plugins/sinks/prometheus_remote_write"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(remotewrite.New()) }
