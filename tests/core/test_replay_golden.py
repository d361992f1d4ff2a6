"""``spotter replay --json`` stays byte for byte what it was before the gap jump.

The golden files under ``golden/`` were made with the replay that stepped every 0.1 s grid
mark through each gap (before time was advanced to the next deadline in one step). Each
shipped scenario is replayed as it is, and thinned ("sparse": a sample of its lines with 15 s
silences), so the files hold many long gaps, and the output must not change by one byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.generate import write_trace
from firmware_sim.scenario import builtin_names, load_scenario
from tests.core.test_scenarios import replay_args

GOLDEN = Path(__file__).parent / "golden"
SPOTTER = [sys.executable, "-m", "monitor.cli.main"]


def sparse(lines: list[str]) -> list[str]:
    """The header, the inputs, the end marker and every 50th other line, except in the last
    15 s of every 45 s: gaps of 0.5 s and of 15 s, with link changes kept."""
    out = lines[:1]
    for index, line in enumerate(lines[1:]):
        obj = json.loads(line)
        kept_kind = "hex" not in obj
        if kept_kind or (index % 50 == 0 and int(obj["t"] // 15) % 3 != 2):
            out.append(line)
    return out


def replay_json(trace: Path, args: list[str]) -> bytes:
    result = subprocess.run(
        [*SPOTTER, "replay", str(trace), *args], capture_output=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.mark.parametrize("variant", ["full", "sparse"])
@pytest.mark.parametrize("name", builtin_names())
def test_replay_output_matches_the_golden_file(name: str, variant: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    trace = tmp_path / f"{name}.jsonl"
    with open(trace, "w", encoding="utf-8") as fh:
        write_trace(scenario, fh)
    if variant == "sparse":
        lines = trace.read_text(encoding="utf-8").splitlines(keepends=True)
        trace.write_text("".join(sparse(lines)), encoding="utf-8")
    golden = GOLDEN / f"{name}.{variant}.jsonl"
    assert replay_json(trace, replay_args(scenario, tmp_path)) == golden.read_bytes()


def test_every_shipped_scenario_has_its_golden_files() -> None:
    names = {p.name for p in GOLDEN.glob("*.jsonl")}
    expected = {f"{n}.{v}.jsonl" for n in builtin_names() for v in ("full", "sparse")}
    assert names == expected
