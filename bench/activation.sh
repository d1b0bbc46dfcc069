#!/usr/bin/env bash
# Compares flint's socket activation with its peers in one run, side by side:
#   - Accept=yes with an inetd-style echo handler (/bin/cat, or with
#     --handler c a static C one, bench/echo-handler.c, or with --handler raw
#     one without a C library, bench/echo-handler-raw.c): connections per
#     second with 1 and with 8 concurrent clients, and connect-to-first-byte
#     p50/p99, for flint (`flint run` with units), `flint socket-activate
#     --accept --inetd` (systemd-socket-activate's command line),
#     `systemd-socket-activate --accept --inetd`, tcpserver (ucspi-tcp,
#     `-l 0`) and xinetd (private config, -dontfork);
#   - Accept=no: connect-to-first-byte of the connection that starts the
#     service, flint run, flint socket-activate and systemd-socket-activate;
#   - idle RSS of each server (flint without plugins, with demo-like units).
# With --static, the static build (scripts/build-static.sh --release, or
# FLINT_STATIC_BIN=PATH) runs beside the dynamic one in every measurement
# (Accept=yes, Accept=no and memory), in a column of its own.
# Every measurement runs --rounds times (interleaved across servers) and the
# median is reported, with ratios flint / peer. Loopback only; every loop is
# bounded by a count and a time; every process started here is stopped on
# exit. Results go to stdout as Markdown (bench/README.md keeps a copy).
#   bench/activation.sh [--rounds N] [--conns N] [--seconds S] [--first N]
#                       [--port-base P] [--no-build] [--static] [--handler cat|c|raw]
# FLINT_BIN=PATH runs another flint binary (with --no-build).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rounds=5          # rounds of each Accept=yes measurement (median reported)
conns=3000        # connections per Accept=yes run (at most)
max_seconds=8     # seconds per Accept=yes run (at most)
first_rounds=9    # Accept=no cold starts per server (median reported)
port_base=19600
build=1
static=0
handler_kind="cat"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --seconds) max_seconds=$2; shift 2 ;;
    --first) first_rounds=$2; shift 2 ;;
    --port-base) port_base=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --static) static=1; shift ;;
    --handler) handler_kind=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--conns N] [--seconds S] [--first N] [--port-base P] [--no-build] [--static] [--handler cat|c|raw]" >&2; exit 2 ;;
  esac
done

for tool in systemd-socket-activate tcpserver xinetd cc; do
  command -v "$tool" >/dev/null || {
    echo "activation.sh: $tool is missing (scripts/install-test-deps.sh installs it)" >&2
    exit 1
  }
done

if [ "$build" -eq 1 ]; then
  # Functions laid out in the order they first run, as scripts/build-static.sh does.
  scripts/order-functions.sh target/release/flint -- cargo build --release -p flint >&2
fi
flint=${FLINT_BIN:-$repo/target/release/flint}
[ -x "$flint" ] || { echo "activation.sh: $flint is missing" >&2; exit 1; }
flint_static=""
if [ "$static" -eq 1 ]; then
  if [ -n "${FLINT_STATIC_BIN:-}" ]; then
    flint_static=$FLINT_STATIC_BIN
  else
    [ "$build" -eq 1 ] && scripts/build-static.sh --release >&2
    flint_static=$repo/target/release-static/flint
  fi
  [ -x "$flint_static" ] || { echo "activation.sh: $flint_static is missing" >&2; exit 1; }
fi

# Every handler runs with the same locale: flint gives services LANG from
# /etc/locale.conf or C.UTF-8 (as systemd does), the peers hand on their own
# environment. A handler that loads a locale (coreutils' cat does) spends
# 100-250 us on it, more than the activators differ by.
export LANG=C.UTF-8
unset LANGUAGE LC_ALL LC_CTYPE LC_NUMERIC LC_TIME LC_COLLATE LC_MONETARY LC_MESSAGES \
  LC_PAPER LC_NAME LC_ADDRESS LC_TELEPHONE LC_MEASUREMENT LC_IDENTIFICATION

