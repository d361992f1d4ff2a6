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


# -- one writer for the rules' inputs (issue 10): the rule engine reads Signals, never writes


MUTATORS = frozenset(
    {"append", "appendleft", "extend", "pop", "popleft", "clear", "update", "remove", "add"}
)


def signal_writes(source: str, class_name: str) -> list[str]:
    """Assignments in ``class_name`` to an attribute of ``s`` or ``self.s`` (the Signals the
    rules read; a method's ``s = self.s`` alias included), and calls that change one in place
    (``s.hr_checks.popleft()``), as ``line: text``."""
    found = []
    for cls in ast.walk(ast.parse(source)):
        if not (isinstance(cls, ast.ClassDef) and cls.name == class_name):
            continue
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
                and isinstance(node.func.value, ast.Attribute)
                and ast.unparse(node.func.value.value) in {"s", "self.s"}
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for part in ast.walk(target):
                        if isinstance(part, ast.Attribute) and ast.unparse(part.value) in {
                            "s",
                            "self.s",
                        }:
                            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_finder_sees_a_rule_writing_its_inputs() -> None:
    source = (
        "class RuleEngine:\n"
        "    def impact(self, t):\n"
        "        s = self.s\n"
        "        s.impact_g = None\n"
        "        self.s.symptom_t, x = None, 1\n"
        "        self._mine = 1\n"
        "        s.hr_checks.popleft()\n"
        "        len(s.hr_checks)\n"
    )
    assert signal_writes(source, "RuleEngine") == [
        "4: s.impact_g = None",
        "5: self.s.symptom_t, x = (None, 1)",
        "7: s.hr_checks.popleft()",
    ]


def test_the_rules_never_write_their_inputs() -> None:
    source = (CORE / "rules.py").read_text(encoding="utf-8")
    assert "class RuleEngine" in source
    assert signal_writes(source, "RuleEngine") == []
