#!/usr/bin/env bash
# How long a full onboarding provisioning takes against a real pebble:
# three certificates over HTTP-01 through a real nginx, nginx applied, relay
# and authd restarted under s6, the first visitor user created. Runs the
# end-to-end test RUNS times and prints each duration and the median.
# Needs pebble, nginx and s6 (as in .ci/run).
# Usage: bench/provision-pebble.sh   (RUNS=5 to change)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
test='test(=panel::tests::provision::provisioning_streams_progress_survives_a_failure_and_completes_on_retry)'
times=()
for _ in $(seq "$RUNS"); do
    ms=$(cargo nextest run --no-capture -E "$test" 2>&1 | sed -n 's/^full provisioning against pebble.*: \([0-9]*\) ms$/\1/p')
    [ -n "$ms" ] || { echo "the provisioning test did not report a time (is pebble installed?)"; exit 1; }
    echo "run: ${ms} ms"
    times+=("$ms")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median of " NR " runs: " a[int((NR+1)/2)] " ms"}'
