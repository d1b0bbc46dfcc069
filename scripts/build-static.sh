#!/usr/bin/env bash
# Builds a statically linked flint (glibc, crt-static) that runs with
# nothing else on the machine: no libc, no loader, no files but its units.
#   scripts/build-static.sh [--release]
# Default profile `static` (unoptimised, no debug info: quick, what
# tests/static.rs runs); --release builds the optimised one to ship. Prints
# the binary's path and size.
#
# A musl build is the same with `--target x86_64-unknown-linux-musl` once
# that target is installed (`rustup target add x86_64-unknown-linux-musl`).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=static
[[ "${1:-}" == "--release" ]] && profile=release
target=x86_64-unknown-linux-gnu
# With an explicit --target, RUSTFLAGS reach only the target's crates, not
# build scripts and proc macros, which stay dynamic.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --locked --profile "$profile" --target "$target" -p flint
bin="${CARGO_TARGET_DIR:-target}/$target/$profile/flint"
echo "$bin: $(stat -c %s "$bin") bytes"
