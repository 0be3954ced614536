# The pipeline `veneurd run` uses when no -config is given: DogStatsD on
# UDP port 8126, a 10 s interval, each flush printed to standard output.
veneurd {
  interval = "10s"
  # Keep the demo's output to what you send; pipelines flush veneurd's own
  # metrics (veneur.*) by default.
  self_metrics = false
}

source "dogstatsd" "default" {
  listen = ["udp://127.0.0.1:8126"]
}

sink "debug" "stdout" {}
