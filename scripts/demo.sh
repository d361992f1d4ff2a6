#!/usr/bin/env bash
# Sets up Spotter and runs the main job: simulated sensors on a virtual radio, the station
# daemon's real BLE code connected to them, the live terminal view of theta, heart rate, timers
# and alarms, and the dashboard on http://127.0.0.1:8000 (open the pairing URL it prints). When
# the scenario ends the simulated person steps off: the session is ended and the sensors go on
# streaming a calm upright state, so the station and dashboard stay up, quiet (Ctrl-C stops
# them). The run's store is sim.db in the station's data folder (~/.local/share/spotter unless
# configured): `spotter history --sim` shows the demo's sessions afterwards.
# Usage: scripts/demo.sh [scenario]   (SPEED=1 for real time)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

scenario=${1:-over-hold}
speed=${SPEED:-3}
echo "Simulated session '$scenario' at ${speed}x speed; afterwards: .venv/bin/spotter history --sim"
exec .venv/bin/spotter run --sim "$scenario" --speed "$speed" --stay
