#!/bin/sh
# Runs every fuzz target for SECONDS (default 600) each, JOBS (default 2) at a
# time, at low priority, after seeding the corpora from this machine's unit
# files and building all targets once. The built binaries are run directly,
# so edits made to the engine during a run do not trigger rebuilds. Logs go
# to fuzz/logs/<target>.log; a crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script exit non-zero.
# Usage: [FUZZ_NO_BUILD=1] fuzz/run-all.sh [SECONDS] [JOBS] [TARGET]...
set -eu
cd "$(dirname "$0")"
secs="${1:-600}"; jobs="${2:-2}"
if [ $# -gt 2 ]; then shift 2; targets="$*"; else targets=$(cargo +nightly fuzz list); fi
export FLINT_SKIP_PLUGIN_BUILD=1
./seed-corpus.sh >/dev/null
# FUZZ_NO_BUILD=1 runs the binaries already built.
[ -n "${FUZZ_NO_BUILD:-}" ] || cargo +nightly fuzz build -s none
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
export secs bin
printf '%s\n' $targets | xargs -P "$jobs" -I{} sh -c '
    mkdir -p artifacts/{}
    start=$(date +%s)
    if nice -n 19 "$bin/{}" -artifact_prefix=artifacts/{}/ -max_total_time="$secs" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 corpus/{} >logs/{}.log 2>&1
    then r=ok; else r=FAILED; fi
    runs=$(sed -n "s/^stat::number_of_executed_units: *//p" logs/{}.log)
    echo "{}: $r after $(( $(date +%s) - start )) s, $runs runs"
    [ $r = ok ]'
