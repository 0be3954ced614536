// Command veneurd-source-otlp is the otlp source as a plugin binary of its
// own: the code veneurd serves as its builtin otlp source, to ship and pin
// with `plugin "source" "otlp" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sources/otlp"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(otlp.New()) }
