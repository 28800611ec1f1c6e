#!/usr/bin/env bash
# Peak RSS of `portico backup` and `portico restore`, for an empty
# (initialized) data dir and one with 200 MB of site files, as
# `/usr/bin/time -f %M` reports it (KiB, printed as MiB). Everything streams,
# so both should stay near scrypt's 64 MiB whatever the data size.
#
# Usage: cargo build --release --bin portico && bench/backup-rss.sh
# ROUNDS=n (default 5) repeats each measure; prints every round, then the
# median and range. Uses a temp dir, removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PORTICO_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portico}
ROUNDS=${ROUNDS:-5}
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin portico ($BIN missing)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
W=$(mktemp -d /tmp/portico-backup-rss.XXXXXX)
trap 'rm -rf "$W"' EXIT
export PORTICO__LOG__LEVEL=warn PORTICO_BACKUP_PASSPHRASE="a passphrase for the benchmark"

make_data() { # dir, MB of site files
    PORTICO__DATA_DIR="$1" "$BIN" init >/dev/null 2>&1
    if [ "$2" -gt 0 ]; then
        mkdir -p "$1/sites/media"
        for i in $(seq 1 $(($2 / 10))); do
            head -c $((10 * 1024 * 1024)) /dev/urandom >"$1/sites/media/part-$i.bin"
        done
    fi
}

# Prints the peak RSS in KiB of the command's run.
peak() {
    /usr/bin/time -f %M -o "$W/time" "$@" >"$W/out" 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
    cat "$W/time"
}

summary() { # label, KiB values...
    local label=$1; shift
    sort -n <<<"$(printf '%s\n' "$@")" | awk -v label="$label" '
        { v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-28s median %6.1f MiB  range %.1f–%.1f MiB  (%d rounds)\n", label, m / 1024, v[1] / 1024, v[NR] / 1024, NR
        }'
}

for size in 0 200; do
    data="$W/data-$size"
    make_data "$data" "$size"
    du -sh --exclude=backups "$data" | awk -v s="$size" '{ print "data dir " s " MB: " $1 " on disk" }'
    backups=() restores=()
    for round in $(seq 1 "$ROUNDS"); do
        kib=$(PORTICO__DATA_DIR="$data" peak "$BIN" backup)
        archive=$(cat "$W/out")
        backups+=("$kib")
        target="$W/restore-$size-$round"
        rkib=$(PORTICO__DATA_DIR="$target" peak "$BIN" restore "$archive")
        restores+=("$rkib")
        printf 'round %d  %3d MB  backup %6.1f MiB  restore %6.1f MiB  archive %s\n' "$round" "$size" \
            "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rkib" 'BEGIN { print k / 1024 }')" \
            "$(du -h "$archive" | cut -f1)"
        rm -rf "$target" "$archive"
    done
    summary "backup, $size MB data dir" "${backups[@]}"
    summary "restore, $size MB data dir" "${restores[@]}"
done
