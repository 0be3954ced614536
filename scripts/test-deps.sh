#!/usr/bin/env bash
# Installs what the end-to-end tests use besides Go, into a cache outside the
# repository: the npm StatsD client hot-shots, and a build of Veneur v14.2.0
# (from its Go module) that TestPipelinesVeneur compares veneurd with. Each
# is skipped when already there; what cannot be installed is said, and the
# tests that need it then skip, naming what is missing.
set -euo pipefail
cache=${VENEURD_TEST_CACHE:-$HOME/.cache/veneurd-test}

hotshots() {
  if [[ -f $cache/npm/node_modules/hot-shots/package.json ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
      apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null ||
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

hotshots
veneur
