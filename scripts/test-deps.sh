#!/usr/bin/env bash
# Installs what the end-to-end tests use besides Go, into a cache outside the
# repository: the npm StatsD client hot-shots, a build of Veneur v14.2.0
# (from its Go module) that TestPipelinesVeneur compares veneurd with, and
# the real receivers that internal/receivers starts for the vendor sinks'
# tests: a build of VictoriaMetrics v1.151.0 (from its Go module) and
# Debian's prometheus, influxdb and graphite-carbon; and Debian's chromium,
# the browser TestStatusPage reads the status page with. Each is skipped when
# already there; what cannot be installed is said, and the tests that need it
# then skip, naming what is missing.
set -euo pipefail
cache=${VENEURD_TEST_CACHE:-$HOME/.cache/veneurd-test}

# aptupdate runs apt-get update once per run of this script, before the
# first apt-get install.
apt_updated=
aptupdate() {
  if [[ -z $apt_updated ]]; then
    apt-get update -qq && apt_updated=1
  fi
}

hotshots() {
  if [[ -f $cache/npm/node_modules/hot-shots/package.json ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
      aptupdate && apt-get install -y -qq nodejs npm >/dev/null ||
        echo "test-deps: apt-get could not install npm" >&2
    else
      echo "test-deps: npm not found; the hot-shots test will be skipped" >&2
      return 0
    fi
  fi
  mkdir -p "$cache/npm"
  if ! npm install --prefix "$cache/npm" --no-audit --no-fund --silent hot-shots@17 >&2; then
    echo "test-deps: npm could not install hot-shots; the hot-shots test will be skipped" >&2
  fi
}

# veneur builds cmd/veneur of github.com/stripe/veneur/v14@v14.2.0 into
# $cache/bin/veneur. Its go.mod has replace directives, so `go install
# module@version` refuses it: the module is copied out of the module cache,
# its vendor directory dropped, and built in place.
veneur() {
  if [[ -x $cache/bin/veneur ]]; then
    return 0
  fi
  local tmp dir
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  dir=$(cd "$tmp" && go mod download -json github.com/stripe/veneur/v14@v14.2.0 |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || dir=
  if [[ -z $dir || ! -d $dir ]]; then
    echo "test-deps: go mod download could not fetch Veneur v14.2.0; TestPipelinesVeneur will be skipped" >&2
    return 0
  fi
  cp -R "$dir" "$tmp/veneur"
  chmod -R u+w "$tmp/veneur"
  rm -rf "$tmp/veneur/vendor"
  mkdir -p "$cache/bin"
  echo "test-deps: building Veneur v14.2.0 (a few minutes, once)" >&2
  if (cd "$tmp/veneur" && GOFLAGS=-mod=mod go build -o "$cache/bin/veneur.tmp" ./cmd/veneur); then
    mv "$cache/bin/veneur.tmp" "$cache/bin/veneur"
  else
    rm -f "$cache/bin/veneur.tmp"
    echo "test-deps: Veneur v14.2.0 did not build; TestPipelinesVeneur will be skipped" >&2
  fi
}

# veneuremit builds cmd/veneur-emit of github.com/stripe/veneur/v14@v14.2.0
# into $cache/bin/veneur-emit, the same way as veneur above: the SSF source's
# tests send spans with it, over UDP and gRPC.
veneuremit() {
  if [[ -x $cache/bin/veneur-emit ]]; then
    return 0
  fi
  local tmp dir
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  dir=$(cd "$tmp" && go mod download -json github.com/stripe/veneur/v14@v14.2.0 |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || dir=
  if [[ -z $dir || ! -d $dir ]]; then
    echo "test-deps: go mod download could not fetch Veneur v14.2.0; the SSF source's veneur-emit tests will be skipped" >&2
    return 0
  fi
  cp -R "$dir" "$tmp/veneur"
  chmod -R u+w "$tmp/veneur"
  rm -rf "$tmp/veneur/vendor"
  mkdir -p "$cache/bin"
  echo "test-deps: building veneur-emit v14.2.0 (a few minutes, once)" >&2
  if (cd "$tmp/veneur" && GOFLAGS=-mod=mod go build -o "$cache/bin/veneur-emit.tmp" ./cmd/veneur-emit); then
    mv "$cache/bin/veneur-emit.tmp" "$cache/bin/veneur-emit"
  else
    rm -f "$cache/bin/veneur-emit.tmp"
    echo "test-deps: veneur-emit v14.2.0 did not build; the SSF source's veneur-emit tests will be skipped" >&2
  fi
}

# victoriametrics builds app/victoria-metrics of
# github.com/VictoriaMetrics/VictoriaMetrics@v1.151.0 into
# $cache/bin/victoria-metrics: copied out of the read-only module cache and
# built in place, as its own module (so with its go.mod's versions). Its
# go.mod asks for Go 1.26.6 and has no replace directives, and the module has
# no vendor directory, so it builds as it is with GOTOOLCHAIN=local.
victoriametrics() {
  if [[ -x $cache/bin/victoria-metrics ]]; then
    return 0
  fi
  local tmp dir
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  dir=$(cd "$tmp" && go mod download -json github.com/VictoriaMetrics/VictoriaMetrics@v1.151.0 |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || dir=
  if [[ -z $dir || ! -d $dir ]]; then
    echo "test-deps: go mod download could not fetch VictoriaMetrics v1.151.0; the tests that need it will be skipped" >&2
    return 0
  fi
  cp -R "$dir" "$tmp/vm"
  chmod -R u+w "$tmp/vm"
  mkdir -p "$cache/bin"
  echo "test-deps: building VictoriaMetrics v1.151.0 (about a minute, once)" >&2
  if (cd "$tmp/vm" && go build -o "$cache/bin/victoria-metrics.tmp" ./app/victoria-metrics); then
    mv "$cache/bin/victoria-metrics.tmp" "$cache/bin/victoria-metrics"
  else
    rm -f "$cache/bin/victoria-metrics.tmp"
    echo "test-deps: VictoriaMetrics v1.151.0 did not build; the tests that need it will be skipped" >&2
  fi
}

# debian installs Debian's prometheus (2.42), influxdb (1.6) and
# graphite-carbon for the receivers' tests, and chromium for the status
# page's, when one of their binaries is missing and this is root. apt must
# not start their services: the tests run their own instances on free ports,
# and a system instance would hold the default ports and write outside the
# tests' directories. A policy-rc.d that answers 101 ("action forbidden")
# keeps invoke-rc.d from starting them; the one there before, if any, is put
# back after.
debian() {
  local -a pkgs=()
  command -v prometheus >/dev/null || pkgs+=(prometheus)
  command -v influxd >/dev/null || pkgs+=(influxdb)
  command -v carbon-cache >/dev/null || pkgs+=(graphite-carbon)
  command -v chromium >/dev/null || pkgs+=(chromium)
  if ((${#pkgs[@]} == 0)); then
    return 0
  fi
  if ! command -v apt-get >/dev/null || [[ $(id -u) != 0 ]]; then
    echo "test-deps: ${pkgs[*]} missing (install them with apt-get as root); the tests that need them will be skipped" >&2
    return 0
  fi
  local policy=/usr/sbin/policy-rc.d saved
  saved=$(mktemp)
  if [[ -e $policy ]]; then
    cp -p "$policy" "$saved"
  else
    rm -f "$saved"
  fi
  trap 'if [[ -e $saved ]]; then mv "$saved" "$policy"; else rm -f "$policy"; fi' RETURN
  printf '#!/bin/sh\n# test-deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  echo "test-deps: installing ${pkgs[*]} with apt-get" >&2
  if ! { aptupdate && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }; then
    echo "test-deps: apt-get could not install ${pkgs[*]}" >&2
  fi
  local b
  for b in prometheus influxd carbon-cache chromium; do
    command -v "$b" >/dev/null ||
      echo "test-deps: $b still missing; the tests that need it will be skipped" >&2
  done
}

# consulagent builds the Consul agent v1.20.6 from its Go module into
# $cache/bin/consul, unless a consul is on PATH: Consul is not in Debian. Its
# go.mod points its nested modules at folders the module zip does not hold;
# without its replace block they resolve to the versions it requires. About
# ten minutes on two cores, once.
consulagent() {
  if [[ -x $cache/bin/consul ]] || type -P consul >/dev/null; then
    return 0
  fi
  local tmp dir
  tmp=$(mktemp -d)
  trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' RETURN
  dir=$(cd "$tmp" && go mod download -json github.com/hashicorp/consul@v1.20.6 |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || dir=
  if [[ -z $dir || ! -d $dir ]]; then
    echo "test-deps: go mod download could not fetch Consul v1.20.6; the Consul tests will be skipped" >&2
    return 0
  fi
  cp -R "$dir" "$tmp/consul"
  chmod -R u+w "$tmp/consul"
  sed -i '/^replace (/,/^)/d' "$tmp/consul/go.mod"
  mkdir -p "$cache/bin"
  echo "test-deps: building Consul v1.20.6 (about ten minutes, once)" >&2
  if (cd "$tmp/consul" && GOFLAGS=-mod=mod go build -o "$cache/bin/consul.tmp" .); then
    mv "$cache/bin/consul.tmp" "$cache/bin/consul"
  else
    rm -f "$cache/bin/consul.tmp"
    echo "test-deps: Consul v1.20.6 did not build; the Consul tests will be skipped" >&2
  fi
}

# nodeexporter installs Debian's prometheus-node-exporter (1.5), a scrape
# target of the openmetrics source's tests, when it is missing and this is
# root. As in debian above, a policy-rc.d that answers 101 keeps apt from
# starting its service: the tests run their own on free ports.
nodeexporter() {
  if command -v prometheus-node-exporter >/dev/null; then
    return 0
  fi
  if ! command -v apt-get >/dev/null || [[ $(id -u) != 0 ]]; then
    echo "test-deps: prometheus-node-exporter missing (install it with apt-get as root); the tests that need it will be skipped" >&2
    return 0
  fi
  local policy=/usr/sbin/policy-rc.d saved
  saved=$(mktemp)
  if [[ -e $policy ]]; then
    cp -p "$policy" "$saved"
  else
    rm -f "$saved"
  fi
  trap 'if [[ -e $saved ]]; then mv "$saved" "$policy"; else rm -f "$policy"; fi' RETURN
  printf '#!/bin/sh\n# test-deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  echo "test-deps: installing prometheus-node-exporter with apt-get" >&2
  if ! { aptupdate && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null; }; then
    echo "test-deps: apt-get could not install prometheus-node-exporter; the tests that need it will be skipped" >&2
  fi
}

hotshots
veneur
veneuremit
victoriametrics
debian
nodeexporter
consulagent
