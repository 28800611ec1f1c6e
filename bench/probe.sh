#!/usr/bin/env bash
# The health probe's time for 50 public names (panel, auth, tunnel and 47
# tunnels through one agent to one local app), through a real nginx and the
# real relay and agent, with DNS answered by a loopback server: one line per
# round, then the median and range over PROBE_ROUNDS rounds (default 5).
# usage: bench/probe.sh            (PROFILE=release for an optimized build)
set -euo pipefail
cd "$(dirname "$0")/.."
export PROBE_ROUNDS=${PROBE_ROUNDS:-5}
args=()
[[ ${PROFILE:-dev} == release ]] && args+=(--release)
cargo test "${args[@]}" --lib -- --ignored --exact relay::tests::health::probe_time_for_50_names --nocapture 2>&1 |
    grep -E '^(round|probe of)'
