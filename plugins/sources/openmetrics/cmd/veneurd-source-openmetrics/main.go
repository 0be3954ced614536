// Command veneurd-source-openmetrics is the openmetrics source as a plugin
// binary of its own: the code veneurd serves as its builtin openmetrics
// source, to ship and pin with `plugin "source" "openmetrics" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sources/openmetrics"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(openmetrics.New()) }
