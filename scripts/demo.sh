#!/usr/bin/env bash
# Sets up Spotter and runs the main job: simulated sensors on a virtual radio, the station
# daemon's real BLE code connected to them, the live terminal view of theta, heart rate, timers
# and alarms, and the dashboard on http://127.0.0.1:8000 (open the pairing URL it prints). When
# the scenario ends the station and dashboard stay up (Ctrl-C stops them).
# Usage: scripts/demo.sh [scenario]   (SPEED=1 for real time)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

scenario=${1:-over-hold}
speed=${SPEED:-3}
export SPOTTER_STATION__DATA_DIR=${SPOTTER_STATION__DATA_DIR:-$PWD/data}
echo "Simulated session '$scenario' at ${speed}x speed; traces go to $SPOTTER_STATION__DATA_DIR/traces"
exec .venv/bin/spotter run --sim "$scenario" --speed "$speed" --stay
