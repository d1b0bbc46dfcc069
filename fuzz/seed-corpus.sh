#!/bin/sh
# Writes seed corpora for every fuzz target under fuzz/corpus/<target>/ from
# the unit files of this machine (default: /lib/systemd/system and
# /etc/systemd/system) and a few environment files. Corpora are generated,
# never committed. Usage: fuzz/seed-corpus.sh [UNIT_DIR]...
set -eu
cd "$(dirname "$0")"
[ $# -gt 0 ] || set -- /lib/systemd/system /etc/systemd/system
out=corpus
for t in unit_file unit_load time_span socket_address words exec_line \
         environment env_file unit_name specifier scalars; do
    mkdir -p "$out/$t"
done

# One file per seed, named by its content's hash so reruns do not pile up.
seed() { # target, then the seed bytes on stdin
    tmp="$out/$1/.tmp.$$"
    cat >"$tmp"
    mv "$tmp" "$out/$1/$(sha1sum <"$tmp" | cut -c1-16)"
}
# Values of KEY= lines (continuations joined), one per line.
values() { # regex for the key, then files
    key="$1"; shift
    sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$@" 2>/dev/null \
        | sed -n "s/^[[:space:]]*\($key\)=//p" | sort -u
}

files=$(find "$@" -maxdepth 2 -type f \( -name '*.service' -o -name '*.socket' \
        -o -name '*.conf' -o -name '*.target' -o -name '*.timer' -o -name '*.mount' \) 2>/dev/null)
[ -n "$files" ] || { echo "no unit files under $*" >&2; exit 1; }

for f in $files; do
    seed unit_file <"$f"
    case "$f" in
        *@.socket) sel='\003' ;;
        *@.service) sel='\002' ;;
        *.socket) sel='\001' ;;
        *) sel='\000' ;;
    esac
    { printf "$sel"; cat "$f"; } | seed unit_load
    basename "$f" | tr -d '\n' | seed unit_name
done

values 'Listen[A-Za-z]*' $files | while IFS= read -r v; do
    printf '%s' "$v" | seed socket_address
done
values '[A-Za-z]*Sec\|RuntimeMaxSec\|WatchdogSec' $files | while IFS= read -r v; do
    { printf '\002'; printf '%s' "$v"; } | seed time_span
done
values 'Exec[A-Za-z]*' $files | while IFS= read -r v; do
    printf '%s' "$v" | seed exec_line
    { printf '\042\000'; printf '%s' "$v"; } | seed words
done
values 'Environment' $files | while IFS= read -r v; do
    printf '%s' "$v" | seed environment
done
values '[A-Za-z]*' $files | grep '%' | while IFS= read -r v; do
    { printf '\001'; printf '%s' "$v"; } | seed specifier
done
values 'Wants\|Requires\|After\|Before\|Also\|Alias\|Service' $files | tr ' ' '\n' \
    | sort -u | while IFS= read -r v; do
    [ -n "$v" ] && printf '%s' "$v" | seed unit_name
done
values '[A-Za-z]*Mode\|UMask\|Limit[A-Z]*\|[A-Za-z]*Signal\|[A-Za-z]*Status\|Backlog\|Nice\|Max[A-Za-z]*\|Private[A-Za-z]*\|Accept\|Remain[A-Za-z]*' $files \
    | while IFS= read -r v; do
    { printf '\000'; printf '%s' "$v"; } | seed scalars
done
for f in /etc/os-release /usr/lib/os-release /etc/default/* /etc/environment; do
    [ -f "$f" ] && seed env_file <"$f"
done

for t in "$out"/*; do
    printf '%s: %s seeds\n' "$(basename "$t")" "$(ls "$t" | wc -l)"
done
