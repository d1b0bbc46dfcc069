#!/bin/sh
# Runs every fuzz target for SECONDS (default 600) each, JOBS (default 2) at a
# time, at low priority, after seeding the corpora from this machine's unit
# files. Logs go to fuzz/logs/<target>.log; a crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script exit non-zero.
# Usage: fuzz/run-all.sh [SECONDS] [JOBS] [TARGET]...
set -eu
cd "$(dirname "$0")"
secs="${1:-600}"; jobs="${2:-2}"
[ $# -gt 2 ] && { shift 2; targets="$*"; } || targets=$(cargo +nightly fuzz list)
export FLINT_SKIP_PLUGIN_BUILD=1
./seed-corpus.sh >/dev/null
cargo +nightly fuzz build -s none
mkdir -p logs
printf '%s\n' $targets | xargs -P "$jobs" -I{} sh -c '
    start=$(date +%s)
    if nice -n 19 cargo +nightly fuzz run -s none {} corpus/{} -- \
        -max_total_time='"$secs"' -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >logs/{}.log 2>&1; then r=ok; else r=FAILED; fi
    echo "{}: $r after $(( $(date +%s) - start )) s ($(grep -o "stat::number_of_executed_units: *[0-9]*" logs/{}.log | grep -o "[0-9]*$") runs)"
    [ $r = ok ]'
