// Command veneurd-source-ssf is the ssf source as a plugin binary of its
// own: the code veneurd serves as its builtin ssf source, to ship and pin
// with `plugin "source" "ssf" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sources/ssf"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(ssf.New()) }
