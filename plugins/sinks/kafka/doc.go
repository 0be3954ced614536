// Package kafka will be a sink writing flushed points and events to Kafka
// topics, one record each. For now it holds the Encoder that turns them into
// records (key and value) and point.proto, the schema of protobuf values;
// delivery (the client, batching, compression, retries) comes later.
// NOTES.md describes the records.
//
// Sketch of the sink's configuration, not built yet (topic attributes as in
// Veneur's kafka sink):
//
//	sink "kafka" NAME {
//	  brokers      = ["localhost:9092"]  # required
//	  metric_topic = "veneur_metrics"    # counters and gauges; "" writes none
//	  check_topic  = "veneur_checks"     # service checks (status points); "" writes none
//	  event_topic  = "veneur_events"     # events; "" writes none
//	  format       = "json"              # or "protobuf": Encoder.Format
//	  required_acks = "all"              # "none", "leader" or "all"
//	  # batching, compression, retries, TLS and SASL: the delivery layer's or
//	  # the client's attributes
//	}
package kafka
