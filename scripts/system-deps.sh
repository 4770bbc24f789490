#!/usr/bin/env bash
# System packages the test suite drives for real: OpenSSH's sshd (SFTP tests),
# Debian's Chromium, run headless by the browser tests of the run report, with a CJK
# font so that the Chinese of reports and screenshots shows as characters, not boxes,
# and python3-venv, with which the install test builds a .venv from /usr/bin/python3.
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: installed ${missing[*]}"
