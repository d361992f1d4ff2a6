"""Every shipped scenario, through ``spotter sim trace … | spotter replay - --json``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from firmware_sim.scenario import Scenario, builtin_names, load_scenario

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]
REQUIRED = {
    "calm-beginner",
    "over-hold",
    "over-angle",
    "hr-spike",
    "hr-high",
    "hr-low",
    "strap-contact-lost",
    "tilt-silent",
    "fall-impact",
    "rest-too-short",
    "symptom",
    "session-total",
    "witmotion-split",
    "malformed-payloads",
}


def replay_args(scenario: Scenario, tmp_path: Path) -> list[str]:
    model = scenario.model
    args = ["--json"]
    if isinstance(model.profile, str):
        args += ["--profile", model.profile]
    else:
        path = tmp_path / "profile.toml"
        lines = [f"{k} = {json.dumps(v)}" for k, v in model.profile.items()]
        path.write_text("\n".join(lines) + "\n")
        args += ["--profile", str(path)]
    if model.age is not None:
        args += ["--age", str(model.age)]
    return args


def test_the_required_scenarios_ship() -> None:
    assert set(builtin_names()) >= REQUIRED


@pytest.mark.parametrize("name", builtin_names())
def test_scenario_produces_exactly_the_alarms_it_declares(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    trace = subprocess.run(
        [*SPOTTER, "sim", "trace", name], capture_output=True, check=True, timeout=120
    )
    result = subprocess.run(
        [*SPOTTER, "replay", "-", *replay_args(scenario, tmp_path)],
        input=trace.stdout,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    got = [(e["id"], e["event"], e["priority"]) for e in events]
    want = [(x.id, x.event.value, x.priority) for x in scenario.model.expect]
    assert got == want
    tolerance = scenario.model.tolerance_s
    for event, expected in zip(events, scenario.model.expect, strict=True):
        assert abs(event["t"] - expected.t) <= tolerance, (event, expected)
    malformed = sum(
        int(n) for n in re.findall(r"(\d+) malformed notification", result.stderr.decode())
    )
    assert malformed == scenario.model.expect_stats.get("malformed", 0)


def test_scenario_files_are_valid_toml_with_a_description() -> None:
    folder = Path(__file__).parents[2] / "firmware_sim" / "scenarios"
    for path in folder.glob("*.toml"):
        data = tomllib.loads(path.read_text())
        assert data["name"] == path.stem
        assert data["description"]
