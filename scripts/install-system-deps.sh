#!/usr/bin/env bash
# Installs the real peers the tests talk to. Runs apt-get only as root on Debian;
# elsewhere it says what is missing and the tests that need it skip with that reason.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ] || need+=(postfix)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-lmtpd)
command -v chromium >/dev/null || need+=(chromium)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v openssl >/dev/null || need+=(openssl)  # DKIM keys (mail-gateway init, dkimpy)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "not root or no apt-get: missing ${need[*]}; tests that need them will skip" >&2
    exit 0
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
