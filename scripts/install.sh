#!/bin/sh
# Production install of mail-gateway on Debian 12 or 13 (`make install-system`, as root):
#   - a virtualenv in $PREFIX/venv (default /opt/mail-gateway) with the gateway and its
#     dependencies, and $BINDIR/mail-gateway pointing at it;
#   - the system user mail-gateway (state in /var/lib/mail-gateway, the unit's StateDirectory=);
#   - the unit in $UNITDIR (default /etc/systemd/system), hardened, with LoadCredential= lines
#     for every secret the config can name;
#   - /etc/mail-gateway: config.toml from the production template (kept if present), the
#     example knowledge articles, and credentials/ (0700) with one empty file (0600) per
#     credential the unit loads (empty = not set; an existing file is never touched).
# Packaging: DESTDIR=/tmp/root installs into that tree instead (no user, no systemctl, no
# apt-get; scripts refer to $PREFIX, not to DESTDIR). Environment: PREFIX, DESTDIR, BINDIR,
# UNITDIR, PYTHON (default /usr/bin/python3), PIP_ARGS (extra pip arguments, e.g. a wheelhouse).
# Then: `mail-gateway init` (README.md, "Going live").
set -eu

PREFIX=${PREFIX:-/opt/mail-gateway}
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-/usr/local/bin}
UNITDIR=${UNITDIR:-/etc/systemd/system}
CONFDIR=/etc/mail-gateway
STATEDIR=/var/lib/mail-gateway
SERVICE_USER=mail-gateway
PYTHON=${PYTHON:-/usr/bin/python3}
PIP_ARGS=${PIP_ARGS:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ -n "$DESTDIR" ] || [ "$(id -u)" = 0 ] || die "run as root (or with DESTDIR=... to package)"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: apt-get install python3"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is older than 3.11 (Debian 12 has 3.11, Debian 13 has 3.13)"

# Debian splits venv/ensurepip (python3-venv) and the openssl tool (DKIM keys) out
need=""
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need="$need python3-venv"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
if [ -n "$need" ]; then
    if [ -z "$DESTDIR" ] && command -v apt-get >/dev/null 2>&1; then
        say "installing:$need"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null
    else
        die "missing:$need (apt-get install$need)"
    fi
fi

VENV="$DESTDIR$PREFIX/venv"
say "venv: $PREFIX/venv"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# shellcheck disable=SC2086  # PIP_ARGS is a list of arguments
"$VENV/bin/python" -m pip install -q --disable-pip-version-check $PIP_ARGS "$SRC"
if [ -n "$DESTDIR" ]; then
    # the venv's scripts name the interpreter by its path: make it the installed one
    for f in "$VENV"/bin/*; do
        [ -f "$f" ] && [ ! -L "$f" ] || continue
        if head -c 2 "$f" | grep -q '^#!'; then
            sed -i "1s|$VENV/|$PREFIX/venv/|" "$f"
        fi
    done
    sed -i "s|$VENV|$PREFIX/venv|g" "$VENV/pyvenv.cfg" "$VENV"/bin/activate* 2>/dev/null || true
fi
install -d -m 0755 "$DESTDIR$BINDIR"
ln -sfn "$PREFIX/venv/bin/mail-gateway" "$DESTDIR$BINDIR/mail-gateway"

say "unit: $UNITDIR/mail-gateway.service"
install -d -m 0755 "$DESTDIR$UNITDIR"
sed "s|/opt/mail-gateway/|$PREFIX/|g" "$SRC/systemd/mail-gateway.service" \
    > "$DESTDIR$UNITDIR/mail-gateway.service"
chmod 0644 "$DESTDIR$UNITDIR/mail-gateway.service"

say "config: $CONFDIR"
install -d -m 0755 "$DESTDIR$CONFDIR"
install -d -m 0700 "$DESTDIR$CONFDIR/credentials"
for name in $(sed -n 's|^LoadCredential=\([^:]*\):.*|\1|p' "$SRC/systemd/mail-gateway.service"); do
    f="$DESTDIR$CONFDIR/credentials/$name"
    [ -e "$f" ] || install -m 0600 /dev/null "$f"
done
if [ ! -d "$DESTDIR$CONFDIR/knowledge" ]; then
    install -d -m 0755 "$DESTDIR$CONFDIR/knowledge"
    install -m 0644 "$SRC"/examples/knowledge/*.md "$DESTDIR$CONFDIR/knowledge/"
fi
if [ ! -e "$DESTDIR$CONFDIR/config.toml" ]; then
    # the template with example values; `mail-gateway init --force` writes the real answers
    "$VENV/bin/python" -m gateway.cli --config "$DESTDIR$CONFDIR/config.toml" init \
        --non-interactive --address support@support.example.com --intake mx \
        --hostname gw.support.example.com --dkim-selector "" --state-dir "$STATEDIR" \
        --knowledge-dir "$CONFDIR/knowledge" >/dev/null 2>&1 || [ $? -eq 2 ]
    chmod 0644 "$DESTDIR$CONFDIR/config.toml"
fi

if [ -z "$DESTDIR" ]; then
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        say "user: $SERVICE_USER (system, no login, home $STATEDIR)"
        useradd --system --user-group --home-dir "$STATEDIR" --no-create-home \
            --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
else
    say "packaging: create the system user $SERVICE_USER in the package's postinst"
fi

cat <<EOF

Installed. Next:
  mail-gateway init --force            # your addresses, intake, relay, public URL; prints the
                                       # DNS records, forwarding rules, proxy and HubSpot steps
  mail-gateway config check            # as root it reads $CONFDIR/credentials
  systemctl enable --now mail-gateway
  mail-gateway doctor
EOF
