"""The profiles ``spotter bench all`` attaches to its figures, in one shape.

A profile is ``{"tool": str, "what": str, "top": [...], "breakdown": [...]}`` (``top`` or
``breakdown`` or both): ``top`` rows are functions by own time (``function``, ``calls``,
``own_s``, ``own_percent``, ``cum_s``), ``breakdown`` rows are the parts of one figure
(``part``, ``value``, ``unit``, and optionally ``total``). ``docs/performance.md`` renders any
profile of that shape under the figure it explains.
"""

from __future__ import annotations

import pstats
from typing import Any

IDLE = "<method 'poll' of 'select.epoll' objects>"
"""The event loop waiting for the radio: wall time in cProfile, not CPU (left out)."""


def profile(
    tool: str,
    what: str,
    top: list[dict[str, Any]] | None = None,
    breakdown: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A profile in the shared shape."""
    out: dict[str, Any] = {"tool": tool, "what": what}
    if top is not None:
        out["top"] = top
    if breakdown is not None:
        out["breakdown"] = breakdown
    return out


def part(name: str, value: float, unit: str, total: float | None = None) -> dict[str, Any]:
    """One row of a breakdown."""
    row: dict[str, Any] = {"part": name, "value": round(value, 3), "unit": unit}
    if total is not None:
        row["total"] = round(total, 3)
    return row


def top_functions(stats: pstats.Stats, top: int = 14) -> list[dict[str, Any]]:
    """cProfile's functions by own time, the event loop's idle wait left out (own % is a
    share of the rest)."""
    rows = []
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    busy = {key: value for key, value in table.items() if key[2] != IDLE}
    total = sum(v[2] for v in busy.values()) or 1.0
    for (file, line, name), (_, calls, tottime, cumtime, _) in busy.items():
        rows.append(
            {
                "function": f"{short_path(file)}:{line}({name})",
                "calls": calls,
                "own_s": round(tottime, 4),
                "own_percent": round(100 * tottime / total, 1),
                "cum_s": round(cumtime, 4),
            }
        )
    rows.sort(key=lambda r: -float(r["own_s"]))
    return rows[:top]


def short_path(file: str) -> str:
    """A source path from the package on (``monitor/core/rules.py``)."""
    for marker in ("/monitor/", "/dashboard/", "/firmware_sim/", "/site-packages/", "/lib/"):
        if marker in file:
            return marker.strip("/") + "/" + file.split(marker, 1)[1]
    return file
