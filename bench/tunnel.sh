#!/usr/bin/env bash
# Tunnel benchmark: runs every path in one go on loopback and prints the
# figures side by side with ratios.
#
#   (1) app direct            wrk → nginx (static app)
#   (2) nginx TLS → app       wrk → nginx TLS → upstream keepalive → app
#   (3) relay+agent → app     wrk → relay :visitors → agent → app
#   (4) nginx TLS → relay     wrk → nginx TLS → relay → agent → app
#
# Usage: cargo build --release --bins --example delay_proxy &&
#        cargo build --profile small --bin portico-agent &&
#        RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile small \
#            --target x86_64-unknown-linux-gnu --bin portico-relay &&
#        bench/tunnel.sh [seconds per run, default 5]
# ROUNDS=n (default 3) repeats the req/s runs: each round runs every path at
# every concurrency in turn, and the ratios are given per round and as their
# median, so that one slow spell of a noisy machine does not decide a ratio.
# The runs use `portico relay` and `portico agent` (the binary the appliance
# ships); portico-agent and portico-relay, the single-purpose binaries (built
# with the `small` profile: opt-level "s"; portico-relay linked statically, so
# no pages of libc, libm and ld.so are mapped), are measured idle at the end,
# and portico-agent's throughput beside `portico agent`'s.
# Needs: nginx, wrk, curl, openssl, sqlite3, python3. Uses ports 2xxxx, a temp dir,
# and stops everything it started on exit.
#
# The 50 ms RTT runs go through examples/delay_proxy (a delaying TCP proxy
# between agent and relay): this kernel has no `tc netem`, and the former
# Python proxy halved the tunnel's throughput even at zero delay.
set -euo pipefail

# Every path runs in a network namespace of its own (loopback only) when this
# runs as root: the host's firewall (on a machine with Docker: its iptables
# rules, which make conntrack and the nat table look at every loopback packet)
# costs each TCP hop, and the tunnel paths have three hops where path 1 has
# one. The appliance's loopback traffic runs in its container's namespace.
# BENCH_NETNS=host keeps the host's namespace.
if [ "${BENCH_NETNS:-}" = "" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
    exec env BENCH_NETNS=private unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
NETNS=${BENCH_NETNS:-host}

DUR=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PORTICO_BIN:-$ROOT/target/release/portico}
AGENT_BIN=${PORTICO_AGENT_BIN:-$ROOT/target/small/portico-agent}
RELAY_BIN=${PORTICO_RELAY_BIN:-$ROOT/target/x86_64-unknown-linux-gnu/small/portico-relay}
DELAY_PROXY=${DELAY_PROXY:-$ROOT/target/release/examples/delay_proxy}
for b in "$BIN" "$AGENT_BIN" "$RELAY_BIN" "$DELAY_PROXY"; do
    [ -x "$b" ] || { echo "build first: see the usage at the top of $0 ($b missing)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/portico-bench.XXXXXX)
chmod 755 "$W"   # nginx workers (nobody) read the app files
# Below the ephemeral range (32768+), where curl and wrk connections could hold a port.
BASE=$((20000 + RANDOM % 12000))
P_APP=$BASE P_TLS=$((BASE + 1)) P_AGENTS=$((BASE + 2)) P_VISITORS=$((BASE + 3)) P_TLS_RELAY=$((BASE + 4))
P_TLS_SLOW=$((BASE + 9))
HOST=app.bench.test
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

# --- the app and the TLS front: one nginx -----------------------------------
mkdir -p "$W/www" "$W/logs" "$W/data" "$W/agent"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$W/www/1k"
head -c $((100 * 1024 * 1024)) /dev/zero > "$W/www/big"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$HOST" \
    -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
cat > "$W/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    upstream app { server 127.0.0.1:$P_APP; keepalive 256; }
    upstream relay_app { server 127.0.0.1:$P_VISITORS; keepalive 256; }
    server { listen 127.0.0.1:$P_APP; root $W/www; }
    server {
        listen 127.0.0.1:$P_TLS ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
    }
    server {
        listen 127.0.0.1:$P_TLS_RELAY ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
        location / { proxy_pass http://relay_app; proxy_http_version 1.1; proxy_set_header Connection "";
                     proxy_set_header Host \$host; proxy_buffering off; }
    }
    # The slow tunnel as the appliance publishes it: its own keep-alive pool.
    upstream relay_slow { server 127.0.0.1:$P_VISITORS; keepalive 8; keepalive_timeout 5s; }
    server {
        listen 127.0.0.1:$P_TLS_SLOW ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
        location / { proxy_pass http://relay_slow; proxy_http_version 1.1; proxy_set_header Connection "";
                     proxy_set_header Host slow.bench.test; proxy_buffering off; }
    }
}
EOF
nginx -p "$W" -c "$W/nginx.conf"

