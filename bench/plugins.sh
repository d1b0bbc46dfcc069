#!/usr/bin/env bash
# Measures what flint's WebAssembly policy plugins cost, in one run: the
# time a cached plugin takes to be ready, the decision cost (p50/p99) with
# 0, 1 and 3 plugins, and Accept=yes throughput of a real `flint run` with
# the same three chains. Release build; results go to stdout as Markdown
# tables (bench/README.md keeps a copy). Extra arguments are passed on:
#   bench/plugins.sh [--decisions N] [--seconds S] [--clients N] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
# Functions laid out in the order they first run, as bench/activation.sh builds flint.
scripts/order-functions.sh target/release/flint -- cargo build --release -p flint -p flint-bench --bins
exec target/release/flint-bench-plugins "$@"
