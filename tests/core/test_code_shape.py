"""Issue 10: no function over ~60 lines without a reason in its docstring.

An AST walk over ``monitor/``, ``dashboard/`` and ``firmware_sim/``: every function (or
method, or nested function) longer than :data:`MAX_LINES` must say why in its docstring, on
a line that starts with ``Long because``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("monitor", "dashboard", "firmware_sim")
MAX_LINES = 60
REASON = "Long because"


def _has_reason(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    doc = ast.get_docstring(node) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, length) of each function in ``source`` over :data:`MAX_LINES` lines (decorators
    not counted) whose docstring gives no ``Long because`` reason."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_LINES and not _has_reason(node):
                found.append((node.name, length))
    return found


def test_the_check_finds_a_long_function_and_accepts_a_reason() -> None:
    lines = [f"    x{i} = {i}\n" for i in range(MAX_LINES)]
    body = "".join(lines)
    assert long_functions(f"def f():\n{body}") == [("f", MAX_LINES + 1)]
    assert long_functions(f"async def f():\n{body}") == [("f", MAX_LINES + 1)]
    reason = f'    """Why.\n\n    {REASON} it is a table."""\n'
    assert long_functions(f"def f():\n{reason}{body}") == []
    assert long_functions("def f():\n" + "".join(lines[1:])) == []  # exactly the limit


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_the_limit_without_a_reason(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        for name, length in long_functions(path.read_text()):
            offenders.append(f"{rel}:{name} ({length} lines)")
    assert not offenders, f"over {MAX_LINES} lines with no '{REASON}' reason: {offenders}"