work=$(mktemp -d /tmp/flint-bench-activation.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    stop_pid "$p"
  done
  rm -rf "$work"
}
# Stops one process this script started: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
forget_pid() {
  local p=$1 q keep=()
  for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  pids=("${keep[@]}")
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -pthread -o "$work/client" bench/activation-client.c
client=$work/client
# The Accept=yes handler every server runs.
case "$handler_kind" in
  cat) handler=/bin/cat; handler_desc=/bin/cat ;;
  c)
    handler=$work/echo-handler
    handler_desc="bench/echo-handler.c, static"
    cc -O2 -static -o "$handler" bench/echo-handler.c 2>/dev/null || {
      echo "activation.sh: no static C library; the C echo handler is linked dynamically" >&2
      handler_desc="bench/echo-handler.c, dynamic"
      cc -O2 -o "$handler" bench/echo-handler.c
    }
    ;;
  raw)
    # No C library at all: the handler's start is the exec alone.
    handler=$work/echo-handler-raw
    handler_desc="bench/echo-handler-raw.c, static, no C library"
    cc -O2 -static -nostdlib -fno-stack-protector -o "$handler" bench/echo-handler-raw.c
    ;;
  *) echo "activation.sh: --handler is cat, c or raw" >&2; exit 2 ;;
esac

port_yes_flint=$((port_base + 0))
port_yes_ssa=$((port_base + 1))
port_yes_tcpserver=$((port_base + 2))
port_yes_xinetd=$((port_base + 3))
port_demo_yes=$((port_base + 4))
port_demo_no=$((port_base + 5))
port_no_flint=$((port_base + 6))
port_no_ssa=$((port_base + 7))
port_yes_static=$((port_base + 8))
port_demo_yes_static=$((port_base + 9))
port_demo_no_static=$((port_base + 10))
port_yes_sa=$((port_base + 11))
port_no_sa=$((port_base + 12))

# True when something listens on 127.0.0.1:$1 (read from /proc, no connect:
# a connection would start an Accept=no service).
listening() {
  local hex
  hex=$(printf '0100007F:%04X' "$1")
  awk -v a="$hex" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}
wait_listen() {
  local i
  for i in $(seq 100); do
    listening "$1" && return 0
    sleep 0.05
  done
  echo "activation.sh: nothing listens on port $1 after 5 s" >&2
  return 1
}
for p in $(seq "$port_base" $((port_base + 10))); do
  if listening "$p"; then
    echo "activation.sh: port $p is in use; pick another --port-base" >&2
    exit 1
  fi
done

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# The anonymous part of the RSS: the process's own memory, without the
# pages of its binary and libraries, which the page cache shares.
anon_kib() { awk '/^Anonymous:/ { print $2 }' "/proc/$1/smaps_rollup"; }

# --- Units and configurations ------------------------------------------------
mkdir -p "$work/units" "$work/units-no"
cat >"$work/units/bench-echo.socket" <<EOF
# Accept=yes echo: one handler per connection. Rate limits off for a benchmark.
[Socket]
ListenStream=127.0.0.1:$port_yes_flint
Accept=yes
MaxConnections=256
TriggerLimitIntervalSec=0
PollLimitIntervalSec=0
EOF
cat >"$work/units/bench-echo@.service" <<EOF
# inetd style: the connection is stdin and stdout; the peers' locale.
[Service]
StandardInput=socket
Environment=LANG=C.UTF-8
ExecStart=$handler
EOF
# Demo-like units (units/ without the plugin sections, on bench ports): they
# are loaded while flint's idle RSS is measured.
cat >"$work/units/hello.socket" <<EOF
# Like units/hello.socket, without plugins.
[Socket]
ListenStream=127.0.0.1:$port_demo_yes
ListenStream=[::1]:$port_demo_yes
Accept=yes
MaxConnections=32
EOF
cat >"$work/units/hello@.service" <<'EOF'
# Like units/hello@.service.
[Service]
StandardInput=socket
Environment=GREETING=hi
ExecStart=/bin/sh -c 'printf "HTTP/1.0 200 OK\r\n\r\n%%s, peer %%s port %%s\n" "$GREETING" "$REMOTE_ADDR" "$REMOTE_PORT"'
EOF
cat >"$work/units/echo.socket" <<EOF
# Like units/echo.socket.
[Socket]
ListenStream=127.0.0.1:$port_demo_no
FileDescriptorName=echo
EOF
cat >"$work/units/echo.service" <<EOF
# Like units/echo.service, with a C echo server.
[Service]
ExecStart=$client serve-fd3
EOF
cat >"$work/units-no/first.socket" <<EOF
# Accept=no: the first connection starts first.service.
[Socket]
ListenStream=127.0.0.1:$port_no_flint
EOF
cat >"$work/units-no/first.service" <<EOF
# Echo server that takes the listening socket as fd 3.
[Service]
ExecStart=$client serve-fd3
EOF
# The static build's units: the same, on ports of their own.
mkdir -p "$work/units-static"
for f in "$work/units/"*; do
  sed -e "s/:$port_yes_flint\$/:$port_yes_static/" -e "s/:$port_demo_yes\$/:$port_demo_yes_static/" \
    -e "s/:$port_demo_no\$/:$port_demo_no_static/" "$f" >"$work/units-static/$(basename "$f")"
