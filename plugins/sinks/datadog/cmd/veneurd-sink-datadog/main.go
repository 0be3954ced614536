// Command veneurd-sink-datadog is the datadog sink as a plugin binary of its
// own: the code veneurd serves as its builtin datadog sink, to ship and pin
// with `plugin "sink" "datadog" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sinks/datadog"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(datadog.New()) }
