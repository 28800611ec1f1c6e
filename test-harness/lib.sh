# shellcheck shell=bash
# Shared by ./run and ./up: build the images and start the world. Sourced.

HARNESS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HARNESS/.." && pwd)
OUT="$HARNESS/out"
PROJECT="${PORTICO_HARNESS_PROJECT:-portico-harness}"
export PORTICO_IMAGE="${PORTICO_IMAGE:-portico:offline}"
export PORTICO_TOOLS_IMAGE="${PORTICO_TOOLS_IMAGE:-portico-tools:bookworm}"
BASE_IMAGE="${PORTICO_BASE_IMAGE:-portico-base:bookworm}"
# The droplet's fixed address on the harness "internet" (docker-compose.yml).
# shellcheck disable=SC2034  # used by the scripts that source this file
DROPLET_IP=10.77.0.10

note() { printf '==> %s\n' "$*" >&2; }

# shellcheck source-path=SCRIPTDIR source=../scripts/prerequisites.sh
. "$REPO/scripts/prerequisites.sh"
need_harness_tools

compose() { docker-compose -p "$PROJECT" -f "$HARNESS/docker-compose.yml" "$@"; }

# Builds the base images (cached), the binary and the appliance image.
# PORTICO_BINARY=/path/to/portico skips cargo and packs that binary instead;
# CARGO_TARGET_DIR is honoured.
build_all() {
    PORTICO_BASE_IMAGE="$BASE_IMAGE" "$HARNESS/base/build"
    PORTICO_TOOLS_IMAGE="$PORTICO_TOOLS_IMAGE" "$HARNESS/base/build-tools"
    local bin=${PORTICO_BINARY:-}
    if [[ -z $bin ]]; then
        need_commands cargo
        note "cargo build --release"
        (cd "$REPO" && cargo build --release --locked)
        bin="${CARGO_TARGET_DIR:-$REPO/target}/release/portico"
    fi
    note "building $PORTICO_IMAGE with $bin"
    if [[ $bin -ef "$REPO/target/release/portico" ]]; then
        docker build -q --target offline --build-arg BASE_IMAGE="$BASE_IMAGE" \
            -t "$PORTICO_IMAGE" "$REPO" >/dev/null
    else
        # The binary lives outside the repository's context: pack a small one.
        local ctx="$OUT/context"
        rm -rf "$ctx"
        mkdir -p "$ctx/bin"
        cp -a "$REPO/Dockerfile" "$REPO/rootfs" "$ctx/"
        cp "$bin" "$ctx/bin/portico"
        docker build -q --target offline --build-arg BASE_IMAGE="$BASE_IMAGE" \
            --build-arg PORTICO_BIN=bin/portico -t "$PORTICO_IMAGE" "$ctx" >/dev/null
    fi
}

start_world() {
    mkdir -p "$OUT" "$OUT/ha-agent"
    # The agent-mode add-on starts unconfigured; the journey enrolls it.
    echo '{"mode": "agent", "log": {"level": "info"}, "acme": {}, "backup": {}, "agent": {}}' \
        >"$OUT/ha-agent/options.json"
    note "starting the world (project $PROJECT)"
    compose up -d --no-build
}

droplet_id() { compose ps -q droplet; }

# Waits until the droplet reports healthy; fails on unhealthy, exit or deadline.
# usage: wait_healthy [seconds] [service]
wait_healthy() {
    local deadline=$((SECONDS + ${1:-120})) status id
    id=$(compose ps -q "${2:-droplet}")
    while ((SECONDS < deadline)); do
        status=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo gone)
        case $status in
            healthy) return 0 ;;
            unhealthy|exited|dead|gone) note "${2:-droplet} is $status"; return 1 ;;
        esac
        sleep 1
    done
    note "${2:-droplet} not healthy within the deadline (last status: ${status:-?})"
    return 1
}
