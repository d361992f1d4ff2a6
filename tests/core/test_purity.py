"""The core reads no clock: what the import contracts cannot say (``datetime`` is data there).

The import contracts (``lint-imports``, pyproject.toml) forbid the ``time`` module and every
I/O library in ``monitor.core``; ``datetime`` stays allowed because trace headers and the
midnight rule carry dates. This checks that nothing in the core asks for the current time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import monitor.core

CORE = Path(monitor.core.__file__).parent
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns", "localtime"}


def clock_calls(source: str) -> list[str]:
    """``name()`` or ``x.name()`` calls of a clock function, as ``line: text``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in CLOCK_CALLS:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_finder_sees_a_clock_call() -> None:
    assert clock_calls("from datetime import datetime\nt = datetime.now()\n") == [
        "2: datetime.now()"
    ]
    assert clock_calls("d = date.today()") == ["1: date.today()"]
    assert clock_calls("d = datetime.fromisoformat(s)") == []


def test_no_module_of_the_core_reads_the_clock() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10  # the core's modules were found
    offenders = {
        str(path.relative_to(CORE)): calls
        for path in files
        if (calls := clock_calls(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
