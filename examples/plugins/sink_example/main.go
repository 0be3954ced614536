// Command sink_example is a veneurd sink plugin, built outside veneurd
// against its SDK: it POSTs flushed points to an HTTP endpoint, in gzipped
// batches of JSON lines, with retries. README.md explains how to build,
// install and test it.
package main

import "github.com/veneurd/veneurd/sdk"

func main() { sdk.Serve(New()) }
