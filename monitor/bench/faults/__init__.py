"""``spotter bench faults``: the reliability and security figures (docs/reliability.md).

Each module of this package measures one area and exposes ``run(quick: bool) -> dict``: a
JSON-ready mapping of figure name to value (inputs tried, crashes, 5xx, events lost,
recovery times...). ``quick`` asks for a short run (the tests use it); the bench uses the
full one. :func:`run_all` runs every area in one process, one after the other.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def areas() -> list[str]:
    """The names of the areas this package measures (its modules), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run_all(quick: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    """Every area's figures, keyed by area name."""
    results: dict[str, Any] = {}
    for name in only or areas():
        module = importlib.import_module(f"{__name__}.{name}")
        results[name] = module.run(quick)
    return results
