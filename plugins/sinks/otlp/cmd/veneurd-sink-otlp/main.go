// Command veneurd-sink-otlp is the otlp sink as a plugin binary of its own:
// the code veneurd serves as its builtin otlp sink, to ship and pin with
// `plugin "sink" "otlp" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sinks/otlp"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(otlp.New()) }
