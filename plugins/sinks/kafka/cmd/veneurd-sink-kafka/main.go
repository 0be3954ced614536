// Command veneurd-sink-kafka is the kafka sink as a plugin binary of its
// own: the code veneurd serves as its builtin kafka sink, to ship and pin
// with `plugin "sink" "kafka" { path sha256 }`.
package main

import (
	"github.com/veneurd/veneurd/plugins/sinks/kafka"
	"github.com/veneurd/veneurd/sdk"
)

func main() { sdk.Serve(kafka.New()) }
