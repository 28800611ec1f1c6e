#!/usr/bin/env bash
# authd's decision path under load, in one run, side by side:
#   1. GET /api/authz/nginx on authd directly (valid session, restricted
#      tunnel, group grant) vs. a trivial actix-web handler (200, empty);
#   2. the full path nginx → auth_request → authd → stub app vs. nginx → stub
#      app without auth.
# Prints req/s and p99 latency for each and the ratios. Needs wrk and nginx.
# Usage: bench/authd.sh   (DURATION=10s CONNECTIONS=32 THREADS=2 to change)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

cargo build --release --quiet --bin portico --example authd_bench
BIN=target/release/portico
HELPER=target/release/examples/authd_bench

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AUTHD=$(free_port); STUB=$(free_port); TRIVIAL=$(free_port); NGINX=$(free_port)

cookie=$("$HELPER" setup "$work")
PORTICO_OPTIONS=/nonexistent PORTICO__DATA_DIR="$work" PORTICO__AUTHD__LISTEN="127.0.0.1:$AUTHD" \
    PORTICO__LOG__LEVEL=warn "$BIN" authd & pids+=($!)
"$HELPER" trivial "127.0.0.1:$STUB" & pids+=($!)
"$HELPER" trivial "127.0.0.1:$TRIVIAL" & pids+=($!)

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream authd { server 127.0.0.1:$AUTHD; keepalive 64; }
    upstream stub { server 127.0.0.1:$STUB; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX;
        location = /_authz {
            internal;
            proxy_pass http://authd/api/authz/nginx;
            proxy_pass_request_body off;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Host app.bench.test;
            proxy_set_header X-Portico-Resource app;
        }
        location /open {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://stub;
        }
        location /auth {
            auth_request /_authz;
            auth_request_set \$portico_user \$upstream_http_remote_user;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Remote-User \$portico_user;
            proxy_pass http://stub;
        }
    }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"

wait_for() {
    for _ in $(seq 1 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: portico_session=$cookie" \
            -H "X-Portico-Resource: app" "$1" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    echo "no 200 from $1 (last: $code)" >&2
    exit 1
}
wait_for "http://127.0.0.1:$AUTHD/api/authz/nginx"
wait_for "http://127.0.0.1:$TRIVIAL/"
wait_for "http://127.0.0.1:$NGINX/auth"
wait_for "http://127.0.0.1:$NGINX/open"
# A wrong cookie must be refused, or the numbers mean nothing.
bad=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: portico_session=nope" "http://127.0.0.1:$NGINX/auth")
[ "$bad" = 401 ] || { echo "nginx /auth with a bad cookie answered $bad" >&2; exit 1; }

# Prints "<req/s> <p99 ms>" for one wrk run: run URL [threads connections].
run() {
    wrk -t"${2:-$THREADS}" -c"${3:-$CONNECTIONS}" -d"$DURATION" --latency \
        -H "Cookie: portico_session=$cookie" -H "X-Portico-Resource: app" "$1" > "$work/wrk.out"
    if grep -q "Non-2xx" "$work/wrk.out"; then echo "non-2xx answers from $1" >&2; cat "$work/wrk.out" >&2; exit 1; fi
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
    p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$work/wrk.out")
    echo "$rps $p99"
}

read -r a_rps a_p99 < <(run "http://127.0.0.1:$AUTHD/api/authz/nginx")
read -r t_rps t_p99 < <(run "http://127.0.0.1:$TRIVIAL/")
read -r n_rps n_p99 < <(run "http://127.0.0.1:$NGINX/auth")
read -r o_rps o_p99 < <(run "http://127.0.0.1:$NGINX/open")
# One connection: latency without queueing behind a saturated CPU.
read -r a1_rps a1_p99 < <(run "http://127.0.0.1:$AUTHD/api/authz/nginx" 1 1)
read -r t1_rps t1_p99 < <(run "http://127.0.0.1:$TRIVIAL/" 1 1)

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $(nproc) cores (shared)"
printf '%-44s %12s %10s\n' "target" "req/s" "p99 ms"
printf '%-44s %12s %10s\n' "authd /api/authz/nginx (valid session)" "$a_rps" "$a_p99"
printf '%-44s %12s %10s\n' "trivial actix-web handler" "$t_rps" "$t_p99"
printf '%-44s %12s %10s\n' "nginx -> auth_request -> authd -> stub app" "$n_rps" "$n_p99"
printf '%-44s %12s %10s\n' "nginx -> stub app (no auth)" "$o_rps" "$o_p99"
printf '%-44s %12s %10s\n' "authd /api/authz/nginx, 1 connection" "$a1_rps" "$a1_p99"
printf '%-44s %12s %10s\n' "trivial actix-web handler, 1 connection" "$t1_rps" "$t1_p99"
awk -v a="$a_rps" -v t="$t_rps" -v n="$n_rps" -v o="$o_rps" -v a1="$a1_p99" -v t1="$t1_p99" 'BEGIN {
    printf "ratio authd verify / trivial handler (req/s): %.2f\n", a / t;
    printf "ratio nginx with auth / without (req/s):      %.2f\n", n / o;
    printf "ratio authd / trivial p99 at 1 connection:    %.2f\n", a1 / t1;
}'
