#!/usr/bin/env bash
# Installs what the end-to-end tests use besides Go, into a cache outside the
# repository: the npm StatsD client hot-shots. Without npm it says so; the
# tests that need it then skip, naming what is missing.
set -euo pipefail
cache=${VENEURD_TEST_CACHE:-$HOME/.cache/veneurd-test}
if [[ -f $cache/npm/node_modules/hot-shots/package.json ]]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null ||
      echo "test-deps: apt-get could not install npm" >&2
  else
    echo "test-deps: npm not found; the hot-shots test will be skipped" >&2
    exit 0
  fi
fi
mkdir -p "$cache/npm"
if ! npm install --prefix "$cache/npm" --no-audit --no-fund --silent hot-shots@17 >&2; then
  echo "test-deps: npm could not install hot-shots; the hot-shots test will be skipped" >&2
fi
