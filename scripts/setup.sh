#!/usr/bin/env bash
# Sets up everything Spotter needs inside the project: a .venv pinned by constraints.txt (with
# the bench extra, so the tests can run `spotter bench all --quick`) and
# the dashboard's front end (npm ci from package-lock.json, then an esbuild bundle).
# With --clinic it also installs Mosquitto (apt-get, when missing), the broker a clinic's
# stations and hub meet at (docs/clinic.md).
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--clinic]
set -euo pipefail
cd "$(dirname "$0")/.."

clinic=0
for arg in "$@"; do
    case $arg in
        --clinic) clinic=1 ;;
        *) echo "setup: unknown argument $arg (usage: scripts/setup.sh [--clinic])" >&2; exit 2 ;;
    esac
done
if ((clinic)) && ! { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } ; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "setup: installing Mosquitto (apt-get install mosquitto)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Spotter needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi

# Reinstall only when the pins or the project's dependencies changed.
stamp=.venv/.spotter-installed
want=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing Python packages (pinned by constraints.txt)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c constraints.txt -e '.[dev,bench]'
    echo "$want" > "$stamp"
fi

# The dashboard's front end: packages from npm through the lock file, bundled by esbuild.
if [ -f dashboard/package-lock.json ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "setup: npm is missing (Node.js 18+ with npm is needed to build the dashboard)" >&2
        exit 1
    fi
    lock=$(sha256sum dashboard/package-lock.json | cut -d' ' -f1)
    if [ ! -f dashboard/node_modules/.spotter-lock ] || \
        [ "$(cat dashboard/node_modules/.spotter-lock)" != "$lock" ]; then
        echo "setup: installing the dashboard's npm packages (npm ci)"
        (cd dashboard && npm ci --no-audit --no-fund --loglevel=error)
        echo "$lock" > dashboard/node_modules/.spotter-lock
    fi
    sources=$(cat dashboard/package-lock.json dashboard/package.json $(find dashboard/web -type f | sort) | sha256sum | cut -d' ' -f1)
    if [ ! -f dashboard/static/.spotter-build ] || \
        [ "$(cat dashboard/static/.spotter-build)" != "$sources" ]; then
        echo "setup: building the dashboard (npm run build)"
        (cd dashboard && npm run --silent build)
        echo "$sources" > dashboard/static/.spotter-build
    fi
fi