done
xinetd_user=""
if [ "$(id -u)" -eq 0 ]; then
  # As root xinetd wants a user for the service; the others run as the
  # caller too.
  xinetd_user="user = root"
fi
cat >"$work/xinetd.conf" <<EOF
# Private xinetd configuration: one echo service, no limits, no logging.
defaults
{
}
service flint-bench-echo
{
	type        = UNLISTED
	socket_type = stream
	protocol    = tcp
	wait        = no
	$xinetd_user
	bind        = 127.0.0.1
	port        = $port_yes_xinetd
	server      = $handler
	instances   = UNLIMITED
	per_source  = UNLIMITED
	cps         = 1000000 1
}
EOF

# --- Accept=yes servers ------------------------------------------------------
declare -A pid_of port_of
port_of[flint]=$port_yes_flint
port_of[ssa]=$port_yes_ssa
port_of[tcpserver]=$port_yes_tcpserver
port_of[xinetd]=$port_yes_xinetd
port_of[static]=$port_yes_static
port_of[sa]=$port_yes_sa
servers=(flint sa ssa tcpserver xinetd)
[ -n "$flint_static" ] && servers+=(static)

"$flint" run --unit-dir "$work/units" bench-echo.socket hello.socket echo.socket \
  2>"$work/flint.log" &
pid_of[flint]=$!; pids+=("$!")
systemd-socket-activate -l "127.0.0.1:$port_yes_ssa" --accept --inetd "$handler" \
  2>"$work/ssa.log" &
pid_of[ssa]=$!; pids+=("$!")
"$flint" socket-activate -l "127.0.0.1:$port_yes_sa" --accept --inetd "$handler" \
  2>"$work/flint-sa.log" &
pid_of[sa]=$!; pids+=("$!")
# -H -R: no DNS or ident lookups; -l 0: no local name lookup; -c: as flint.
tcpserver -q -H -R -l 0 -c 256 127.0.0.1 "$port_yes_tcpserver" "$handler" \
  2>"$work/tcpserver.log" &
pid_of[tcpserver]=$!; pids+=("$!")
xinetd -f "$work/xinetd.conf" -dontfork -pidfile "$work/xinetd.pid" \
  2>"$work/xinetd.log" &
pid_of[xinetd]=$!; pids+=("$!")
if [ -n "$flint_static" ]; then
  # A control socket of its own: the default one is the other flint's.
  "$flint_static" run --control "$work/static.control" --unit-dir "$work/units-static" \
    bench-echo.socket hello.socket echo.socket \
    2>"$work/flint-static.log" &
  pid_of[static]=$!; pids+=("$!")
  wait_listen "$port_demo_yes_static"
  wait_listen "$port_demo_no_static"
fi
for s in "${servers[@]}"; do wait_listen "${port_of[$s]}"; done
wait_listen "$port_demo_yes"
wait_listen "$port_demo_no"
sleep 0.5

