"""What every ``spotter`` sub-command shares."""

from __future__ import annotations

import sys

import typer


def fail(command: str, message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the exit to raise."""
    print(f"spotter {command}: error: {message}", file=sys.stderr)
    return typer.Exit(code)
