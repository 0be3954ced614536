# A first pipeline: DogStatsD over UDP in, every flush to stdout and to a
# JSON-lines file.
veneurd {
  hostname = env("HOSTNAME")
  interval = "10s"
}

source "dogstatsd" "local" {
  listen = ["udp://127.0.0.1:8126"]
}

aggregation {
  percentiles = [0.5, 0.9, 0.99]
  aggregates  = ["min", "max", "count", "avg"]
}

sink "debug" "stdout" {}

sink "localfile" "archive" {
  path = "/tmp/veneurd-flush.jsonl"
}
