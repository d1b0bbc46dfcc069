#!/usr/bin/env bash
# Installs the Debian packages flint's integration tests use: real clients of
# the socket-activation protocol, real daemons with their own unit files, and
# systemd itself as the reference oracle. Safe to run again.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  systemd             # oracles: systemd --test, systemd-analyze, systemd-socket-activate
  python3             # protocol client (socket.fromfd) and test helpers
  curl netcat-openbsd # clients
  libsystemd-dev gcc pkg-config  # a C client using sd_listen_fds_with_names()
  util-linux          # setpriv, unshare
)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-test-deps: ${#packages[@]} packages present"
