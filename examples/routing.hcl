# Routing: DogStatsD in, three sinks, each getting its own part of every
# flush. plugins/routers/match/README.md describes every block used here.
#
# Where a point goes:
#   - production traffic goes to the vendor, development traffic and
#     veneurd's own metrics to stdout (rule "production");
#   - payments metrics, and the slow end of every latency, also go to the
#     archive (rules "payments_archive" and "latency_archive");
#   - debug.* metrics and load-test traffic are never aggregated at all
#     (drop "noise").
veneurd {
  hostname = env("HOSTNAME")
  interval = "10s"
}

source "dogstatsd" "local" {
  listen = ["udp://127.0.0.1:8126"]
}

aggregation {
  percentiles = [0.5, 0.99]
  aggregates  = ["min", "max", "count"]
}

# Stands in for a metrics vendor's sink (a third-party plugin in a real
# deployment). Its tag policy adds the datacenter, strips the tags that would
# cost a series per host or per request, and keeps from it what the vendor
# would reject: the limits are counted in
# veneur.sink.metrics_dropped_total{sink:sink.blackhole.vendor,reason}.
sink "blackhole" "vendor" {
  add_tags        = { datacenter = "eu-west-1" }
  strip_tags      = ["host", "request_id"]
  max_name_length = 200
  max_tag_length  = 200
  max_tags        = 50
}

# A JSON-lines archive. Its points are tagged "archived" (a tag without a
# value) and lose their pod tag; the other sinks' points are not changed.
sink "localfile" "archive" {
  path       = "/tmp/veneurd-routing-archive.jsonl"
  add_tags   = { archived = "" }
  strip_tags = ["pod"]
}

# For people watching: no tag policy, points as they were flushed.
sink "debug" "stdout" {}

# Tag matchers in one match block are ANDed: a point goes to the vendor when
# it is tagged neither env:dev nor veneurd:self (veneurd's own metrics are
# routed like any other point); every other point goes to stdout.
metric_sink_routing "production" {
  match {
    tags = [unset(exact("env:dev")), unset(exact("veneurd:self"))]
  }
  matched     = [sink.blackhole.vendor]
  not_matched = [sink.debug.stdout]
}

# Match blocks are ORed: a pay.* name, or the team:payments tag. Rules are
# united, so these points go to the archive as well as where "production"
# sends them.
metric_sink_routing "payments_archive" {
  match {
    name = prefix("pay.")
  }
  match {
    tags = [exact("team:payments")]
  }
  matched = [sink.localfile.archive]
}

# Rules see flushed names: of a timer or histogram "x", only x.99percentile
# and x.max are archived, and only outside development.
metric_sink_routing "latency_archive" {
  match {
    name = regex("\\.(99percentile|max)$")
    tags = [unset(exact("env:dev"))]
  }
  matched = [sink.localfile.archive]
}

# Drop rules run in the source, on each sample as it is read, before it is
# aggregated: a dropped sample costs no memory and no flush time. They see the
# name as sent (debug.x, never debug.x.max) and are counted in
# veneur.worker.metrics_dropped_total{reason:dropped_by_rule,rule:noise}.
drop "noise" {
  match {
    name = prefix("debug.")
  }
  match {
    tags = [exact("env:loadtest")]
  }
}
