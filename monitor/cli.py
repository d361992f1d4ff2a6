"""The ``spotter`` command."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table

from monitor.alarms import AlarmEvent, Priority
from monitor.profiles import DEFAULT_PROFILE, ProfileError, load_profile
from monitor.replay import core_for, replay
from monitor.trace import TraceError, TraceReader

app = typer.Typer(
    help="Spotter: a safety monitor for inversion tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(help="Simulated sensors and scenarios.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks; each prints JSON.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
app.add_typer(bench_app, name="bench")

PRIORITY_STYLE = {Priority.HIGH: "bold red", Priority.MEDIUM: "yellow", Priority.LOW: "cyan"}


def fail(command: str, message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the exit to raise."""
    print(f"spotter {command}: error: {message}", file=sys.stderr)
    return typer.Exit(code)


@contextlib.contextmanager
def open_text(path: str) -> Iterator[tuple[TextIO, str]]:
    """``-`` is standard input; anything else a UTF-8 file."""
    if path == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"), "<stdin>"
        return
    with open(path, encoding="utf-8") as fh:
        yield fh, path


def alarm_table(events: list[AlarmEvent]) -> Table:
    """The readable table of ``spotter replay``."""
    table = Table(title="Alarm events", show_lines=False)
    table.add_column("t (s)", justify="right")
    table.add_column("priority")
    table.add_column("event")
    table.add_column("alarm")
    table.add_column("value", justify="right")
    table.add_column("limit", justify="right")
    table.add_column("message")
    for e in events:
        style = PRIORITY_STYLE[e.priority]
        table.add_row(
            f"{e.t:.2f}",
            f"[{style}]{e.priority.label.upper()}[/]",
            e.event.value,
            e.id,
            "" if e.value is None else f"{e.value:g}",
            "" if e.limit is None else f"{e.limit:g}",
            e.message,
        )
    return table


@app.command("replay")
def replay_command(
    trace: Annotated[str, typer.Argument(help="A trace file (JSON Lines), or - for stdin.")],
    profile: Annotated[
        str, typer.Option(help="A built-in profile (beginner, standard) or a TOML file.")
    ] = DEFAULT_PROFILE,
    age: Annotated[
        float | None, typer.Option(help="The user's age in years (for the HR limit).", min=1)
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Run a trace through the safety core and print every alarm event in time order."""
    try:
        chosen = load_profile(profile)
    except ProfileError as exc:
        raise fail("replay", str(exc)) from None
    events: list[AlarmEvent] = []
    try:
        with open_text(trace) as (stream, source):
            reader = TraceReader(stream, source)
            core = core_for(reader, chosen, age)
            for event in replay(reader, core):
                if json_out:
                    sys.stdout.write(event.to_json_line() + "\n")
                else:
                    events.append(event)
    except TraceError as exc:
        sys.stdout.flush()
        raise fail("replay", str(exc)) from None
    except OSError as exc:
        raise fail("replay", f"{trace}: {exc.strerror or exc}") from None
    if not json_out:
        console = Console(width=None if sys.stdout.isatty() else 160)
        if events:
            console.print(alarm_table(events))
        else:
            console.print("No alarms.")
    report_stats(core)


def report_stats(core: object) -> None:
    """Malformed payloads and other sensor trouble, on stderr, after the run."""
    from monitor.core import SafetyCore

    assert isinstance(core, SafetyCore)
    for name, s in core.stats.sensors.items():
        parts = []
        if s.malformed:
            parts.append(f"{s.malformed} malformed notification(s) skipped")
        if s.lost:
            parts.append(f"{s.lost} notification(s) lost (sequence gaps)")
        if s.discarded_bytes:
            parts.append(f"{s.discarded_bytes} stream byte(s) discarded")
        if s.ignored:
            parts.append(f"{s.ignored} notification(s) on unused characteristics ignored")
        if parts:
            print(f"spotter: sensor {name}: " + "; ".join(parts), file=sys.stderr)
            if s.last_error:
                print(f"spotter: sensor {name}: last error: {s.last_error}", file=sys.stderr)


@sim_app.command("list")
def sim_list() -> None:
    """List the shipped scenarios."""
    from firmware_sim.scenario import builtin_names, load_scenario

    table = Table(title="Shipped scenarios")
    table.add_column("name")
    table.add_column("duration (s)", justify="right")
    table.add_column("description")
    for name in builtin_names():
        sc = load_scenario(name)
        table.add_row(name, f"{sc.model.duration_s:g}", sc.model.description)
    Console().print(table)


@sim_app.command("trace")
def sim_trace(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario's name or a TOML file.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write the trace; - for stdout.")
    ] = "-",
) -> None:
    """Generate a scenario's trace with the real encoders."""
    from firmware_sim.generate import write_trace
    from firmware_sim.scenario import ScenarioError, load_scenario

    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        raise fail("sim trace", str(exc)) from None
    if output == "-":
        write_trace(sc, sys.stdout)
        return
    try:
        target = Path(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with open(tmp, "w", encoding="utf-8") as fh:
            write_trace(sc, fh)
        tmp.replace(target)
    except OSError as exc:
        raise fail("sim trace", f"{output}: {exc.strerror or exc}") from None


@bench_app.command("replay")
def bench_replay_command(
    repeat: Annotated[int, typer.Option(min=1, help="Runs; the best is reported.")] = 5,
) -> None:
    """Replay a generated 10-minute session (tilt 100 Hz, HR 1 Hz); print JSON."""
    import json

    from monitor.bench import bench_replay

    print(json.dumps(bench_replay(repeat), indent=2))


def main() -> None:
    """Entry point for ``python -m monitor``."""
    app()


if __name__ == "__main__":
    main()