# --- relay, store rows, agent ------------------------------------------------
export PORTICO__DATA_DIR="$W/data" PORTICO__LOG__LEVEL=warn
export PORTICO__RELAY__AGENTS_LISTEN=127.0.0.1:$P_AGENTS PORTICO__RELAY__VISITORS_LISTEN=127.0.0.1:$P_VISITORS
start_relay() {
    "$BIN" relay 2>>"$W/logs/relay.log" &
    RELAY=$!
    PIDS+=("$RELAY")
}
start_relay
for _ in $(seq 100); do [ -f "$W/data/portico.db" ] && break; sleep 0.05; done
sleep 0.3
now=$(date +%s)
add_agent() { # label serial
    sqlite3 -cmd ".timeout 5000" "$W/data/portico.db" "
      INSERT INTO agents (label, capabilities, created_at) VALUES ('$1', 'tunnels:read', $now);
      INSERT INTO client_certs (serial, kind, label, fingerprint, not_after, created_at)
        VALUES ('$2', 'agent', '$1', 'fp$2', $((now + 86400)), $now);"
}
add_agent home ABC1
sqlite3 -cmd ".timeout 5000" "$W/data/portico.db" "INSERT INTO tunnels (name, agent, target, access, created_at, updated_at)
  VALUES ('app', 'home', '127.0.0.1:$P_APP', 'public', $now, $now);"
echo '{"label":"home","serial":"ABC1","relay":"ws://127.0.0.1:'$P_AGENTS'/","panel":"bench"}' > "$W/agent/agent.json"

