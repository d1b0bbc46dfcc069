#!/bin/sh
# Builds flint-bench in release mode and runs it: loads 10,000 generated
# units and this machine's system unit directory with flint's engine, and
# (with --reference, the default here) times systemd-analyze verify once on
# the same trees. Extra arguments go to flint-bench (see bench/README.md).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p flint-bench
exec target/release/flint-bench --reference "$@"
