"""What every ``spotter`` sub-command shares."""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def fail(command: str, message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the exit to raise."""
    print(f"spotter {command}: error: {message}", file=sys.stderr)
    return typer.Exit(code)


SimRadio = Annotated[
    bool, typer.Option("--sim", help="Use the virtual radio (simulated sensors), not the adapter.")
]
"""``--sim`` of the commands that talk to sensors."""
SimHub = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        help="With --sim: the radio hub's port (default: an in-process radio with one device "
        "per shipped profile).",
    ),
]
"""``--hub`` of the commands that talk to sensors."""
