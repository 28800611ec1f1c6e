#!/usr/bin/env bash
# What the relay costs the box in memory, as the appliance runs it and as the
# relay-only binary would, side by side in one run.
#
# The appliance runs `portico relay`: the same file as `portico serve` and
# `portico authd`, so most of its resident pages are code pages those two
# already have in memory. RSS counts them in full for each process; PSS
# splits shared pages between the processes that map them; private pages are
# what stopping the process would give back. `portico-relay` (small profile,
# static) shares nothing.
#
# Usage: cargo build --release --bin portico &&
#        RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile small \
#            --target x86_64-unknown-linux-gnu --bin portico-relay &&
#        bench/relay-memory.sh
# Uses four loopback ports 2xxxx and a temp dir; stops what it started on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PORTICO_BIN:-$ROOT/target/release/portico}
RELAY_BIN=${PORTICO_RELAY_BIN:-$ROOT/target/x86_64-unknown-linux-gnu/small/portico-relay}
for b in "$BIN" "$RELAY_BIN"; do
    [ -x "$b" ] || { echo "build first: see the usage at the top of $0 ($b missing)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/portico-relay-memory.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

BASE=$((20000 + RANDOM % 12000))
export PORTICO__DATA_DIR="$W/data" PORTICO__LOG__LEVEL=warn \
    PORTICO__PANEL__LISTEN=127.0.0.1:$BASE PORTICO__AUTHD__LISTEN=127.0.0.1:$((BASE + 1)) \
    PORTICO__RELAY__AGENTS_LISTEN=127.0.0.1:$((BASE + 2)) PORTICO__RELAY__VISITORS_LISTEN=127.0.0.1:$((BASE + 3))
mkdir -p "$W/data"
"$BIN" init >"$W/init.log" 2>&1 || { cat "$W/init.log" >&2; exit 1; }

start() { # log-name command... → pid in STARTED
    "${@:2}" >"$W/$1.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}
# KiB: resident, proportional share, private, shared.
mem() {
    awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_(Clean|Dirty):/ {v+=$2} /^Shared_(Clean|Dirty):/ {s+=$2}
         END {printf "%d %d %d %d\n", r, p, v, s}' "/proc/$1/smaps_rollup"
}
settled() { # pid...: up and idle for a moment
    sleep 2
    for p in "$@"; do
        kill -0 "$p" 2>/dev/null || { echo "a process did not stay up; logs:" >&2; tail -n 5 "$W"/*.log >&2; exit 1; }
    done
}

start serve "$BIN" serve; SERVE=$STARTED
start authd "$BIN" authd; AUTHD=$STARTED
settled "$SERVE" "$AUTHD"
start relay "$BIN" relay; RELAY=$STARTED
settled "$RELAY"
read -r R_RSS R_PSS R_PRIV R_SHARED < <(mem "$RELAY")
read -r S_RSS S_PSS S_PRIV _ < <(mem "$SERVE")
read -r A_RSS A_PSS A_PRIV _ < <(mem "$AUTHD")
kill "$RELAY"; wait "$RELAY" 2>/dev/null || true
start relay-small "$RELAY_BIN"; SMALL=$STARTED
settled "$SMALL"
read -r M_RSS M_PSS M_PRIV M_SHARED < <(mem "$SMALL")

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
echo
echo "Relay memory idle, beside portico serve and portico authd (KiB)"
printf '%-24s %8s %8s %8s %8s\n' "" RSS PSS private shared
printf '%-24s %8s %8s %8s %8s\n' "portico serve" "$S_RSS" "$S_PSS" "$S_PRIV" -
printf '%-24s %8s %8s %8s %8s\n' "portico authd" "$A_RSS" "$A_PSS" "$A_PRIV" -
printf '%-24s %8s %8s %8s %8s\n' "portico relay" "$R_RSS" "$R_PSS" "$R_PRIV" "$R_SHARED"
printf '%-24s %8s %8s %8s %8s\n' "portico-relay (small)" "$M_RSS" "$M_PSS" "$M_PRIV" "$M_SHARED"
echo "portico relay vs portico-relay: RSS $(pct "$R_RSS" "$M_RSS"), PSS $(pct "$R_PSS" "$M_PSS"), private (what the box gives it alone) $(pct "$R_PRIV" "$M_PRIV")"
