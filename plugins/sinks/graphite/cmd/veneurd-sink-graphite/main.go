// Command veneurd-sink-graphite is the graphite sink as a plugin binary of
// its own: the code veneurd serves as its builtin graphite sink, to ship and
// pin with `plugin "sink" "graphite" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sinks/graphite"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(graphite.New()) }
