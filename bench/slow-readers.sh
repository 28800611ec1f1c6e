#!/usr/bin/env bash
# The relay's memory under two attacks, on loopback:
#
#   (1) 1,000 visitors that ask for a 64 MB download through the tunnel and
#       then stop reading: relay RSS before, while they hang, and after they
#       left (the relay must stay under 48 MB and give the memory back).
#   (2) 20 agent connections with a revoked certificate that each send a
#       60 MiB WebSocket message after their upgrade request: relay RSS before
#       and after (the relay answers 403 from the request head and reads none
#       of it).
#
# Usage: cargo build --release --bin portico && bench/slow-readers.sh
# Needs: nginx, sqlite3, python3. Uses loopback ports 2xxxx and a temp dir,
# runs in a network namespace of its own when root (BENCH_NETNS=host keeps
# the host's), and stops everything it started on exit. Bounded: 1,000
# connections (SLOW, default 1000), each phase waits at most 60 s.
# HOLD=N (seconds, at most 600) keeps the visitors connected that long after
# the peak was printed, to look at the relay's heap while they hang (e.g.
# /proc/PID/smaps_rollup, or malloc_info through gdb).
set -euo pipefail

if [ "${BENCH_NETNS:-}" = "" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
    exec env BENCH_NETNS=private unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

SLOW=${SLOW:-1000}
HOLD=${HOLD:-0}
[ "$HOLD" -le 600 ] 2>/dev/null || { echo "HOLD must be 0-600 seconds" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PORTICO_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portico}
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin portico ($BIN missing)" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || true
W=$(mktemp -d /tmp/portico-slow.XXXXXX)
chmod 755 "$W"
BASE=$((20000 + RANDOM % 12000))
P_APP=$BASE P_AGENTS=$((BASE + 1)) P_VISITORS=$((BASE + 2))
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp -r "$W/logs" /tmp/slow-logs; rm -rf "$W"
}
trap cleanup EXIT

# --- the app: nginx with a 64 MB file ---------------------------------------
mkdir -p "$W/www" "$W/logs" "$W/data" "$W/agent"
head -c $((64 * 1024 * 1024)) /dev/zero > "$W/www/big"
cat > "$W/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    server { listen 127.0.0.1:$P_APP; root $W/www; }
}
EOF
nginx -p "$W" -c "$W/nginx.conf"

# --- relay, store rows, agent -------------------------------------------------
export PORTICO__DATA_DIR="$W/data" PORTICO__LOG__LEVEL=warn
export PORTICO__RELAY__AGENTS_LISTEN=127.0.0.1:$P_AGENTS PORTICO__RELAY__VISITORS_LISTEN=127.0.0.1:$P_VISITORS
"$BIN" relay 2>>"$W/logs/relay.log" &
RELAY=$!
PIDS+=("$RELAY")
# The relay creates the store and its tables at start.
for _ in $(seq 300); do sqlite3 "$W/data/portico.db" "SELECT 1 FROM tunnels LIMIT 1" >/dev/null 2>&1 && break; sleep 0.1; done
now=$(date +%s)
sqlite3 -cmd ".timeout 5000" "$W/data/portico.db" "
  INSERT INTO agents (label, capabilities, created_at) VALUES ('home', 'tunnels:read', $now);
  INSERT INTO client_certs (serial, kind, label, fingerprint, not_after, created_at)
    VALUES ('ABC1', 'agent', 'home', 'fpABC1', $((now + 86400)), $now);
  INSERT INTO agents (label, capabilities, created_at, revoked_at) VALUES ('gone', 'tunnels:read', $now, $now);
  INSERT INTO client_certs (serial, kind, label, fingerprint, not_after, created_at, revoked_at)
    VALUES ('DEAD1', 'agent', 'gone', 'fpDEAD1', $((now + 86400)), $now, $now);
  INSERT INTO tunnels (name, agent, target, access, created_at, updated_at)
    VALUES ('app', 'home', '127.0.0.1:$P_APP', 'public', $now, $now);"
echo '{"label":"home","serial":"ABC1","relay":"ws://127.0.0.1:'$P_AGENTS'/","panel":"bench"}' > "$W/agent/agent.json"
"$BIN" agent --config-dir "$W/agent" run 2>>"$W/logs/agent.log" &
PIDS+=($!)
for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: app.bench.test' "http://127.0.0.1:$P_VISITORS/big" --max-filesize 1 2>/dev/null || true)" != 502 ] && break
    sleep 0.05
