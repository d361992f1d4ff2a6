#!/usr/bin/env bash
# Sets up Spotter and runs the main job: a simulated over-hold session, replayed through the
# safety core, its alarms printed as a table. Usage: scripts/demo.sh [scenario]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

scenario=${1:-over-hold}
mkdir -p data/demo
.venv/bin/spotter sim trace "$scenario" -o "data/demo/$scenario.jsonl"
echo "Trace written to data/demo/$scenario.jsonl; replaying it:"
.venv/bin/spotter replay "data/demo/$scenario.jsonl"
