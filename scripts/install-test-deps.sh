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
  libcap2-bin         # capsh, for systemd's own capability test units
  # tests/daemons.rs: the daemons answer real clients (snmptrap) and chasquid
  # needs a certificate (openssl); the daemons are also in unit_packages below.
  snmp openssl
  uuid-runtime tang micro-httpd gpsd chasquid snmptrapd
  # beanstalkd (a work queue taking its socket), GNU dico's dicod
  # (Accept=yes, inetd style) with the dict client, and PgBouncer
  # (Type=notify, two listeners; psql comes with postgresql below).
  beanstalkd dicod dict pgbouncer postgresql-client
  # dovecot: IMAP (dovecot-imapd) on four listeners, Type=notify, a
  # private /tmp and a read-only /usr and /etc.
  dovecot-imapd
  # GnuPG's user units (gpg-agent, dirmngr, and ssh-add as the ssh-agent
  # client) and libvirt's admin and read-only clients; iproute2 brings up
  # the loopback of the network namespace rpcbind's fixed port 111 runs in.
  gpg-agent dirmngr openssh-client libvirt-clients iproute2
  # tests/plugins.rs: curl and openssl for the SNI router's TLS services, and
  # clang with lld (wasm-ld) for the C plugin of docs/plugins.md, whose
  # binding generator comes from crates.io (below).
  clang lld
  # tests/nix.rs: Nix 2.8 evaluates and builds nix/ offline, without
  # nixpkgs, into a store in a temporary directory.
  nix-bin
  # tests/supervise.rs: the supervisors that start flint with the files of
  # dist/. None of them becomes the init: Debian's runit (not runit-init)
  # and s6 bring only their tools, and openrc (which replaces only sysv-rc,
  # not installed beside systemd-sysv) records the existing services in
  # /etc/runlevels but starts nothing; the tests run OpenRC in a private
  # mount namespace. shellcheck lints the scripts.
  runit s6 openrc shellcheck
  # tests/packaging.rs: the Makefile, and what reads the man pages and the
  # shell completions that `flint __generate` writes.
  make man-db groff-base mandoc bash zsh fish
  # scripts/build-static.sh: musl-gcc for wasmtime's C helper in the static
  # musl build that tests/static.rs runs from an empty root.
  musl-tools
  # bench/activation.sh: the activators flint is compared with (besides
  # systemd-socket-activate; gcc above builds its load client).
  ucspi-tcp xinetd
  # tests/ctl.rs: Ansible's systemd module, a real client of the systemctl
  # front (it reads `systemctl show` and starts, restarts and stops).
  ansible-core
)
# Daemons that ship real .socket/.service units: the corpus of the
# conformance test (tests/conformance.rs), which compares `flint show` with
# systemd's own parser on each of their unit files.
unit_packages=(
  openssh-server cups cups-browsed dbus gpsd libvirt-daemon-system
  mariadb-server postgresql uuid-runtime tang micro-httpd chasquid snmptrapd
  avahi-daemon rpcbind atftpd fcgiwrap pcscd nginx apache2 postfix cron
  rsyslog chrony sane-utils tinysshd gophernicus munin-node nyancat-server
  mpd knockd xinetd lighttpd haproxy redis-server memcached bind9 dnsmasq
  rbldnsd cockpit-ws vsftpd dovecot-core squid lldpd mosquitto unbound radvd
  smartmontools sysstat acpid irqbalance nfs-kernel-server openvpn tor
  privoxy systemd-container ulogd2
  # tests/daemons.rs: systemd-udevd and its socket units (netlink and
  # sequential packet), and systemd-journal-remote (PrivateNetwork=yes).
  udev systemd-journal-remote
  # The user bus (dbus-user-session's units) and dconf, which it activates.
  dbus-user-session dconf-service
)
# No daemon may start while installing: the machine may not run systemd, and
# a started daemon would hold ports and files the tests use.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
# A fresh machine may be running its own apt (unattended-upgrades at boot):
# wait up to ten minutes for its lock instead of failing at once.
wait_lock=(-o DPkg::Lock::Timeout=600)
apt-get update -qq "${wait_lock[@]}"
apt-get install -y -qq "${wait_lock[@]}" --no-install-recommends "${packages[@]}" >/dev/null
apt-get install -y -qq "${wait_lock[@]}" --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${unit_packages[@]}" >/dev/null
# wit-bindgen (C bindings for the C plugin example) is not packaged in Debian.
if command -v cargo >/dev/null && ! command -v wit-bindgen >/dev/null; then
  cargo install --locked wit-bindgen-cli@0.61.1
fi
echo "install-test-deps: $((${#packages[@]} + ${#unit_packages[@]})) packages present"