done

rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$RELAY/status"; }
alive() { kill -0 "$RELAY" 2>/dev/null || { echo "the relay died; log:" >&2; tail -n 20 "$W/logs/relay.log" >&2; exit 1; }; }

# --- (1) slow readers ----------------------------------------------------------
sleep 1
IDLE=$(rss)
python3 - "$P_VISITORS" "$SLOW" "$RELAY" "$HOLD" > "$W/slow.out" <<'EOF'
import asyncio, socket, sys, time
port, n, relay, hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def rss():
    for line in open(f"/proc/{relay}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
async def one(held):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); s.setblocking(False)
    await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
    await asyncio.get_running_loop().sock_sendall(s, b"GET /big HTTP/1.1\r\nHost: app.bench.test\r\n\r\n")
    first = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(s, 1024), 30)
    held.append((s, first[:12]))   # and never reads again
async def main():
    held = []
    await asyncio.gather(*(one(held) for _ in range(n)), return_exceptions=True)
    ok = sum(1 for _, f in held if f.startswith(b"HTTP/1.1 200"))
    # Wait until the relay's RSS stops growing (at most 60 s), keep the peak.
    peak, last, t0 = rss(), 0, time.time()
    while time.time() - t0 < 60:
        await asyncio.sleep(2)
        now = rss(); peak = max(peak, now)
        if abs(now - last) < 0.5: break
        last = now
    print(f"{ok} {len(held)} {peak:.1f} {rss():.1f}")
    sys.stdout.flush()
    if hold:
        print(f"holding {len(held)} visitors for {hold} s (relay pid {relay})", file=sys.stderr)
        time.sleep(hold)
    for s, _ in held: s.close()
asyncio.run(main())
EOF
alive
read -r OK HELD PEAK DURING < "$W/slow.out"
# Gone visitors free their streams at once or after the half-close timeout.
AFTER=$(rss)
for _ in $(seq 60); do sleep 1; AFTER=$(rss); done
alive

# --- (2) revoked certificates with large messages ---------------------------------
BEFORE_REVOKED=$(rss)
python3 - "$P_AGENTS" > "$W/revoked.out" <<'EOF'
import socket, sys, threading
port = int(sys.argv[1])
head = (b"GET / HTTP/1.1\r\nHost: tunnel.bench.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"X-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-DN: CN=agent:gone,O=Portico\r\nX-SSL-Client-Serial: DEAD1\r\n\r\n")
frame = 15 * 1024 * 1024
results = []
def one():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(30)
    sent = 0
    try:
        s.sendall(head)
        zeros = bytes(256 * 1024)
        for op in (0x02, 0x00, 0x00, 0x80):
            s.sendall(bytes([op, 0x80 | 127]) + frame.to_bytes(8, "big") + bytes(4))
            for _ in range(frame // len(zeros)):
                s.sendall(zeros); sent += len(zeros)
    except OSError:
        pass
    try:
        answer = s.recv(64)
    except OSError:
        answer = b""
    results.append((sent, answer[:12]))
threads = [threading.Thread(target=one) for _ in range(20)]
for t in threads: t.start()
for t in threads: t.join()
refused = sum(1 for _, a in results if a.startswith(b"HTTP/1.1 403"))
print(refused, max(s for s, _ in results) // (1024 * 1024))
EOF
alive
read -r REFUSED MAXSENT < "$W/revoked.out"
sleep 1
AFTER_REVOKED=$(rss)

echo
echo "Relay RSS (MB), $SLOW visitors that stop reading a 64 MB download"
printf '%-34s %8s\n' "idle, agent connected" "$IDLE"
printf '%-34s %8s\n' "peak while they hang" "$PEAK"
printf '%-34s %8s\n' "settled while they hang" "$DURING"
printf '%-34s %8s\n' "60 s after they left" "$AFTER"
echo "visitors answered 200: $OK of $HELD connected"
echo
echo "Relay RSS (MB), 20 revoked-certificate upgrades each sending a 60 MiB message"
printf '%-34s %8s\n' "before" "$BEFORE_REVOKED"
printf '%-34s %8s\n' "after" "$AFTER_REVOKED"
echo "answered 403: $REFUSED of 20; most any of them got into the socket before the relay closed it: ${MAXSENT} MiB"
