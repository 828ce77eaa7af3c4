#!/usr/bin/env bash
# Installs the Debian packages the pytest suites need, only when missing, so
# `make test` works on a fresh machine without PyPI. Idempotent and quiet.
set -euo pipefail
PY=/usr/bin/python3
need=()
$PY -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
$PY -c 'import requests' 2>/dev/null || need+=(python3-requests)
$PY -c 'import jwt' 2>/dev/null || need+=(python3-jwt)
$PY -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)
if [ "${WITH_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium chromium-driver)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
echo "installing test packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
