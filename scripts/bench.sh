#!/usr/bin/env bash
# End-to-end benchmarks of veneurd against the targets in BENCHMARKS.md: the
# built binary on a blackhole pipeline, loaded and measured by `veneurd bench`
# on this machine. Each scenario runs RUNS times (default 3); the rows are
# printed as they come, then the medians. Usage: scripts/bench.sh [scenario...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${VENEURD:-bin/veneurd}
runs=${RUNS:-3}
udp=127.0.0.1:${BENCH_UDP_PORT:-18226}
admin=127.0.0.1:${BENCH_ADMIN_PORT:-18227}
grpc=127.0.0.1:${BENCH_GRPC_PORT:-18228}
veneur_stats=127.0.0.1:${BENCH_VENEUR_STATS_PORT:-18229}
veneur=${VENEUR:-${VENEURD_TEST_CACHE:-$HOME/.cache/veneurd-test}/bin/veneur}
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

start_daemon() { # interval [routed]
  cat > "$work/pipeline.hcl" <<HCL
veneurd {
  interval     = "$1"
  http_address = "$admin"
}
source "dogstatsd" "bench" {
  listen            = ["udp://$udp"]
  read_buffer_bytes = 4194304
}
HCL
  if [[ ${2:-} == routed ]]; then routed_sinks >>"$work/pipeline.hcl"; else echo 'sink "blackhole" "null" {}' >>"$work/pipeline.hcl"; fi
  if [[ ${2:-} == drop ]]; then printf 'drop "bench_counters" {\n  match {\n    name = prefix("bench.counter.")\n  }\n}\n' >>"$work/pipeline.hcl"; fi
  "$bin" run -config "$work/pipeline.hcl" -log-level warn 2>"$work/daemon.log" &
  daemon=$!
  for _ in $(seq 100); do curl -sf "http://$admin/healthcheck" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "veneurd did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}
# routed_sinks: routing of examples/routing.hcl's size over the bench's
# names (bench.counter.N, bench.timer.N, ...; tags t1..t3): three sinks,
# three rules, a drop rule every sample is checked against (and none
# matches), tag policies on two sinks.
routed_sinks() {
  cat <<'HCL'
sink "blackhole" "vendor_a" {
  add_tags   = { env = "bench" }
  strip_tags = ["t3"]
}
sink "blackhole" "vendor_b" {
  max_tags        = 5
  max_name_length = 200
}
sink "blackhole" "archive" {}
metric_sink_routing "counters" {
  match {
    name = prefix("bench.counter.")
  }
  matched     = [sink.blackhole.vendor_a]
  not_matched = [sink.blackhole.vendor_b]
}
metric_sink_routing "p99" {
  match {
    name = regex("^bench\\.timer\\..*99percentile$")
  }
  match {
    tags = [exact("t1:v0")]
  }
  matched = [sink.blackhole.archive]
}
metric_sink_routing "not_canary" {
  match {
    tags = [unset(prefix("canary"))]
  }
  matched = [sink.blackhole.archive]
}
drop "canary" {
  match {
    tags = [prefix("canary")]
  }
}
HCL
}

stop_daemon() { kill "$daemon"; wait "$daemon" 2>/dev/null || true; }

bench() { "$bin" bench -target "udp://$udp" -admin "http://$admin" -json "$@"; }

# metric NAME: a value from the daemon's /metrics, as an integer (the exposition
# format may write large values with an exponent).
metric() { curl -s "http://$admin/metrics" | awk -v n="$1" '$1 == n { printf "%.0f\n", $2 }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

field() { python3 -c "import json,sys; [print(json.loads(l).get('$1', '')) for l in sys.stdin if l.startswith('{')]"; }

scenario() { echo; echo "== $*"; }

run_throughput() {
  scenario "T1: workload W, 25 lines per datagram, highest rate kept up (< 0.1% drops, every line accounted for)"
  start_daemon 10s
  for _ in $(seq "$runs"); do
    bench -rate 1000000 -duration 5s -find-max | tail -1 | tee -a "$work/t1"
  done
  stop_daemon
}

run_routing() { run_routing_throughput; run_routing_flush; }

run_routing_throughput() {
  scenario "R1: T1 with routing of examples/routing.hcl's size, against T1 without, in alternating runs"
  for _ in $(seq "$runs"); do
    for kind in plain routed; do
      start_daemon 10s "$kind"
      bench -rate 1000000 -duration 5s -find-max | tail -1 | sed "s/^{/{\"pipeline\":\"$kind\",/"
      stop_daemon
    done
  done
}

# stall_tap BLOCK: a tap on BLOCK that never reads: a curl stopped with
# SIGSTOP, whose socket fills; "none" for no tap. release_tap ends it.
stall_tap() {
  tap=
  [[ $1 == none ]] && return
  curl -sN "http://$admin/api/tap?block=$1" >/dev/null &
  tap=$!
  sleep 1 # the tap is set in the source process
  kill -STOP "$tap"
}
release_tap() {
  [[ -z $tap ]] && return
  kill -CONT "$tap"; kill "$tap"; wait "$tap" 2>/dev/null || true
}

# tap_throughput: T1 with a tap that never reads (its socket fills, then
# the tap loses lines) on the sink, and on the source for every name,
# against T1 untapped, in alternating runs.
run_tap_throughput() {
  scenario "TAP: T1 untapped, with a stalled tap on the sink, and with one on the source (every name), in alternating runs"
  for _ in $(seq "$runs"); do
    for kind in none sink.blackhole.null source.dogstatsd.bench; do
      start_daemon 10s
      stall_tap "$kind"
      result=$(bench -rate 1000000 -duration 5s -find-max | tail -1)
      lost=$(metric "veneur_tap_lines_dropped_total{block=\"$kind\"}")
      echo "$result" | sed "s/^{/{\"tap\":\"$kind\",\"tap_lines_dropped\":${lost:-0},/"
      release_tap
      stop_daemon
    done
  done
}

# tap_efficiency: the cost of the same stalled taps at a fixed 200,000
# lines/s, in CPU: steadier than the highest rate kept up, whose runs spread
# by a third.
run_tap_efficiency() {
  scenario "TAP': CPU at 200,000 lines/s untapped, with a stalled tap on the sink, and on the source, in alternating runs"
  for _ in $(seq "$runs"); do
    for kind in none sink.blackhole.null source.dogstatsd.bench; do
      start_daemon 10s
      stall_tap "$kind"
      bench -rate 200000 -duration "${TAP_DURATION:-30s}" -settle 12s | tail -1 | sed "s/^{/{\"tap\":\"$kind\",/"
      release_tap
      stop_daemon
    done
  done
}

run_routing_flush() {
  scenario "R2: flush 1,000,000 counter series, unrouted to one sink and routed to three (one sample per series, sent within one interval; flush figures from the daemon's self-metrics)"
  for _ in $(seq "$runs"); do
    for kind in plain routed; do
      start_daemon 10s "$kind"
      align_to_interval 10
      bench -series 1000000 -mix counter=100 -rate 250000 -duration 4s -settle 5s >"$work/row"
      sent=$(grep '^{' "$work/row" | field sent)
      # Wait for what the daemon processed: a run that lost datagrams in
      # the kernel (its row says kept_up false) would never flush them.
      processed=$(grep '^{' "$work/row" | field processed)
      first=vendor_a
      [[ $kind == plain ]] && first=null
      for _ in $(seq 300); do
        flushed=$(metric "veneur_sink_metrics_flushed_total{sink=\"sink.blackhole.$first\"}")
        [[ ${flushed:-0} -ge $processed ]] && break
        sleep 0.1
      done
      sleep 1 # every sink's flush has ended
      slowest=0
      for k in null vendor_a vendor_b archive; do
        d=$(metric "veneur_sink_metric_flush_total_duration_ns{sink=\"sink.blackhole.$k\"}")
        (( ${d:-0} > slowest )) && slowest=$d
      done
      echo "{\"pipeline\":\"$kind\",\"series\":\"counter\",\"count\":$sent,\"flush_ns\":$(metric veneur_flush_duration_ns),\"total_flush_ns\":$(metric veneur_flush_total_duration_ns),\"slowest_sink_flush_ns_total\":$slowest,\"first_sink_points\":$flushed,\"ingest\":$(grep '^{' "$work/row")}"
      stop_daemon
    done
  done
}

# align_to_interval SECONDS: sleeps until half a second past the next
# multiple of the interval, when veneurd has just flushed, so that a few
# seconds of traffic land in one interval.
align_to_interval() {
  sleep "$(python3 -c "import time; print($1 + 0.5 - time.time() % $1)")"
}

run_drop_memory() {
  scenario "R3: RSS of veneurd and its plugins: idle, then 100,000 counter series that a drop rule takes, and the same series kept"
  for _ in $(seq "$runs"); do
    start_daemon 10s drop
    sleep 3
    idle=$(rss_now)
    sample_rss &
    sampler=$!
    bench -series 100000 -mix counter=100 -rate 75000 -duration 4s -settle 5s >"$work/row"
    kill $sampler; wait $sampler 2>/dev/null || true
    dropped=$(sort -n "$work/rss" | tail -1)
    rule=$(metric 'veneur_worker_metrics_dropped_total{reason="dropped_by_rule",rule="bench_counters"}')
    stop_daemon
    start_daemon 10s
    sleep 3
    sample_rss &
    sampler=$!
    bench -series 100000 -mix counter=100 -rate 75000 -duration 4s -settle 5s >/dev/null
    kill $sampler; wait $sampler 2>/dev/null || true
    kept=$(sort -n "$work/rss" | tail -1)
    stop_daemon
    echo "{\"idle_rss_mb\":$idle,\"peak_rss_mb_dropped\":$dropped,\"peak_rss_mb_kept\":$kept,\"dropped_by_rule\":${rule:-0},\"ingest\":$(grep '^{' "$work/row")}"
  done
}

run_single() {
  scenario "T2: workload W, 1 line per datagram: as fast as one sender can, then 100,000 datagrams/s"
  start_daemon 10s
  for _ in $(seq "$runs"); do bench -rate 0 -lines-per-datagram 1 -duration 10s -settle 12s; done
  for _ in $(seq "$runs"); do bench -rate 100000 -lines-per-datagram 1 -duration 10s -settle 12s; done
  stop_daemon
}

run_efficiency() {
  scenario "T3: workload W at 200,000 lines/s, 25 lines per datagram"
  start_daemon 10s
  for _ in $(seq "$runs"); do bench -rate 200000 -duration 10s -settle 12s; done
  stop_daemon
}

run_memory() {
  scenario "T4/T5: active series held and flushed (interval 10s; flush figures from the daemon's self-metrics)"
  for spec in "counter 1000000 counter=100" "timer 100000 timer=100" "set 100000 set=100"; do
    set -- $spec
    for _ in $(seq "$runs"); do
      start_daemon 10s
      sample_rss &
      sampler=$!
      # Three samples per series, within one interval or two.
      bench -series "$2" -mix "$3" -rate $(( $2 * 3 / 4 )) -duration 4s -settle 5s >"$work/row"
      # Wait for the flushes of those samples, then read what they cost.
      for _ in $(seq 300); do
        flushed=$(metric 'veneur_sink_metrics_flushed_total{sink="sink.blackhole.null"}')
        [[ ${flushed:-0} -ge $2 ]] && break
        sleep 0.1
      done
      sleep 1
      kill $sampler; wait $sampler 2>/dev/null || true
      echo "{\"series\":\"$1\",\"count\":$2,\"last_flush_ns\":$(metric veneur_flush_duration_ns),\"total_flush_ns\":$(metric veneur_flush_total_duration_ns),\"sink_flush_ns_total\":$(metric 'veneur_sink_metric_flush_total_duration_ns{sink="sink.blackhole.null"}'),\"peak_rss_mb\":$(sort -n "$work/rss" | tail -1),\"ingest\":$(grep '^{' "$work/row")}"
      stop_daemon
    done
  done
}

# rss_now: the sum of the resident sets of the daemon's processes, in MB.
rss_now() {
  for p in $daemon $(pgrep -P "$daemon"); do awk '/VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null; done |
    awk '{ s += $1 } END { print int(s / 1024) }'
}

# sample_rss: every 100ms, the sum of the resident sets of the daemon's
# processes, in MB, into $work/rss.
sample_rss() {
  : >"$work/rss"
  while true; do
    rss_now >>"$work/rss"
    sleep 0.1
  done
}

run_flush_under_load() {
  scenario "T5: ingest at 200,000 lines/s while 1,000,000 counter series flush: nothing lost"
  start_daemon 10s
  bench -series 1000000 -mix counter=100 -rate 800000 -duration 2s -settle 3s >/dev/null
  bench -rate 200000 -duration 20s -settle 12s
  stop_daemon
}

# run_global: one global, and 8 locals played by `veneurd bench-global`, each
# forwarding 50,000 timer series (10 samples each) and 50,000 veneurglobalonly
# counters at the start of every 10 s interval. A veneurd global and, when
# the binary is there (scripts/test-deps.sh builds it), a Veneur v14.2.0
# global, in alternating runs; each run is three intervals. About 45 s a run
# and target, so not in the default list.
run_global() {
  scenario "G1: one global merging 8 locals x (50,000 timers of 10 samples + 50,000 global counters) per 10 s interval: veneurd, then Veneur v14.2.0 (if built), alternating"
  [[ -x $veneur ]] || echo "no Veneur at $veneur (scripts/test-deps.sh builds it): veneurd alone"
  : >"$work/global"
  for _ in $(seq "$runs"); do
    start_global
    global_run -target "$grpc" -admin "http://$admin" -pid "$daemon"
    stop_daemon
    if [[ -x $veneur ]]; then
      start_veneur_global
      global_run -protocol veneur -target "$grpc" -admin "" -veneur-stats "$veneur_stats" -pid "$daemon"
      stop_daemon
    fi
  done
  global_medians "$work/global"
}

# global_run ARGS: one run of bench-global, its lines kept in $work/global. A
# run that fails (a batch not acknowledged within three intervals, a count of
# series merged that is not what was sent) is reported, and its summary
# marked so that the medians leave it out.
global_run() {
  local before
  before=$(wc -l <"$work/global")
  if ! "$bin" bench-global "$@" | tee -a "$work/global"; then
    echo "bench-global failed: this run is left out of the medians"
    sed -i "$((before + 1)),\$ s/\"summary\":true/\"summary\":\"failed\"/" "$work/global"
  fi
}

# global_medians FILE: the median of the runs' summaries in FILE, with their
# range, for each global; and veneurd's figures over Veneur's.
global_medians() {
  python3 - "$1" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if '"summary":true' in l]
def med(v):
    v = sorted(v)
    return v[(len(v) - 1) // 2], v[0], v[-1]
fig = {}
for proto in ("veneurd", "veneur"):
    rs = [r for r in runs if r["protocol"] == proto]
    if not rs:
        continue
    f = fig[proto] = {
        "series/s": med([r["series_per_s"]["median"] for r in rs]),
        "merge s": med([r["merge_s"]["median"] for r in rs]),
        "busy s": med([r["busy_s"]["median"] for r in rs]),
        "merge CPU s": med([r["merge_cpu_s"]["median"] for r in rs]),
        "CPU s an interval": med([r["cpu_s"]["median"] for r in rs]),
        "cores": med([r["cores"] for r in rs]),
        "peak RSS MB": med([r["peak_rss_bytes"] / 2**20 for r in rs]),
        "sender CPU s": med([r["sender_cpu_s"]["median"] for r in rs]),
    }
    print(f"{proto} global, {len(rs)} runs, kept up in {sum(r['kept_up'] for r in rs)}, every count right in {sum(r['counts_right'] for r in rs)}:")
    for k, (m, lo, hi) in f.items():
        print(f"  {k}: {m:.3f} [{lo:.3f}-{hi:.3f}]")
if len(fig) == 2:
    print("veneurd / Veneur (medians): " + ", ".join(f"{k} {fig['veneurd'][k][0] / fig['veneur'][k][0]:.3f}" for k in fig["veneurd"] if fig["veneur"][k][0]))
PY
}

# start_global: a veneurd global, receiving on $grpc, flushing to a blackhole.
start_global() {
  cat > "$work/global.hcl" <<HCL
veneurd {
  interval     = "10s"
  http_address = "$admin"
}
receive {
  grpc_address = "$grpc"
}
sink "blackhole" "null" {}
HCL
  "$bin" run -config "$work/global.hcl" -log-level warn 2>"$work/daemon.log" &
  daemon=$!
  for _ in $(seq 100); do curl -sf "http://$admin/healthcheck" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "veneurd did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}

# start_veneur_global: a Veneur global, receiving on $grpc: veneurd's
# default percentiles and aggregates, a worker per core, its own metrics to
# $veneur_stats (where bench-global counts what it imported), and its
# debug sink, which discards what it is given below the debug log level: its
# flush computes every point, as veneurd's does for the blackhole.
start_veneur_global() {
  cat > "$work/veneur.yaml" <<YAML
hostname: global
interval: 10s
synchronize_with_interval: true
grpc_address: "$grpc"
http_address: "$admin"
stats_address: "$veneur_stats"
num_workers: $(nproc)
percentiles: [0.5, 0.75, 0.99]
aggregates: [min, max, count]
metric_sinks:
  - kind: debug
    name: discard
YAML
  "$veneur" -f "$work/veneur.yaml" >"$work/daemon.log" 2>&1 &
  daemon=$!
  for _ in $(seq 100); do curl -sf "http://$admin/healthcheck" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "Veneur did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}

scenarios=${*:-throughput single efficiency memory flush_under_load routing drop_memory}
make -s build
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024/1024) " GiB"}' /proc/meminfo), $(uname -r), $(go version | cut -d' ' -f3)"
for s in $scenarios; do "run_$s"; done
