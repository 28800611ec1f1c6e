#!/bin/sh
# Portico agent installer, rendered by the panel at /download/install.sh with
# the panel's address, its pinned key and the SHA-256 of every agent binary it
# serves. Run as root on the home machine (Linux or macOS):
#
#   curl -fsS ... https://<panel>/download/install.sh | sh -s -- --token <token>
#
#   --token T      one-time enrollment token from the panel's Agents page (required)
#   --name N       installation name: service, system user and config
#                  directory /var/lib/N (default portico-agent)
#   --prefix DIR   install the binary as DIR/bin/portico (default /usr/local)
#   --no-service   install and enroll only: no systemd unit or launchd job
#
# Running it again upgrades the binary and the service and keeps the
# existing enrollment.
set -eu

#@SETTINGS@

fail() {
    echo "portico install: $*" >&2
    exit 1
}
say() { echo "portico install: $*"; }

# The platforms this panel serves, as "linux-amd64, linux-arm64".
served() {
    printf '%s' "$CHECKSUMS" | awk 'NF { sub("^portico-", "", $2); printf "%s%s", sep, $2; sep = ", " }'
}

TOKEN=
NAME=portico-agent
PREFIX=/usr/local
SERVICE=yes
while [ $# -gt 0 ]; do
    case $1 in
    --token | --name | --prefix)
        [ $# -ge 2 ] || fail "$1 needs a value"
        case $1 in
        --token) TOKEN=$2 ;;
        --name) NAME=$2 ;;
        --prefix) PREFIX=$2 ;;
        esac
        shift 2
        ;;
    --no-service)
        SERVICE=no
        shift
        ;;
    -h | --help)
        echo "usage: sh install.sh --token T [--name N] [--prefix DIR] [--no-service]"
        exit 0
        ;;
    *) fail "unknown argument: $1 (known: --token, --name, --prefix, --no-service)" ;;
    esac
done

