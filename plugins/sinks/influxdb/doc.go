// Package influxdb will be a sink writing flushed points to InfluxDB (1.x
// /write, 2.x /api/v2/write, and other receivers of line protocol such as
// VictoriaMetrics) in line protocol. For now it holds the Encoder that turns
// points into request bodies; delivery (batching, compression, retries,
// HTTP) is the SDK's. NOTES.md describes the mapping.
//
// Events have no place in line protocol and are not written.
//
// Sketch of the sink's configuration, not built yet:
//
//	sink "influxdb" NAME {
//	  url              = "http://localhost:8086"  # required
//	  api              = "v1"                     # v1: /write?db=&rp=; v2: /api/v2/write?org=&bucket=
//	  database         = "veneur"                 # v1
//	  retention_policy = ""                       # v1, optional
//	  org              = ""                       # v2
//	  bucket           = ""                       # v2
//	  username         = ""                       # v1, optional
//	  password         = ""                       # v1, optional, sensitive
//	  token            = ""                       # v2, sensitive
//	  host_tag         = true                     # Encoder.NoHostTag = !host_tag
//	  message_field    = true                     # Encoder.NoMessage = !message_field
//	  # batching, compression, retries and TLS: the delivery layer's attributes
//	}
//
// Every request is made with precision=s: timestamps are Unix seconds.
package influxdb
