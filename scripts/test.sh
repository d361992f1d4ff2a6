#!/usr/bin/env bash
# Sets up and runs every check: lint, format, types, and the whole test suite.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== ruff check"
.venv/bin/ruff check .
echo "== ruff format --check"
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# pytest exits 5 when it collects no tests: set -e turns that into a failure too.
.venv/bin/pytest "$@"
