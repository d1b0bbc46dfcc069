#!/usr/bin/env bash
# Builds flint with its functions laid out in the order they first run, so
# that an idle flint maps less of its own code.
#   scripts/order-functions.sh BINARY -- BUILD-COMMAND...
# e.g.  scripts/order-functions.sh target/release/flint -- cargo build --release -p flint
#
# The kernel maps a program's code 64 KiB at a time around each page it
# touches ("fault-around"), so the few hundred functions flint runs to start
# and to serve, scattered over 13 MiB of code, bring 3.5 MiB of it into the
# resident set. Laid out together they take about 1 MiB.
#
# 1. BUILD-COMMAND runs with FLINT_SYMBOL_ORDER=BINARY.order (core/build.rs
#    links in that order; an order from older sources only loses some of
#    its effect).
# 2. BINARY runs under scripts/trace-functions.c (ptrace) on a small unit
#    tree, once as a system flint and once with --user: it starts, serves
#    Accept=yes connections over IPv4 and IPv6 (inetd style and fd 3, one
#    at a time and 16 at once),
#    activates an Accept=no service, answers `flint ctl status` and
#    `list-sockets`, idles. The functions that ran, in the order they first
#    ran, go to BINARY.order.
# 3. BUILD-COMMAND runs again, and links in the new order. The objects are
#    the same as in step 1 (the order reaches only the linker), so every
#    name in the order is found.
# Where the trace cannot run (no ptrace, no C compiler), it says so and the
# binary of step 1 stays. When step 1 rebuilds nothing and the binary is
# already linked in an order, steps 2 and 3 are skipped.
set -euo pipefail
if [ $# -lt 3 ] || [ "$2" != "--" ]; then
  echo "usage: $0 BINARY -- BUILD-COMMAND..." >&2
  exit 2
fi
binary=$(realpath -m "$1")
shift 2
cd "$(dirname "$0")/.."
order="$binary.order"
export FLINT_SYMBOL_ORDER="$order"
# An empty order the first time: the linker's own order.
mkdir -p "$(dirname "$order")"
[ -e "$order" ] || : >"$order"

stamp() { stat -c '%i %Y' "$binary" 2>/dev/null || echo none; }
before=$(stamp)
"$@"
# Nothing was rebuilt and it is linked in an order already: done.
if [ "$(stamp)" = "$before" ] && [ -s "$order" ] && [ "$binary" -nt "$order" ]; then
  echo "order-functions: $binary is up to date" >&2
  exit 0
fi

work=$(mktemp -d /tmp/flint-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
keep() {
  echo "order-functions: $1; $binary keeps the linker's order" >&2
  exit 0
}
cc -O2 -o "$work/trace-functions" scripts/trace-functions.c || keep "no C compiler"
nm --defined-only "$binary" | awk '$2 ~ /^[tTwW]$/ { print $1, $3 }' >"$work/symbols" ||
  keep "nm cannot read it"

# Ports from the ephemeral range's far end.
port=$((40000 + RANDOM % 20000))
mkdir -p "$work/units" "$work/xdg"
cat >"$work/units/hello.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$port
ListenStream=[::1]:$port
Accept=yes
MaxConnections=32
TriggerLimitIntervalSec=0
PollLimitIntervalSec=0
EOF
cat >"$work/units/hello@.service" <<'EOF'
[Service]
StandardInput=socket
Environment=GREETING=hi
ExecStart=/bin/sh -c 'printf "%s, peer %s port %s\n" "$GREETING" "$REMOTE_ADDR" "$REMOTE_PORT"'
EOF
# The connection as fd 3 with LISTEN_FDS.
cat >"$work/units/fd.socket" <<EOF
[Socket]
ListenStream=127.0.0.1:$((port + 2))
Accept=yes
EOF
cat >"$work/units/fd@.service" <<'EOF'
[Service]
ExecStart=/bin/sh -c 'echo "$LISTEN_FDS $LISTEN_FDNAMES" >&3'
EOF
cat >"$work/units/echo.socket" <<EOF
[Socket]
FileDescriptorName=echo
ListenStream=127.0.0.1:$((port + 1))
ListenStream=$work/echo.sock
ListenDatagram=127.0.0.1:$((port + 1))
EOF
# Accepts one connection on its first listener, answers, exits: flint then
# watches the listeners again.
cat >"$work/units/echo.service" <<'EOF'
[Service]
ExecStart=/bin/sh -c 'exec python3 -c "import socket; s = socket.socket(fileno=3); c, _ = s.accept(); c.sendall(c.recv(64)); c.close()"'
EOF
# More units, as a real tree has (its tables grow), never activated here.
for i in $(seq 12); do
  printf '[Socket]\nListenStream=%s/s%s.sock\n' "$work" "$i" >"$work/units/s$i.socket"
  printf '[Service]\nExecStart=/bin/true\n' >"$work/units/s$i.service"
done

ask() {
  local p=$1 line=$2 i
  for i in $(seq 100); do
    if { exec 3<>"/dev/tcp/$3/$p"; } 2>/dev/null; then
      printf '%s\n' "$line" >&3
      timeout 5 head -c 64 <&3 >/dev/null 2>&1 || true
      exec 3>&-
      return 0
    fi
    sleep 0.1
  done
  return 1
}
# Waits for the background jobs of this shell but PID.
wait_jobs_but() {
  local j
  for j in $(jobs -p); do [ "$j" = "$1" ] || wait "$j" || true; done
}
# One traced run, in a subshell: flint starts, serves, answers `flint ctl`,
# idles, and is killed after 10 s; the functions that ran go to $work/run.N.
#   (trace N FLINT-RUN-OPTION...)   (`flint ctl` gets the same options)
trace() {
  local n=$1 pid
  shift
  # shellcheck disable=SC2086 # $units: unit names, split
  "$work/trace-functions" "$work/symbols" 10 -- "$binary" run --unit-dir "$work/units" "$@" ${units:-} \
    >"$work/run.$n" 2>"$work/log.$n" &
  pid=$!
  # shellcheck disable=SC2064 # the pid of this run, now
  trap "kill -KILL $pid 2>/dev/null || true" EXIT
  ask "$port" hello 127.0.0.1 || { cat "$work/log.$n" >&2; exit 1; }
  ask "$port" hello ::1 || true
  ask "$((port + 2))" hello 127.0.0.1 || true
  ask "$((port + 1))" echo 127.0.0.1 || true
  sleep 0.5
  ask "$port" hello 127.0.0.1 || true
  # Connections at once, as under load: spawns wait their turn.
  local i
  for i in $(seq 16); do ask "$port" hello 127.0.0.1 & done
  wait_jobs_but "$pid"
  "$binary" ctl "$@" status >/dev/null 2>&1 || true
  "$binary" ctl "$@" list-sockets >/dev/null 2>&1 || true
  wait "$pid" || true
  if [ "$(wc -l <"$work/run.$n")" -lt 100 ]; then
    echo "order-functions: only $(wc -l <"$work/run.$n") functions ran; flint's log:" >&2
    cat "$work/log.$n" >&2
    exit 1
  fi
}
# A system flint with its control socket moved, then a --user one with its
# default control socket (under $XDG_RUNTIME_DIR).
# The first names its units, as a command line does; the second runs the
# tree's.
(units="hello.socket fd.socket echo.socket" trace 1 --control "$work/control") ||
  keep "the trace failed"
(XDG_RUNTIME_DIR="$work/xdg" trace 2 --user) || keep "the trace failed"
# Then the rest of what reads units, opens sockets, activates and spawns,
# untraced: settings and paths the trace did not take land near each other
# instead of each bringing a 64 KiB window of unrelated code.
grep -E ' _(ZN|R[A-Za-z0-9_]*)5flint(4unit|6listen|10activation|5spawn)' "$work/symbols" |
  cut -d' ' -f2 >"$work/run.3" || true
awk '!seen[$0]++' "$work/run.1" "$work/run.2" "$work/run.3" >"$order.new"
mv "$order.new" "$order"
echo "order-functions: $(wc -l <"$order") functions first, in $order" >&2

"$@"
