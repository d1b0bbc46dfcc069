#!/usr/bin/env bash
# Obtains systemd's executor test data (test/test-execute/*.service and
# src/test/test-execute.c) from the Debian source package of the installed
# systemd, without copying it into the repository. The source package comes
# through a private apt configuration (deb-src entries, lists and archives all
# under the cache directory), so the system's apt setup is left untouched.
# The extracted files are cached: a second run downloads nothing.
#
# Usage: scripts/fetch-systemd-tests.sh [CACHE_DIR]
#   CACHE_DIR defaults to target/systemd-source. On success the last line of
#   output is the directory holding test/test-execute and src/test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${1:-$root/target/systemd-source}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
tree="$cache/tree"
if [ -f "$tree/.complete" ]; then
  echo "$tree"
  exit 0
fi
command -v apt-get >/dev/null || { echo "fetch-systemd-tests: apt-get not found" >&2; exit 2; }

# One lock for concurrent callers (several test binaries may ask at once).
exec 9>"$cache/.lock"
if command -v flock >/dev/null; then flock -w 600 9; fi
if [ -f "$tree/.complete" ]; then
  echo "$tree"
  exit 0
fi

apt_dir="$cache/apt"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$cache/download"
# deb-src twins of the system's own Debian sources (deb822 and one-line style).
{
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]\+\(.*debian.*\)$/deb-src \1/p' "$f"
  done
} >"$apt_dir/sources.list.d/src.list"
: >"$apt_dir/sources.list.d/src.sources"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  grep -q 'debian' "$f" || continue
  sed 's/^Types:.*/Types: deb-src/' "$f" >>"$apt_dir/sources.list.d/src.sources"
  echo >>"$apt_dir/sources.list.d/src.sources"
done
if [ ! -s "$apt_dir/sources.list.d/src.list" ] && [ ! -s "$apt_dir/sources.list.d/src.sources" ]; then
  echo "fetch-systemd-tests: no Debian apt sources to derive deb-src entries from" >&2
  exit 2
fi
apt_opts=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
  -o "Acquire::Retries=3"
)
if [ "$(id -u)" -ne 0 ]; then
  # Only root may drop privileges to apt's sandbox user.
  apt_opts+=(-o "APT::Sandbox::User=$(id -un)")
fi
timeout 600 apt-get "${apt_opts[@]}" -qq update >&2

version="$(dpkg-query -W -f='${source:Version}' systemd 2>/dev/null || true)"
cd "$cache/download"
if [ -n "$version" ] &&
  timeout 600 apt-get "${apt_opts[@]}" -qq source --download-only "systemd=$version" >&2; then
  :
else
  timeout 600 apt-get "${apt_opts[@]}" -qq source --download-only systemd >&2
fi
orig="$(ls -t systemd_*.orig.tar.* 2>/dev/null | head -n 1)"
[ -n "$orig" ] || { echo "fetch-systemd-tests: no orig tarball downloaded" >&2; exit 2; }

rm -rf "$tree.tmp"
mkdir -p "$tree.tmp"
tar -xf "$orig" -C "$tree.tmp" --strip-components=1 --wildcards \
  '*/test/test-execute/*' '*/src/test/test-execute.c'
[ -f "$tree.tmp/src/test/test-execute.c" ] || { echo "fetch-systemd-tests: test-execute.c missing in $orig" >&2; exit 2; }
echo "$orig" >"$tree.tmp/.complete"
rm -rf "$tree"
mv "$tree.tmp" "$tree"
echo "$tree"
