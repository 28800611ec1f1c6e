# shellcheck shell=bash
# What the README's two commands need beyond Docker and Rust. On a Debian
# machine, missing packages are installed when running as root with apt;
# otherwise the script stops at once with the one command to run. Sourced by
# scripts/test and test-harness/lib.sh.

prerequisites_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# usage: need_packages <debian package>...
need_packages() {
    command -v dpkg-query >/dev/null || return 0 # not Debian: nothing to check against
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q ' installed$' || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        prerequisites_log "missing Debian packages: ${missing[*]}; install them with:"
        printf '  sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
        exit 1
    fi
    prerequisites_log "installing ${missing[*]}"
    if [[ ${PORTICO_APT_UPDATED:-0} != 1 ]]; then
        apt-get update -qq
        export PORTICO_APT_UPDATED=1
    fi
    # A package's service (nginx) must not start: tests start their own on
    # loopback ports, and a system nginx would hold :80.
    local policy=/usr/sbin/policy-rc.d placed=no
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && placed=yes
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    [[ $placed == yes ]] && rm -f "$policy"
    ((status == 0)) || { prerequisites_log "apt-get install ${missing[*]} failed"; exit 1; }
}

# usage: need_commands <command>... : commands that do not come from apt here.
need_commands() {
    local command
    for command in "$@"; do
        command -v "$command" >/dev/null && continue
        case $command in
            docker) prerequisites_log "Docker is not installed; see https://docs.docker.com/engine/install/debian/ or run: sudo apt-get install -y docker.io" ;;
            cargo) prerequisites_log "Rust is not installed; run: curl https://sh.rustup.rs -sSf | sh" ;;
            *) prerequisites_log "$command is not installed" ;;
        esac
        exit 1
    done
}

# schemathesis (the API fuzz) comes from PyPI; its `st` command must be on PATH.
need_schemathesis() {
    python3 -c 'import schemathesis' 2>/dev/null && command -v st >/dev/null && return 0
    if [[ $(id -u) != 0 ]]; then
        prerequisites_log "schemathesis is not installed; install it with:"
        echo "  python3 -m pip install --user schemathesis" >&2
        exit 1
    fi
    python3 -m pip --version >/dev/null 2>&1 || need_packages python3-pip
    prerequisites_log "installing schemathesis"
    # Debian's own python3 refuses system-wide pip installs (PEP 668).
    python3 -m pip install -q --disable-pip-version-check schemathesis 2>/dev/null ||
        python3 -m pip install -q --disable-pip-version-check --break-system-packages schemathesis
}

# usage: need <command or absolute path glob>=<package>...: installs the
# packages whose command (or file) is missing, so a tool that came from
# elsewhere (another nginx flavour, a pip docker-compose) is left alone.
need() {
    local pair what wanted=()
    for pair in "$@"; do
        what=${pair%%=*}
        if [[ $what == /* ]]; then
            compgen -G "$what" >/dev/null && continue
        else
            command -v "$what" >/dev/null && continue
        fi
        wanted+=("${pair#*=}")
    done
    ((${#wanted[@]} == 0)) || need_packages "${wanted[@]}"
}

# What scripts/test needs: real nginx (on jemalloc, as deployed), openssl,
# pebble (ACME), s6 and execline (supervision tests), Chromium with its
# WebDriver (the browser walk), apparmor_parser (the add-on profile).
need_test_tools() {
    need_commands cargo python3
    need nginx=nginx-light '/usr/lib/*-linux-gnu/libjemalloc.so.2=libjemalloc2' openssl=openssl curl=curl \
        /etc/ssl/certs/ca-certificates.crt=ca-certificates pebble=pebble pebble-challtestsrv=pebble \
        s6-svscan=s6 execlineb=execline chromium=chromium chromedriver=chromium-driver \
        apparmor_parser=apparmor g++=g++
    need_schemathesis
}

# What the compose harness needs: Docker with docker-compose v1, and
# mmdebstrap for the base images (no registry is reachable).
need_harness_tools() {
    need_commands docker
    need docker-compose=docker-compose mmdebstrap=mmdebstrap
}

# usage: host_debian_mirror debian|debian-security [apt directory]
# The first mirror of that archive in the host's apt sources (one-line and
# deb822 formats), or nothing.
host_debian_mirror() {
    local archive=$1 apt=${2:-/etc/apt} files=() f
    [[ -f $apt/sources.list ]] && files+=("$apt/sources.list")
    for f in "$apt"/sources.list.d/*.list "$apt"/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    ((${#files[@]} == 0)) && return 0
    awk '
        /^[[:space:]]*#/ { next }
        $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }
        $1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }
    ' "${files[@]}" |
        sed 's#/*$##' |
        awk -F/ -v archive="$archive" '$0 ~ /^https?:\/\// && $NF == archive { print; exit }'
}