declare -A rss_idle rss_after anon_idle
for s in "${servers[@]}"; do
  rss_idle[$s]=$(rss_kib "${pid_of[$s]}")
  anon_idle[$s]=$(anon_kib "${pid_of[$s]}")
done

# results/NAME.METRIC holds one value per round.
mkdir -p "$work/results"
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
record() { echo "$3" >>"$work/results/$1.$2"; }
median() { sort -g "$work/results/$1.$2" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }

# The server measured first in a round runs a few percent faster here,
# whichever it is, so each round starts with the next server.
rotated() { # round: the servers, starting with the round's own
  local i n=${#servers[@]}
  for i in $(seq 0 $((n - 1))); do echo "${servers[$(((i + $1 - 1) % n))]}"; done
}

total_errors=0
for r in $(seq "$rounds"); do
  for mode in seq par; do
    clients=1; [ "$mode" = par ] && clients=8
    for s in $(rotated "$r"); do
      out=$("$client" rate 127.0.0.1 "${port_of[$s]}" "$clients" "$conns" "$max_seconds")
      echo "round $r $s $mode: $out" >&2
      record "$s" "$mode.rate" "$(field rate <<<"$out")"
      record "$s" "$mode.p50" "$(field p50_us <<<"$out")"
      record "$s" "$mode.p99" "$(field p99_us <<<"$out")"
      total_errors=$((total_errors + $(field errors <<<"$out")))
    done
  done
done
sleep 0.5
for s in "${servers[@]}"; do rss_after[$s]=$(rss_kib "${pid_of[$s]}"); done
for s in "${servers[@]}"; do stop_pid "${pid_of[$s]}"; forget_pid "${pid_of[$s]}"; done

# --- Accept=no first connection ----------------------------------------------
# Each round starts the activator afresh, makes the connection that starts
# the service (cold), then connects to the running service (warm).
for r in $(seq "$first_rounds"); do
  # Each round starts with the next activator.
  first_servers=(flint sa ssa)
  [ -n "$flint_static" ] && first_servers=(flint static sa ssa)
  n=${#first_servers[@]}
  order=""
  for i in $(seq 0 $((n - 1))); do order="$order ${first_servers[$(((i + r - 1) % n))]}"; done
  for s in $order; do
    if [ "$s" = flint ]; then
      port=$port_no_flint
      "$flint" run --unit-dir "$work/units-no" first.socket 2>>"$work/flint-no.log" &
    elif [ "$s" = static ]; then
      port=$port_no_flint
      "$flint_static" run --unit-dir "$work/units-no" first.socket 2>>"$work/flint-static-no.log" &
    elif [ "$s" = sa ]; then
      port=$port_no_sa
      "$flint" socket-activate -l "127.0.0.1:$port" "$client" serve-fd3 2>>"$work/flint-sa-no.log" &
    else
      port=$port_no_ssa
      systemd-socket-activate -l "127.0.0.1:$port" "$client" serve-fd3 2>>"$work/ssa-no.log" &
    fi
    p=$!; pids+=("$p")
    wait_listen "$port"
    sleep 0.2
    cold=$("$client" first 127.0.0.1 "$port" | field first_us)
    # Warm: the best of three connections to the running service, after a
    # pause that lets both settle.
    sleep 0.2
    warm=$(for _ in 1 2 3; do "$client" first 127.0.0.1 "$port" | field first_us; done | sort -n | head -1)
    echo "first-connection round $r $s: cold ${cold}us warm ${warm}us" >&2
    record "$s" first.cold "$cold"
    record "$s" first.warm "$warm"
    stop_pid "$p"; forget_pid "$p"
    # systemd-socket-activate execs the service in its own place; stop_pid
    # got it. flint stopped first.service on SIGTERM.
  done
done

# --- Report --------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
value() { if [ -e "$work/results/$1.$2" ]; then median "$1" "$2"; else echo "-"; fi; }
# Two servers' ratio for a metric: where both have a value per round, the
# median of the rounds' ratios (a round measures the servers back to back,
# so the host's speed, which drifts from one round to the next, cancels);
# else the ratio of their values.
ratio_of() { # server server metric
  local fa="$work/results/$1.$3" fb="$work/results/$2.$3"
  if [ -e "$fa" ] && [ -e "$fb" ] && [ "$(wc -l <"$fa")" -gt 1 ] &&
    [ "$(wc -l <"$fa")" -eq "$(wc -l <"$fb")" ]; then
    paste "$fa" "$fb" | awk '$2 + 0 > 0 { print $1 / $2 }' | sort -g |
      awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else print "-" }'
  else
    ratio "$(value "$1" "$3")" "$(value "$2" "$3")"
  fi
}
row() { # label metric
  local label=$1 f s t x st a
  f=$(value flint "$2"); s=$(value ssa "$2"); t=$(value tcpserver "$2")
  x=$(value xinetd "$2"); a=$(value sa "$2")
  if [ -n "$flint_static" ]; then
    st=$(value static "$2")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$f" "$st" "$a" "$s" "$t" "$x" \
      "$(ratio_of flint ssa "$2")" "$(ratio_of static ssa "$2")" "$(ratio_of flint tcpserver "$2")" \
      "$(ratio_of static tcpserver "$2")" "$(ratio_of flint xinetd "$2")" "$(ratio_of sa ssa "$2")" "$(ratio_of sa tcpserver "$2")"
  else
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$f" "$a" "$s" "$t" "$x" \
      "$(ratio_of flint ssa "$2")" "$(ratio_of flint tcpserver "$2")" "$(ratio_of flint xinetd "$2")" \
      "$(ratio_of sa ssa "$2")" "$(ratio_of sa tcpserver "$2")"
  fi
}
for s in flint sa ssa ${flint_static:+static}; do
  # Overhead of the cold start: the medians' difference (per-round
  # differences would mix the noise of two connections).
  record "$s" first.overhead "$(awk -v c="$(median "$s" first.cold)" -v w="$(median "$s" first.warm)" 'BEGIN { print c - w }')"
done
for s in "${servers[@]}"; do
  record "$s" rss.idle "${rss_idle[$s]}"
  record "$s" anon.idle "${anon_idle[$s]}"
  record "$s" rss.after "${rss_after[$s]}"
done

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average before the report: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Accept=yes: handler $handler_desc, $rounds rounds of at most $conns connections / ${max_seconds} s each; Accept=no: $first_rounds cold starts; medians. Ratios: medians of the rounds' ratios where each round has a value (the rates, latencies, cold and warm connections), else of the values. Client errors: $total_errors."
echo
if [ -n "$flint_static" ]; then
  echo "| measurement | flint | flint (static) | flint socket-activate | systemd-socket-activate | tcpserver | xinetd | flint/ssa | static/ssa | flint/tcpserver | static/tcpserver | flint/xinetd | sa/ssa | sa/tcpserver |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
else
  echo "| measurement | flint | flint socket-activate | systemd-socket-activate | tcpserver | xinetd | flint/ssa | flint/tcpserver | flint/xinetd | sa/ssa | sa/tcpserver |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
fi
row "Accept=yes, 1 client: conn/s (higher is better)" seq.rate
row "Accept=yes, 8 clients: conn/s (higher is better)" par.rate
row "Accept=yes, 1 client: connect-to-first-byte p50 µs" seq.p50
row "Accept=yes, 1 client: connect-to-first-byte p99 µs" seq.p99
row "Accept=yes, 8 clients: connect-to-first-byte p50 µs" par.p50
row "Accept=yes, 8 clients: connect-to-first-byte p99 µs" par.p99
row "Accept=no: first connection, connect-to-first-byte µs" first.cold
row "Accept=no: connection to the running service (best of 3) µs" first.warm
row "Accept=no: first-connection overhead (median cold - median warm) µs" first.overhead
row "idle RSS KiB, after start" rss.idle
row "idle RSS KiB, after the Accept=yes runs" rss.after
row "idle anonymous memory KiB (RSS without binary and libraries)" anon.idle
