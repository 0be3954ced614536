// Command veneurd-sink-influxdb is the influxdb sink as a plugin binary of
// its own: the code veneurd serves as its builtin influxdb sink, to ship and
// pin with `plugin "sink" "influxdb" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sinks/influxdb"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(influxdb.New()) }
