#!/usr/bin/env bash
# The panel's memory while it receives site uploads: the file is streamed to
# disk, so resident memory must not grow with the upload size. Runs
# `portico serve` (nginx off) on a loopback port, uploads a SMALL and a LARGE
# file through POST /api/sites/{id}/files (multipart, curl reading from disk)
# and samples the panel's VmRSS every 20 ms while each upload runs.
# Prints idle RSS, peak RSS per upload, growth over idle, and the ratios side
# by side; checks the stored file's sha256.
# Usage: bench/sites-upload.sh   (LARGE_MB=200 SMALL_MB=20 BIN=target/release/portico to change)
set -euo pipefail
cd "$(dirname "$0")/.."

LARGE_MB=${LARGE_MB:-200}
SMALL_MB=${SMALL_MB:-20}
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin portico
    BIN=target/release/portico
fi

work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PORTICO__DATA_DIR="$work/data" PORTICO__PANEL__LISTEN="127.0.0.1:$port" PORTICO__PUBLIC_IP=203.0.113.10 \
    PORTICO__LOG__LEVEL=warn PORTICO_OPTIONS="$work/none.json" PORTICO__NGINX__ENABLED=false
"$BIN" init >/dev/null
serial=$(openssl x509 -noout -serial -in "$work/data/pki/admin.crt" | cut -d= -f2)
python3 - "$work/data/portico.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO settings (key, value) VALUES ('onboarding.state', 'COMPLETED') "
           "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
db.commit()
PY

"$BIN" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
    sleep 0.1
done

api() {
    curl -sS -H "X-SSL-Client-Verify: SUCCESS" -H "X-SSL-Client-DN: CN=admin,O=Portico" \
        -H "X-SSL-Client-Serial: $serial" "$@"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

id=$(api -H 'Content-Type: application/json' -d '{"name":"bench","access":"public"}' \
    "http://127.0.0.1:$port/api/sites" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cap=$(( (LARGE_MB + SMALL_MB + 10) * 1024 * 1024 ))
api -X PATCH -H 'Content-Type: application/json' -d "{\"maxBytes\": $cap}" \
    "http://127.0.0.1:$port/api/sites/$id" >/dev/null

# Warm up the code paths with a tiny upload, then settle.
head -c 1024 /dev/urandom >"$work/warm.bin"
api -F "files=@$work/warm.bin;filename=warm.bin" "http://127.0.0.1:$port/api/sites/$id/files" >/dev/null
sleep 1
idle=$(rss_kb)

# upload NAME MB → prints "peak_kb seconds"
upload() {
    local name=$1 mb=$2 file="$work/$1.bin"
    head -c $((mb * 1024 * 1024)) /dev/urandom >"$file"
    local peak=0 start end code
    start=$(date +%s.%N)
    api -o "$work/$name.out" -w '%{http_code}' -F "files=@$file;filename=$name.bin" \
        "http://127.0.0.1:$port/api/sites/$id/files" >"$work/$name.code" &
    local cpid=$!
    while kill -0 "$cpid" 2>/dev/null; do
        local now; now=$(rss_kb)
        [ "$now" -gt "$peak" ] && peak=$now
        sleep 0.02
    done
    wait "$cpid"
    end=$(date +%s.%N)
    code=$(cat "$work/$name.code")
    [ "$code" = 200 ] || { echo "upload $name failed: $code $(cat "$work/$name.out")" >&2; exit 1; }
    local stored="$work/data/sites/bench/$name.bin"
    [ "$(sha256sum <"$file")" = "$(sha256sum <"$stored")" ] || { echo "stored $name differs" >&2; exit 1; }
    rm -f "$file"
    echo "$peak $(echo "$end - $start" | bc -l)"
}

read -r small_peak small_s < <(upload small "$SMALL_MB")
read -r large_peak large_s < <(upload large "$LARGE_MB")
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")

python3 - "$idle" "$small_peak" "$small_s" "$SMALL_MB" "$large_peak" "$large_s" "$LARGE_MB" "$hwm" <<'PY'
import sys
idle, sp, ss, smb, lp, ls, lmb, hwm = sys.argv[1:]
idle, sp, lp, hwm = (int(x) / 1024 for x in (idle, sp, lp, hwm))
ss, ls, smb, lmb = float(ss), float(ls), int(smb), int(lmb)
print(f"{'':24}{'idle':>10}{f'{smb} MB upload':>16}{f'{lmb} MB upload':>16}")
print(f"{'panel RSS, MB (peak)':24}{idle:10.1f}{sp:16.1f}{lp:16.1f}")
print(f"{'growth over idle, MB':24}{'':10}{sp - idle:16.1f}{lp - idle:16.1f}")
print(f"{'peak / idle':24}{'':10}{sp / idle:16.2f}{lp / idle:16.2f}")
print(f"{'growth / upload size':24}{'':10}{(sp - idle) / smb:16.3f}{(lp - idle) / lmb:16.3f}")
print(f"{'throughput, MB/s':24}{'':10}{smb / ss:16.0f}{lmb / ls:16.0f}")
print(f"upload size x{lmb / smb:.0f} -> peak RSS x{lp / sp:.2f}; panel VmHWM {hwm:.1f} MB")
PY
