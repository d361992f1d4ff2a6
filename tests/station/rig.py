"""The station plan the test rigs build with the assembly (monitor/station/assembly.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.core.engine import SafetyCore
from monitor.station.assembly import StationPlan


def plan_like(
    core: SafetyCore, store_path: Path, name: str = "home", **options: Any
) -> StationPlan:
    """A plan for a station with ``core``'s sensors and profile (``tests.core.rig.make_core``),
    its store at ``store_path``; ``options``: the plan's other fields (writer, before_commit…)."""
    return StationPlan(name, core.sensors, core.profile, store_path, **options)