ms() { date +%s%3N; }
first_200() { # url -> ms until the first 200
    local t0; t0=$(ms)
    for _ in $(seq 2000); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "$1")" = 200 ] && { echo $(( $(ms) - t0 )); return; }
        sleep 0.005
    done
    echo "no 200 from $1; logs:" >&2; tail -n 5 "$W"/logs/*.log >&2
    echo 99999
}
sleep 0.5
# `agent run` → first 200, timed in one process that starts the agent and then
# asks without pause (a curl per try would add its own start-up to each try).
# Prints the agent's pid, then the milliseconds.
{ read -r AGENT; read -r UP_MS; } < <(python3 - "$BIN" "$W" "$P_VISITORS" "$HOST" <<'PY'
import http.client, subprocess, sys, time
bin, w, port, host = sys.argv[1:]
t0 = time.monotonic()
agent = subprocess.Popen([bin, "agent", "--config-dir", f"{w}/agent", "run"],
                         stdout=subprocess.DEVNULL, stderr=open(f"{w}/logs/agent.log", "a"))
print(agent.pid, flush=True)
status, ms = 0, 99999
while status != 200 and time.monotonic() - t0 < 10:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=2)
        c.request("GET", "/1k", headers={"Host": host})
        status = c.getresponse().status
        c.close()
    except OSError:
        time.sleep(0.001)
    if status == 200:
        ms = round((time.monotonic() - t0) * 1000)
print(ms, flush=True)
PY
)
PIDS+=("$AGENT")
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }   # KiB
anon() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }   # KiB: private heap, stacks
mem() { echo "$(rss "$1")/$(anon "$1")"; }   # KiB "resident/anonymous"
cpu_ticks() { local s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }
nginx_pids() { pgrep -P "$(cat "$W/nginx.pid")" | tr '\n' ' '; cat "$W/nginx.pid"; }
sleep 1
RELAY_IDLE=$(mem $RELAY) AGENT_IDLE=$(mem $AGENT)

declare -A RPS P50 P99
run_wrk() { # key url conns
    local out
    out=$(wrk -t2 -c"$3" -d"${DUR}s" --latency -H "Host: $HOST" "$2" 2>&1)
    RPS[$1]=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
    P50[$1]=$(awk '$1=="50%" {print $2}' <<<"$out")
    P99[$1]=$(awk '$1=="99%" {print $2}' <<<"$out")
    REQS=$(awk '/requests in/ {print $1}' <<<"$out")
}
URL1="http://127.0.0.1:$P_APP/1k" URL2="https://127.0.0.1:$P_TLS/1k"
URL3="http://127.0.0.1:$P_VISITORS/1k" URL4="https://127.0.0.1:$P_TLS_RELAY/1k"
HZ=$(getconf CLK_TCK)
us_per_req() { echo $(( ($2 - $1) * 1000000 / HZ / (REQS > 0 ? REQS : 1) )); }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2 + 0.5)}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "-" }'; }
ratio() { local r; r=$(pct "$1" "$2"); [ "$r" = - ] && echo - || echo "$r%"; }
# ROUNDS (see the top): the table shows the last round's req/s and latency.
ROUNDS=${ROUNDS:-3}
declare -A RATIOS CPU_ROUNDS
for round in $(seq "$ROUNDS"); do
    for c in 16 64 256; do
        for p in 1 2 3 4; do
            url=URL$p
            n0=$(cpu_ticks $(nginx_pids)) r0=$(cpu_ticks $RELAY) a0=$(cpu_ticks $AGENT)
            run_wrk "$p-$c" "${!url}" "$c"
            n1=$(cpu_ticks $(nginx_pids)) r1=$(cpu_ticks $RELAY) a1=$(cpu_ticks $AGENT)
            if [ "$c" = 64 ]; then
                CPU_ROUNDS[$p]+="$(us_per_req $((n0 + r0 + a0)) $((n1 + r1 + a1))) "
                if [ "$p" = 4 ]; then
                    CPU_SPLIT="nginx $(us_per_req "$n0" "$n1"), relay $(us_per_req "$r0" "$r1"), agent $(us_per_req "$a0" "$a1")"
                    CPU_ROUNDS[tunnel]+="$(us_per_req $((r0 + a0)) $((r1 + a1))) "
                fi
            fi
        done
        RATIOS[3-$c]+="$(pct "${RPS[3-$c]}" "${RPS[1-$c]}") "
        RATIOS[4-$c]+="$(pct "${RPS[4-$c]}" "${RPS[2-$c]}") "
    done
done
RELAY_PEAK=$(mem $RELAY) AGENT_PEAK=$(mem $AGENT)

bulk() { curl -sS --max-time 60 -o /dev/null -w '%{speed_download}' -H "Host: $HOST" -k "$1" | awk '{printf "%.0f", $1 / 1048576}'; }
B1=$(bulk "http://127.0.0.1:$P_APP/big") B2=$(bulk "https://127.0.0.1:$P_TLS/big")
B3=$(bulk "http://127.0.0.1:$P_VISITORS/big") B4=$(bulk "https://127.0.0.1:$P_TLS_RELAY/big")

# The same download with 50 ms RTT between agent and relay (delaying proxy).
# "cold" is a new stream, whose window starts at yamux's 256 KiB and grows ×64
# per round trip while the session has window to spare (×2 upstream); "warm" is a second 100 MB on the same visitor connection,
# hence the same stream, its window already grown.
P_DELAY=$((BASE + 5))
"$DELAY_PROXY" $P_DELAY $P_AGENTS 25 &
PIDS+=($!)
add_agent slow D1
sqlite3 -cmd ".timeout 5000" "$W/data/portico.db" "INSERT INTO tunnels (name, agent, target, access, created_at, updated_at)
  VALUES ('slow', 'slow', '127.0.0.1:$P_APP', 'public', $now, $now);"
mkdir -p "$W/slow"
echo '{"label":"slow","serial":"D1","relay":"ws://127.0.0.1:'$P_DELAY'/","panel":"bench"}' > "$W/slow/agent.json"
"$BIN" agent --config-dir "$W/slow" run 2>/dev/null &
PIDS+=($!)
HOST=slow.bench.test first_200 "http://127.0.0.1:$P_VISITORS/1k" >/dev/null
read -r B_RTT B_RTT_WARM < <(curl -sS --max-time 120 -o /dev/null -o /dev/null -w '%{speed_download}\n' \
    -H "Host: slow.bench.test" "http://127.0.0.1:$P_VISITORS/big" "http://127.0.0.1:$P_VISITORS/big" |
    awk '{printf "%.0f ", $1 / 1048576} END {print ""}')
# Through nginx, as visitors meet it: two visitors one after the other, each
# on a new TLS connection; the second one's request rides the upstream
# connection nginx kept, hence the stream whose window the first one grew.
B_RTT_NGINX=()
for _ in 1 2; do
    B_RTT_NGINX+=("$(bulk "https://127.0.0.1:$P_TLS_SLOW/big")")
done
# A new stream while nginx's pooled stream (idle now) still holds the window the
# downloads grew: yamux never shrinks a window, and the agent's session has
# WINDOW_HEADROOM to share above every stream's 256 KiB.
# The appliance closes such idle pooled connections after 5 s; then new
# streams grow again.
beside() {
    curl -sS --max-time 120 -o /dev/null -w '%{speed_download}' -H "Host: slow.bench.test" \
        "http://127.0.0.1:$P_VISITORS/big" | awk '{printf "%.0f", $1 / 1048576}'
}
B_RTT_BESIDE=$(beside)
sleep 6
B_RTT_AFTER=$(beside)
"$DELAY_PROXY" $((BASE + 6)) $P_APP 25 &
PIDS+=($!)
sleep 0.3
B_RTT_DIRECT=$(curl -sS --max-time 120 -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$((BASE + 6))/big" |
    awk '{printf "%.0f", $1 / 1048576}')

# Head-of-line: small requests on path 3 while 100 MB downloads run on the same agent.
( for _ in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -H "Host: $HOST" "http://127.0.0.1:$P_VISITORS/big"; done ) &
BULK=$!
run_wrk hol "$URL3" 16
kill $BULK 2>/dev/null || true
wait $BULK 2>/dev/null || true

# Relay restart, and a flapping relay (killed 1 s after each recovery, 5 times).
kill $RELAY; wait $RELAY 2>/dev/null || true
start_relay
RESTART_MS=$(first_200 "$URL3")
FLAPS=()
for _ in 1 2 3 4 5; do
    sleep 1
    kill $RELAY; wait $RELAY 2>/dev/null || true
    start_relay
    FLAPS+=("$(first_200 "$URL3")")
done

# 100 agents connected at once.
AGENTS100=()
for i in $(seq 1 99); do
    add_agent "a$i" "F$i"
    mkdir -p "$W/a$i"
    echo '{"label":"a'$i'","serial":"F'$i'","relay":"ws://127.0.0.1:'$P_AGENTS'/","panel":"bench"}' > "$W/a$i/agent.json"
    "$BIN" agent --config-dir "$W/a$i" run 2>/dev/null &
    AGENTS100+=($!)
    PIDS+=($!)
done
connected_at_least() { # n
    for _ in $(seq 200); do
        n=$(sqlite3 "$W/data/portico.db" "SELECT count(*) FROM relay_status" 2>/dev/null || echo 0)
        [ "$n" -ge "$1" ] && return
        sleep 0.1
    done
}
connected_at_least 100
sleep 1
RELAY_100=$(mem $RELAY)
AGENT_100_AVG=$(for p in "${AGENTS100[@]}"; do mem "$p"; done | awk -F/ '{r+=$1; a+=$2} END {printf "%d/%d", r/NR, a/NR}')

# The agent-only binary, idle.
add_agent small S1
mkdir -p "$W/small"
echo '{"label":"small","serial":"S1","relay":"ws://127.0.0.1:'$P_AGENTS'/","panel":"bench"}' > "$W/small/agent.json"
"$AGENT_BIN" --config-dir "$W/small" run 2>/dev/null &
SMALL=$!
PIDS+=($SMALL)
connected_at_least 101
sleep 1
SMALL_IDLE=$(mem $SMALL)
# Its throughput on path 3, beside `portico agent`'s (c64 and the 100 MB download).
sqlite3 -cmd ".timeout 5000" "$W/data/portico.db" "INSERT INTO tunnels (name, agent, target, access, created_at, updated_at)
  VALUES ('lite', 'small', '127.0.0.1:$P_APP', 'public', $now, $now);"
HOST=lite.bench.test first_200 "$URL3" >/dev/null
HOST=lite.bench.test run_wrk lite "$URL3" 64
B_LITE=$(curl -sS --max-time 60 -o /dev/null -w '%{speed_download}' -H "Host: lite.bench.test" "http://127.0.0.1:$P_VISITORS/big" |
    awk '{printf "%.0f", $1 / 1048576}')

# The relay-only binary, idle with one agent, on ports of its own.
PORTICO__RELAY__AGENTS_LISTEN=127.0.0.1:$((BASE + 7)) PORTICO__RELAY__VISITORS_LISTEN=127.0.0.1:$((BASE + 8)) \
    "$RELAY_BIN" 2>>"$W/logs/relay-small.log" &
SMALL_RELAY=$!
PIDS+=($SMALL_RELAY)
add_agent lone L1
mkdir -p "$W/lone"
echo '{"label":"lone","serial":"L1","relay":"ws://127.0.0.1:'$((BASE + 7))'/","panel":"bench"}' > "$W/lone/agent.json"
sleep 0.3
"$AGENT_BIN" --config-dir "$W/lone" run 2>/dev/null &
LONE=$!
PIDS+=($LONE)
sleep 1.5
SMALL_RELAY_IDLE=$(mem $SMALL_RELAY 2>/dev/null) || { echo "portico-relay did not stay up:" >&2; tail -n 20 "$W/logs/relay-small.log" >&2; }
# Both single-purpose binaries at their peak: c256 through them.
sqlite3 -cmd ".timeout 5000" "$W/data/portico.db" "INSERT INTO tunnels (name, agent, target, access, created_at, updated_at)
  VALUES ('lone', 'lone', '127.0.0.1:$P_APP', 'public', $now, $now);"
HOST=lone.bench.test first_200 "http://127.0.0.1:$((BASE + 8))/1k" >/dev/null
HOST=lone.bench.test run_wrk lone "http://127.0.0.1:$((BASE + 8))/1k" 256
SMALL_RELAY_PEAK=$(mem $SMALL_RELAY) SMALL_AGENT_PEAK=$(mem $LONE)

echo
echo "Portico tunnel benchmark ($DUR s per wrk run, 1 KB response, loopback in the $NETNS network namespace, $(nproc) cores)"
echo "req/s and latency of the last of $ROUNDS rounds; ratios (%) of each round, then their median"
printf '%-6s | %-22s | %-22s | %-22s | %-22s | %-22s %-22s\n' conns "(1) direct" "(2) nginx TLS" "(3) relay+agent" "(4) nginx TLS+relay" "3 vs 1" "4 vs 2"
for c in 16 64 256; do
    cell() { printf '%6s r/s p50 %-5s p99 %-6s' "${RPS[$1-$c]}" "${P50[$1-$c]}" "${P99[$1-$c]}"; }
    rounds() { printf '%s→ %s%%' "${RATIOS[$1-$c]}" "$(median <<<"${RATIOS[$1-$c]}")"; }
    printf '%-6s | %s | %s | %s | %s | %-22s %-22s\n' "c$c" "$(cell 1)" "$(cell 2)" "$(cell 3)" "$(cell 4)" "$(rounds 3)" "$(rounds 4)"
done
echo "100 MB download MB/s:      (1) $B1  (2) $B2  (3) $B3  (4) $B4   3 vs 1: $(ratio "$B3" "$B1")  4 vs 2: $(ratio "$B4" "$B2")"
echo "100 MB download with 50 ms RTT: relay+agent cold $B_RTT MB/s ($(awk -v b="$B_RTT" 'BEGIN {printf "%.1f", b / 40}')×), warm $B_RTT_WARM MB/s ($(awk -v b="$B_RTT_WARM" 'BEGIN {printf "%.1f", b / 40}')×); same proxy without tunnel $B_RTT_DIRECT MB/s (× = of the 40 MB/s a 2 MiB window allows at 50 ms)"
echo "100 MB download with 50 ms RTT through nginx TLS: first visitor ${B_RTT_NGINX[0]} MB/s ($(awk -v b="${B_RTT_NGINX[0]}" 'BEGIN {printf "%.1f", b / 40}')×), next visitor ${B_RTT_NGINX[1]} MB/s ($(awk -v b="${B_RTT_NGINX[1]}" 'BEGIN {printf "%.1f", b / 40}')×); then a new stream beside nginx's idle pooled one: $B_RTT_BESIDE MB/s, once nginx closed it (keepalive_timeout 5s): $B_RTT_AFTER MB/s"
cpu_cell() { printf '%s→ %s' "${CPU_ROUNDS[$1]}" "$(median <<<"${CPU_ROUNDS[$1]}")"; }
echo "CPU per request at c64 (nginx+relay+agent, µs; each round → median): (1) $(cpu_cell 1)  (2) $(cpu_cell 2)  (3) $(cpu_cell 3)  (4) $(cpu_cell 4); of which relay+agent on path 4: $(cpu_cell tunnel); path 4's last round by process: ${CPU_SPLIT}"
echo "small requests during bulk downloads (path 3, c16): ${RPS[hol]} r/s, p50 ${P50[hol]}, p99 ${P99[hol]}  (idle c16: p99 ${P99[3-16]})"
echo "RSS KiB (resident/anonymous): relay idle $RELAY_IDLE, peak $RELAY_PEAK, with 100 agents $RELAY_100; portico-relay idle $SMALL_RELAY_IDLE, peak at c256 $SMALL_RELAY_PEAK"
echo "RSS KiB (resident/anonymous): agent idle $AGENT_IDLE, peak $AGENT_PEAK, avg of 99 idle agents $AGENT_100_AVG; portico-agent idle $SMALL_IDLE, peak at c256 $SMALL_AGENT_PEAK"
echo "portico-agent (small profile) on path 3: c64 ${RPS[lite]} r/s vs ${RPS[3-64]} for portico agent ($(ratio "${RPS[lite]}" "${RPS[3-64]}")), 100 MB $B_LITE vs $B3 MB/s ($(ratio "$B_LITE" "$B3"))"
echo "agent run → first 200: ${UP_MS} ms; relay restart → first 200: ${RESTART_MS} ms; flapping relay: ${FLAPS[*]} ms"