[ -n "$TOKEN" ] || fail "--token is required: create a one-time token on the panel's Agents page"
case $NAME in
'' | -* | *[!a-z0-9-]*) fail "--name may hold only lowercase letters, digits and hyphens: $NAME" ;;
esac
case $PREFIX in
/*) ;;
*) fail "--prefix must be an absolute path: $PREFIX" ;;
esac
case $PREFIX in
*[!A-Za-z0-9/._-]*) fail "--prefix may hold only letters, digits and / . _ -: $PREFIX" ;;
esac
[ "$(id -u)" = 0 ] || fail "run as root (curl ... | sudo sh -s -- --token ...): it creates a system user and a service"

case $(uname -s) in
Linux) OS=linux ;;
Darwin) OS=darwin ;;
*) fail "unsupported system $(uname -s): this panel serves $(served)" ;;
esac
case $(uname -m) in
x86_64 | amd64) ARCH=amd64 ;;
aarch64 | arm64) ARCH=arm64 ;;
*) fail "unknown architecture $(uname -m): this panel serves $(served)" ;;
esac
FILE=portico-$OS-$ARCH
EXPECTED=$(printf '%s' "$CHECKSUMS" | awk -v f="$FILE" '$2 == f { print $1 }')
[ -n "$EXPECTED" ] || fail "this panel serves no agent for $OS-$ARCH, only $(served)"

command -v curl >/dev/null 2>&1 || fail "curl is needed"
sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{ print $1 }'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{ print $1 }'
    else
        fail "neither sha256sum nor shasum is installed"
    fi
}

BIN=$PREFIX/bin/portico
CONFIG_DIR=/var/lib/$NAME
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd /

say "downloading $FILE from $PANEL_URL"
# shellcheck disable=SC2086 # CURL_TLS is a list of options
curl -fsS $CURL_TLS -o "$TMP/$FILE" "$PANEL_URL/download/$FILE" ||
    fail "could not download $PANEL_URL/download/$FILE"
GOT=$(sha256 "$TMP/$FILE")
[ "$GOT" = "$EXPECTED" ] ||
    fail "checksum mismatch for $FILE: expected $EXPECTED, got $GOT; nothing was installed"

mkdir -p "$PREFIX/bin"
cp "$TMP/$FILE" "$BIN.new"
chmod 0755 "$BIN.new"
mv -f "$BIN.new" "$BIN"
say "installed $BIN ($("$BIN" --version 2>/dev/null || echo "$FILE"))"

# A system user of its own, without a login shell or a password.
if ! id -u "$NAME" >/dev/null 2>&1; then
    if [ "$OS" = darwin ]; then
        id=300
        while dscl . -list /Users UniqueID | awk '{ print $2 }' | grep -qx "$id" ||
            dscl . -list /Groups PrimaryGroupID | awk '{ print $2 }' | grep -qx "$id"; do
            id=$((id + 1))
        done
        dscl . -create "/Groups/$NAME" PrimaryGroupID "$id"
        dscl . -create "/Users/$NAME" UniqueID "$id"
        dscl . -create "/Users/$NAME" PrimaryGroupID "$id"
        dscl . -create "/Users/$NAME" UserShell /usr/bin/false
        dscl . -create "/Users/$NAME" NFSHomeDirectory "$CONFIG_DIR"
        dscl . -create "/Users/$NAME" RealName "Portico agent"
        dscl . -create "/Users/$NAME" IsHidden 1
    elif command -v useradd >/dev/null 2>&1; then
        nologin=$(command -v nologin || echo /bin/false)
        useradd --system --user-group --home-dir "$CONFIG_DIR" --no-create-home --shell "$nologin" "$NAME"
    elif command -v adduser >/dev/null 2>&1; then
        adduser -S -D -H -h "$CONFIG_DIR" -s /sbin/nologin "$NAME"
    else
        fail "cannot create the user $NAME: neither useradd nor adduser is installed"
    fi
    say "created the system user $NAME"
fi
mkdir -p "$CONFIG_DIR"
chown "$NAME" "$CONFIG_DIR"
chmod 0700 "$CONFIG_DIR"

# usage: as_agent <command...>: runs it as the agent's user.
as_agent() {
    if command -v runuser >/dev/null 2>&1; then
        runuser -u "$NAME" -- "$@"
    elif command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid="$NAME" --regid="$(id -g "$NAME")" --clear-groups -- "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -u "$NAME" -- "$@"
    else
        su -s /bin/sh "$NAME" -c 'exec "$0" "$@"' "$@"
    fi
}

if [ -f "$CONFIG_DIR/agent.json" ]; then
    say "already enrolled: keeping $CONFIG_DIR"
else
    set -- agent --config-dir "$CONFIG_DIR" enroll --panel "$PANEL_URL" --token "$TOKEN"
    [ -z "$FINGERPRINT" ] || set -- "$@" --fingerprint "$FINGERPRINT"
    [ -z "$RELAY" ] || set -- "$@" --relay "$RELAY"
    if ! as_agent "$BIN" "$@" >"$TMP/enroll.log" 2>&1; then
        sed 's/^/    /' "$TMP/enroll.log" >&2
        if grep -q "enrollment refused" "$TMP/enroll.log"; then
            fail "the panel refused the token (used, expired or mistyped): create a new one on its Agents page"
        fi
        fail "enrollment failed (above); $BIN is installed, run this again with a new token"
    fi
    say "$(head -n 1 "$TMP/enroll.log")"
fi

RUN_LINE="$BIN agent --config-dir $CONFIG_DIR run"
if [ "$SERVICE" = no ]; then
    say "no service installed: run the agent as $NAME with: $RUN_LINE"
elif [ "$OS" = linux ]; then
    UNIT=/etc/systemd/system/$NAME.service
    mkdir -p /etc/systemd/system
    cat >"$UNIT.new" <<EOF
[Unit]
Description=Portico agent ($NAME)
Wants=network-online.target
After=network-online.target

[Service]
User=$NAME
ExecStart=$RUN_LINE
Restart=always
RestartSec=2
UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths=$CONFIG_DIR
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
EOF
    mv -f "$UNIT.new" "$UNIT"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl daemon-reload
        systemctl enable "$NAME.service" >/dev/null 2>&1
        systemctl restart "$NAME.service"
        say "running: systemctl status $NAME"
    else
        say "wrote $UNIT; systemd is not running here: start the agent as $NAME with: $RUN_LINE"
    fi
else
    LABEL=app.portico.$NAME
    PLIST=/Library/LaunchDaemons/$LABEL.plist
    cat >"$PLIST.new" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>$LABEL</string>
  <key>UserName</key><string>$NAME</string>
  <key>ProgramArguments</key>
  <array><string>$BIN</string><string>agent</string><string>--config-dir</string><string>$CONFIG_DIR</string><string>run</string></array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><true/>
  <key>StandardErrorPath</key><string>$CONFIG_DIR/agent.log</string>
</dict>
</plist>
EOF
    mv -f "$PLIST.new" "$PLIST"
    chmod 0644 "$PLIST"
    launchctl bootout "system/$LABEL" >/dev/null 2>&1 || true
    launchctl bootstrap system "$PLIST"
    say "running: sudo launchctl print system/$LABEL"
fi
