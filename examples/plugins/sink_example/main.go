// Command sink_example is a veneurd sink plugin, built outside veneurd
// against its SDK: it appends every flushed point to a file, one JSON object
// per line. README.md explains how to build, install and test it.
package main

import "github.com/veneurd/veneurd/sdk"

func main() { sdk.Serve(New()) }
