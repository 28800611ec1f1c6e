# shellcheck shell=bash
# Shared by build and build-tools: make a Debian bookworm rootfs with
# mmdebstrap and import it as a local Docker image. Sourced, not run.

# shellcheck source-path=SCRIPTDIR source=../../scripts/prerequisites.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/prerequisites.sh"
need_harness_tools

# Debian mirrors: the host's own (its apt sources), else deb.debian.org;
# PORTICO_DEBIAN_MIRROR and PORTICO_DEBIAN_SECURITY_MIRROR override both.
DEBIAN_MIRROR="${PORTICO_DEBIAN_MIRROR:-$(host_debian_mirror debian)}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${PORTICO_DEBIAN_SECURITY_MIRROR:-$(host_debian_mirror debian-security)}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# root works everywhere we run as root; unshare needs user namespaces.
MMDEBSTRAP_MODE="${PORTICO_MMDEBSTRAP_MODE:-root}"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# usage: build_image <tag> <comma-separated packages> <force:0|1>
build_image() {
    local tag=$1 packages=$2 force=$3
    # The image carries its package list as a label: a changed list rebuilds.
    local have
    have=$(docker image inspect --format '{{ index .Config.Labels "portico.packages" }}' "$tag" 2>/dev/null || true)
    if [[ $force != 1 && $have == "$packages" ]]; then
        log "$tag already exists with these packages (use --force to rebuild)"
        return 0
    fi
    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064  # expand $work now, the trap runs after return
    trap "rm -rf '$work'" EXIT

    # Runs in mmdebstrap's hook shell, which passes the rootfs as $1.
    # shellcheck disable=SC2016
    local cleanup='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/log/apt/*'
    log "bootstrapping $tag with: $packages"
    # The merged-usr hook makes the /usr symlinks itself, so the usrmerge
    # package (and perl with it, ~50 MB) stays out. Docs, man pages and
    # translations are dead weight in a container; the copyright files stay.
    mmdebstrap \
        --mode="$MMDEBSTRAP_MODE" \
        --variant=minbase \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --include="$packages" \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --customize-hook="$cleanup" \
        bookworm "$work/rootfs.tar" \
        "deb $DEBIAN_MIRROR bookworm main" \
        "deb $DEBIAN_MIRROR bookworm-updates main" \
        "deb $DEBIAN_SECURITY_MIRROR bookworm-security main"

    log "importing $tag"
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL portico.packages=$packages" \
        --message "portico: mmdebstrap minbase bookworm + $packages" \
        "$work/rootfs.tar" "$tag" >/dev/null
    log "$tag: $(docker image inspect --format '{{.Size}}' "$tag") bytes"
}

# usage: parse_force "$@"  -> prints 1 for --force, 0 otherwise; rejects others
parse_force() {
    case "${1:-}" in
        "") echo 0 ;;
        --force) echo 1 ;;
        *) log "usage: ${0##*/} [--force]"; return 64 ;;
    esac
}
