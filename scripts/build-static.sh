#!/usr/bin/env bash
# Builds a statically linked flint that runs with nothing else on the
# machine: no libc, no loader, no files but its units.
#   scripts/build-static.sh [--release]
# With musl (the target x86_64-unknown-linux-musl, added with rustup when
# missing, and musl-gcc from Debian's musl-tools for wasmtime's C helper);
# where either cannot be had, with glibc linked statically (crt-static).
# Default profile `static` (unoptimised, no debug info: quick, what
# tests/static.rs runs); --release builds the optimised one to ship.
# The binary is position-dependent (no relocations to apply at start: about
# 0.9 MiB less resident memory, see bench/README.md); --pie builds a
# static-pie binary instead, whose address is randomised.
# The functions are laid out in the order they first run
# (scripts/order-functions.sh: builds, traces, relinks), so that an idle
# flint maps less of its code.
# The binary is copied to target/static/flint (--release:
# target/release-static/flint, what `make` installs); its path and size are
# printed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=static
out=static
model="-C relocation-model=static"
for arg in "$@"; do
  case "$arg" in
    --release) profile=release; out=release-static ;;
    --pie) model="" ;;
    *) echo "usage: $0 [--release] [--pie]" >&2; exit 2 ;;
  esac
done
# With an explicit --target, RUSTFLAGS reach only the target's crates,
# not build scripts and proc macros.
export RUSTFLAGS="${RUSTFLAGS:-} $model"
musl=x86_64-unknown-linux-musl
has_musl() { rustup target list --installed 2>/dev/null | grep -qx "$musl"; }
if ! has_musl && command -v rustup >/dev/null; then
  timeout 300 rustup target add "$musl" || true
fi
if has_musl && command -v musl-gcc >/dev/null; then
  target=$musl
else
  echo "build-static: no musl target or musl-gcc here; linking glibc statically" >&2
  target=x86_64-unknown-linux-gnu
  export RUSTFLAGS="$RUSTFLAGS -C target-feature=+crt-static"
fi
dir="${CARGO_TARGET_DIR:-target}"
bin="$dir/$target/$profile/flint"
# Functions laid out in the order they first run.
scripts/order-functions.sh "$bin" -- \
  "${CARGO:-cargo}" build --locked --profile "$profile" --target "$target" -p flint
mkdir -p "$dir/$out"
cp "$bin" "$dir/$out/flint"
cp "$bin.order" "$dir/$out/flint.order"
echo "$bin ($target): $(stat -c %s "$bin") bytes; copied to $dir/$out/flint"
