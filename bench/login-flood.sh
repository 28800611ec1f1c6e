#!/usr/bin/env bash
# authd's CPU under a password flood from one client: per attempt while the
# client is still allowed (the first 5 wrong passwords, each a bcrypt check)
# against per attempt once the (user, client) pair is banned (100 more, which
# must be answered 429 before any password check). Each round starts a fresh
# authd on a loopback port with an empty data dir; prints each round's figures
# and ratio, then the median and range over ROUNDS (default 5) rounds.
# usage: bench/login-flood.sh [path/to/portico]   (default target/release/portico)
set -euo pipefail
BIN=${1:-target/release/portico}
ROUNDS=${ROUNDS:-5}
[[ -x $BIN ]] || { echo "no binary at $BIN (cargo build --release)" >&2; exit 1; }
TCK=$(getconf CLK_TCK)

round() {
    local d port pid url hdr cookie csrf c0 c1 c2 allowed banned
    d=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    PORTICO__DATA_DIR=$d PORTICO__AUTHD__LISTEN=127.0.0.1:$port "$BIN" authd >"$d/authd.log" 2>&1 &
    pid=$!
    url=http://127.0.0.1:$port
    for _ in $(seq 100); do curl -fs -o /dev/null "$url/" && break; sleep 0.1; done
    hdr=$(curl -s -D - -o "$d/page" "$url/")
    cookie=$(printf '%s' "$hdr" | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\).*/\1/Ip' | head -1)
    csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$d/page" | head -1)
    post() {
        curl -s -o /dev/null -w '%{http_code}\n' -H "Cookie: $cookie" --data-urlencode username=alice \
            --data-urlencode "password=wrong password!!" --data-urlencode rd= --data-urlencode "csrf=$csrf" "$url/login"
    }
    cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
    c0=$(cpu)
    allowed=$(for _ in 1 2 3 4 5; do post; done | sort | uniq -c | tr -s ' \n' ' ')
    c1=$(cpu)
    banned=$(for _ in $(seq 100); do post; done | sort | uniq -c | tr -s ' \n' ' ')
    c2=$(cpu)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$d"
    python3 -c "
a = ($c1 - $c0) / $TCK / 5 * 1000
b = ($c2 - $c1) / $TCK / 100 * 1000
print(f'{a:.3f} {b:.3f}', end=' ')" 
    echo "allowed:[$allowed] banned:[$banned]"
}

echo "round  ms CPU per allowed attempt  ms CPU per banned attempt  banned/allowed  statuses"
results=()
for r in $(seq "$ROUNDS"); do
    read -r a b rest < <(round)
    ratio=$(python3 -c "print(f'{$b / $a * 100:.2f} %' if $a > 0 else 'n/a')")
    printf '%5d  %26s  %25s  %14s  %s\n' "$r" "$a" "$b" "$ratio" "$rest"
    results+=("$a $b")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
for i, name in ((0, "allowed"), (1, "banned")):
    v = [r[i] for r in rows]
    print(f"{name}: median {statistics.median(v):.3f} ms CPU per attempt (range {min(v):.3f}–{max(v):.3f})")
ratios = [r[1] / r[0] * 100 for r in rows if r[0] > 0]
if ratios:
    print(f"banned/allowed: median {statistics.median(ratios):.2f} % (range {min(ratios):.2f}–{max(ratios):.2f} %)")'
