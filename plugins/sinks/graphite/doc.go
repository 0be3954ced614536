// Package graphite will be a sink writing flushed points to Graphite's
// Carbon (and other receivers of its plaintext protocol, such as
// VictoriaMetrics or go-carbon) as tagged series. For now it holds the
// Encoder that turns points into lines; delivery (the connection, batching,
// retries) is the SDK's. NOTES.md describes the mapping.
//
// Events and service check messages have no place in Graphite and are not
// written.
//
// Sketch of the sink's configuration, not built yet:
//
//	sink "graphite" NAME {
//	  address  = "tcp://localhost:2003"  # Carbon's plaintext receiver
//	  prefix   = ""                      # Encoder.Prefix, e.g. "veneur."
//	  host_tag = true                    # Encoder.NoHostTag = !host_tag
//	  # batching, retries and TLS: the delivery layer's attributes
//	}
package graphite
