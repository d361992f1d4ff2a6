#!/usr/bin/env bash
# Sets up and runs every check: lint, format, types, import contracts (lint-imports), and the
# whole test suite (which starts its own Mosquitto and PostgreSQL, drives Debian's Chromium,
# renders speech with espeak-ng and makes a certificate store with certutil; all are installed
# here when missing).
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# System packages the tests need, installed when missing.
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)  # the browser HTTPS test
# The hub's PostgreSQL tests start their own cluster with Debian's server binaries.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]} (apt-get)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== ruff check"
.venv/bin/ruff check .
echo "== ruff format --check"
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== import contracts (pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports --no-logo
echo "== pytest"
# pytest exits 5 when it collects no tests: set -e turns that into a failure too.
.venv/bin/pytest "$@"
