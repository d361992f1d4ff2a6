"""``spotter init``, ``config check``, ``user``, ``session``, ``history``: the station's people
and records, over the store named by the configuration."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.common import fail
from monitor.core.screening import CHECKLIST, CONTRAINDICATIONS

if TYPE_CHECKING:
    from rich.table import Table

    from monitor.core.sensors import Calibration
    from monitor.settings import SensorConfig, Settings
    from monitor.station.flow import SessionFlow
    from monitor.store.station_store import Store

user_app = typer.Typer(help="Users: add, list, screen, clear.", no_args_is_help=True)
session_app = typer.Typer(
    help="Sessions: check a user may start, pain scores, the plan.", no_args_is_help=True
)
config_app = typer.Typer(help="The configuration file.", no_args_is_help=True)
pin_app = typer.Typer(
    help="The owner's PIN (changing limits on the dashboard).", no_args_is_help=True
)

ConfigOption = Annotated[
    str | None, typer.Option("--config", help="Configuration file (default: $SPOTTER_CONFIG).")
]
ByOption = Annotated[str | None, typer.Option("--by", help="Who does this (default: you).")]
SimOption = Annotated[
    bool,
    typer.Option(
        "--sim",
        help="The simulated runs' store (sim.db: spotter run --sim, the demo) instead of the "
        "station's (spotter.db), in the same data folder.",
    ),
]


def _settings(command: str, config: str | None) -> Settings:
    from monitor.settings import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(command, str(exc)) from None


@contextlib.contextmanager
def _flow(command: str, config: str | None, sim: bool = False) -> Iterator[SessionFlow]:
    from monitor.core.profiles import ProfileError
    from monitor.station.flow import FlowError, SessionFlow
    from monitor.store.database import StoreError
    from monitor.store.station_store import Store

    settings = _settings(command, config)
    path = settings.station.sim_store_path if sim else settings.station.store_path
    try:
        store = Store.open(path)
    except StoreError as exc:
        raise fail(command, str(exc)) from None
    try:
        yield SessionFlow(store, settings.station.name)
    except (FlowError, StoreError, ProfileError) as exc:
        raise fail(command, str(exc)) from None
    finally:
        store.close()


def _who(by: str | None) -> str:
    return by or getpass.getuser()


# -- init and config check -------------------------------------------------------------------

STARTING_CONFIG = """\
# Spotter station configuration. Environment variables override any key:
# SPOTTER_STATION__NAME=clinic-3, SPOTTER_BLE__BACKEND=sim, ...

[station]
name = "home"                        # letters, digits, - and _
data_dir = "{data_dir}"  # store (spotter.db) and traces/ live here
profile = "beginner"                 # beginner, standard, or a profile TOML file
# age = 52                           # for the age-dependent heart-rate limit
trace_retention_days = 90            # delete session traces older than this

[ble]
backend = "bleak"                    # the platform's Bluetooth; "sim" = the virtual radio
# sim_hub = "tcp-client:127.0.0.1:7100"
scan_timeout_s = 5.0
connect_timeout_s = 10.0
max_backoff_s = 5.0
silence_reconnect_s = 5.0

# One tilt sensor and one heart-rate strap. Each is found by address, else by name, else by
# its service UUID (spotter scan lists what is in range).
[sensors.tilt]
kind = "spotter_tilt"                # or "witmotion"
# address = "C4:7C:8D:6A:12:34"
# name = "Spotter Tilt"
calibration = {{ offset_deg = 0.0, sign = 1, axis = "pitch" }}   # spotter calibrate measures it

[sensors.hr]
kind = "heart_rate"
# address = "E1:2B:3C:4D:5E:6F"
"""


def init_command(
    path: Annotated[
        str | None, typer.Option(help="Where to write (default: ~/.config/spotter/spotter.toml).")
    ] = None,
    data_dir: Annotated[
        str, typer.Option(help="The station's data folder.")
    ] = "~/.local/share/spotter",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starting configuration."""
    from monitor.settings import ConfigError, load_settings

    target = Path(path or "~/.config/spotter/spotter.toml").expanduser()
    if target.exists() and not force:
        raise fail("init", f"{target} exists (use --force to overwrite)", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(STARTING_CONFIG.format(data_dir=data_dir), encoding="utf-8")
    os.chmod(target, 0o600)
    try:
        load_settings(target)
    except ConfigError as exc:  # the template itself must always be valid
        raise fail("init", f"the written file does not validate: {exc}") from None
    print(f"wrote {target}; check it with: spotter config check --config {target}")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration; name every bad key. Secrets are never printed."""
    from rich.console import Console
    from rich.table import Table

    from monitor.settings import config_path, run_problems

    path = config_path(config)
    settings = _settings("config check", config)
    where = str(path) if path else "defaults and environment (no file)"
    problems = run_problems(settings)
    if problems:
        raise fail("config check", f"{where}: " + "; ".join(problems))
    console = Console()
    console.print(f"[green]ok[/green]: {where} (spotter run would accept it)")
    table = Table("key", "value")
    table.add_row("station.name", settings.station.name)
    table.add_row("station.data_dir", str(settings.station.data_path))
    table.add_row("station.profile", settings.station.profile)
    table.add_row("ble.backend", settings.ble.backend)
    for name, sensor in settings.sensors.items():
        how = sensor.address or sensor.name or "by service UUID"
        table.add_row(f"sensors.{name}", f"{sensor.kind.value}, {how}")
    console.print(table)


# -- users -----------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: str,
    profile: Annotated[
        str, typer.Option(help="beginner, standard or a profile file.")
    ] = "beginner",
    age: Annotated[float | None, typer.Option(min=1, max=129)] = None,
    role: Annotated[str, typer.Option(help="user, clinician or owner.")] = "user",
    config: ConfigOption = None,
    sim: SimOption = False,
    by: ByOption = None,
) -> None:
    """Add a user with a profile."""
    import asyncio

    with _flow("user add", config, sim) as flow:
        asyncio.run(flow.add_user(name, role=role, profile=profile, age=age, by=_who(by)))
    print(f"added {name} ({role}, profile {profile})")


@user_app.command("list")
def user_list(config: ConfigOption = None, sim: SimOption = False) -> None:
    """List the users."""
    from rich.console import Console
    from rich.table import Table

    with _flow("user list", config, sim) as flow:
        table = Table("name", "role", "profile", "age", "screened", "clearances")
        for user in flow.store.users():
            screening = flow.store.last_screening(user["id"])
            flagged = (
                "" if screening is None else ", ".join(screening["contraindications"]) or "clear"
            )
            clearances = ", ".join(
                f"{', '.join(c['conditions'])} by {c['clinician']}"
                for c in flow.store.clearances(user["id"])
            )
            table.add_row(
                user["name"],
                user["role"],
                user["profile"],
                "" if user["age"] is None else f"{user['age']:g}",
                "no" if screening is None else flagged,
                clearances,
            )
        Console().print(table)


@user_app.command("screen")
def user_screen(
    name: str,
    has: Annotated[
        list[str] | None,
        typer.Option("--has", help=f"A condition that applies: {', '.join(CONTRAINDICATIONS)}."),
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="None of the conditions applies.")] = False,
    config: ConfigOption = None,
    sim: SimOption = False,
    by: ByOption = None,
) -> None:
    """Record the screening answers: the conditions that apply (--has), or --none."""
    import asyncio

    conditions = list(has or [])
    if bool(conditions) == none:
        raise fail("user screen", "give the conditions that apply with --has, or --none", 2)
    unknown = set(conditions) - set(CONTRAINDICATIONS)
    if unknown:
        raise fail(
            "user screen",
            f"unknown condition(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(CONTRAINDICATIONS)})",
        )
    answers = {key: key in conditions for key in CONTRAINDICATIONS}
    with _flow("user screen", config, sim) as flow:
        flagged = asyncio.run(flow.record_screening(name, answers, _who(by)))
    if flagged:
        names = ", ".join(CONTRAINDICATIONS[c] for c in flagged)
        print(f"{name}: contraindicated ({names}); a clinician's clearance is needed to start")
    else:
        print(f"{name}: no contraindication")


@user_app.command("clear")
def user_clear(
    name: str,
    clinician: Annotated[str, typer.Option(help="The clinician who clears the user.")],
    condition: Annotated[list[str], typer.Option(help="A condition the clearance covers.")],
    note: Annotated[str, typer.Option(help="Limits or remarks.")] = "",
    config: ConfigOption = None,
    sim: SimOption = False,
) -> None:
    """Record a clinician's clearance for named contraindications."""
    import asyncio

    with _flow("user clear", config, sim) as flow:
        asyncio.run(flow.record_clearance(name, clinician, condition, note))
    print(f"{name}: cleared by {clinician} for {', '.join(condition)}")


# -- sessions --------------------------------------------------------------------------------


@session_app.command("check")
def session_check(
    user: Annotated[str, typer.Option(help="Who is about to invert.")],
    ankle_clamps_locked: Annotated[
        bool, typer.Option(help=CHECKLIST["ankle_clamps_locked"])
    ] = False,
    spotter_present: Annotated[bool, typer.Option(help=CHECKLIST["spotter_present"])] = False,
    warm_up_done: Annotated[bool, typer.Option(help=CHECKLIST["warm_up_done"])] = False,
    pain: Annotated[int | None, typer.Option(min=0, max=10, help="Pain now, 0-10.")] = None,
    config: ConfigOption = None,
    sim: SimOption = False,
    by: ByOption = None,
) -> None:
    """Check that a user may start now (exit 1: blocked, with the reasons); starts nothing.

    Screening, clearances and the checklist are checked and recorded with the pain score. The
    session itself starts at the station, when the user inverts or presses Start on the
    dashboard."""
    import asyncio

    checklist = {
        "ankle_clamps_locked": ankle_clamps_locked,
        "spotter_present": spotter_present,
        "warm_up_done": warm_up_done,
    }
    with _flow("session check", config, sim) as flow:
        decision = asyncio.run(flow.prepare(user, checklist, pain, _who(by)))
        plan = flow.plan(user)
    if not decision.allowed:
        for reason in decision.reasons:
            print(f"blocked: {reason}")
        raise typer.Exit(1)
    t = plan.target
    print(
        f"{user} may start (nothing started yet: invert, or Start on the dashboard). "
        f"Today: up to {t.angle_deg:.0f}°, holds of {t.hold_s:.0f} s, "
        f"{t.session_s:.0f} s inverted in all. Rest between holds; come up slowly."
    )


@session_app.command("end")
def session_end(
    pain: Annotated[int, typer.Option(min=0, max=10, help="Pain now, 0-10.")],
    session: Annotated[int | None, typer.Option(help="Session id (default: the latest).")] = None,
    config: ConfigOption = None,
    sim: SimOption = False,
    by: ByOption = None,
) -> None:
    """Log the pain score after a session."""
    import asyncio

    with _flow("session end", config, sim) as flow:
        sid = asyncio.run(flow.pain_after(pain, session, _who(by)))
    print(f"session {sid}: pain after {pain}")


@session_app.command("plan")
def session_plan(
    user: Annotated[str, typer.Option(help="Whose plan.")],
    raise_step: Annotated[bool, typer.Option("--raise", help="Accept the proposed raise.")] = False,
    config: ConfigOption = None,
    sim: SimOption = False,
    by: ByOption = None,
) -> None:
    """The progression plan: today's target, a proposed raise, days per week, milestones."""
    import asyncio

    with _flow("session plan", config, sim) as flow:
        plan = asyncio.run(flow.raise_step(user, _who(by))) if raise_step else flow.plan(user)
    t = plan.target
    print(
        f"step {plan.step + 1}: {t.angle_deg:.0f}°, holds {t.hold_s:.0f} s, "
        f"{t.session_s:.0f} s a session"
    )
    print(f"days this week: {plan.days_this_week} (aim for 3-4); sessions so far: {plan.sessions}")
    for m in plan.milestones:
        print(f"milestone: {m}")
    if plan.pain_change is not None:
        print(f"pain after vs before, on average: {plan.pain_change:+.1f}")
    print(f"proposed: {plan.proposal}" if plan.proposal else "no raise proposed")
    for note in plan.notes:
        print(f"note: {note}")


def history_command(
    user: Annotated[str | None, typer.Option(help="Only this user's sessions.")] = None,
    weeks: Annotated[int, typer.Option(min=1, help="Weeks to summarise.")] = 4,
    config: ConfigOption = None,
    sim: SimOption = False,
) -> None:
    """Sessions and progress: inverted time, angle, alarms, pain, per week."""
    from rich.console import Console

    with _flow("history", config, sim) as flow:
        store = flow.store
        if user is not None:
            found = store.user(user)
            if found is None:
                raise fail("history", f"no user named {user!r}", 1)
            rows = store.sessions(where="s.user_id = ?", args=(found["id"],))
        else:
            rows = store.sessions()
        console = Console()
        console.print(_sessions_table(store, rows))
        console.print(_weeks_table(rows, weeks, datetime.now().astimezone()))
        if user is not None:
            for m in flow.plan(user).milestones:
                console.print(f"milestone: {m}")


def _sessions_table(store: Store, rows: list[dict[str, Any]]) -> Table:
    """One row per session: when, who, inverted time, highest angle, alarms, pain, end."""
    from rich.table import Table

    table = Table("id", "started", "user", "inverted", "max θ", "alarms", "pain", "ended")
    for r in rows:
        top = store.session_max_theta(r["id"])
        pain = f"{r['pain_before'] if r['pain_before'] is not None else '-'} → " + (
            f"{r['pain_after']}" if r["pain_after"] is not None else "-"
        )
        table.add_row(
            str(r["id"]),
            r["started_at"][:16].replace("T", " "),
            r["user"] or "",
            f"{r['inverted_s']:.0f} s",
            "" if top is None else f"{top:.0f}°",
            str(r["alarms_raised"]),
            pain,
            r["end_reason"] or ("open" if not r["ended_at"] else ""),
        )
    return table


def _weeks_table(rows: list[dict[str, Any]], weeks: int, today: datetime) -> Table:
    """One row per week (the last ``weeks``, oldest first): sessions, days, inverted time,
    the mean pain change."""
    from rich.table import Table

    week_table = Table("week from", "sessions", "days", "inverted", "pain change")
    for w in range(weeks - 1, -1, -1):
        start = today - timedelta(days=7 * (w + 1))
        end = today - timedelta(days=7 * w)
        in_week = [r for r in rows if start <= datetime.fromisoformat(r["started_at"]) < end]
        days = {datetime.fromisoformat(r["started_at"]).date() for r in in_week}
        scored = [
            r for r in in_week if r["pain_before"] is not None and r["pain_after"] is not None
        ]
        change = (
            f"{sum(r['pain_after'] - r['pain_before'] for r in scored) / len(scored):+.1f}"
            if scored
            else ""
        )
        week_table.add_row(
            start.date().isoformat(),
            str(len(in_week)),
            str(len(days)),
            f"{sum(r['inverted_s'] for r in in_week) / 60:.1f} min",
            change,
        )
    return week_table


def calibrate_command(
    sensor: Annotated[
        str, typer.Option(help="The tilt sensor's name in the configuration.")
    ] = "tilt",
    sim: Annotated[
        bool, typer.Option("--sim", help="Practise on a simulated sensor (flat 1.5°, down 31.5°).")
    ] = False,
    config: ConfigOption = None,
    by: ByOption = None,
) -> None:
    """Guide the calibration (table flat, then head-down) and store it with the station."""
    import asyncio

    from monitor.ble.backend import BackendError, open_backend
    from monitor.ble.calibrate import CalibrationError, calibrate

    settings = _settings("calibrate", config)
    chosen = settings.sensors.get(sensor)
    if chosen is None:
        raise fail("calibrate", f"no sensor named {sensor!r} in the configuration")

    async def ask(text: str) -> None:
        await asyncio.to_thread(input, f"{text} ")

    async def on_config() -> Calibration:
        backend = await open_backend(settings.ble)
        try:
            return await calibrate(sensor, chosen, settings.ble, backend, ask)
        finally:
            await backend.close()

    try:
        result = asyncio.run(_practise_calibration(sensor, chosen, ask) if sim else on_config())
    except (CalibrationError, BackendError) as exc:
        raise fail("calibrate", str(exc), 1) from None
    if sim:
        print(
            f"practice run on a simulated sensor: offset {result.offset_deg}°, sign "
            f"{result.sign:+d}, axis {result.axis} (not stored)"
        )
        return
    with _flow("calibrate", config) as flow:
        flow.store.set_setting(flow.station, f"calibration.{sensor}", result.to_json())
        flow.store.audit(_who(by), "calibration stored", {"sensor": sensor, **result.to_json()})
    print(
        f"calibration of {sensor}: offset {result.offset_deg}°, sign {result.sign:+d}, "
        f"axis {result.axis}; stored with station {settings.station.name}"
    )


async def _practise_calibration(
    sensor: str, chosen: SensorConfig, ask: Callable[[str], Awaitable[None]]
) -> Calibration:
    """``calibrate --sim``: the real calibration against a simulated tilt sensor that lies
    flat at 1.5° until the second prompt has been answered, then head-down at 31.5°."""
    import asyncio

    from firmware_sim.bleak_backend import SimBackend
    from firmware_sim.peripherals import TiltSensor
    from firmware_sim.radio import Radio
    from monitor.ble.backend import BleBackend
    from monitor.ble.calibrate import calibrate
    from monitor.core.codecs.spotter_tilt import TiltMeasurement
    from monitor.settings import BleConfig
    from monitor.supervise import cancel_and_wait

    async with Radio() as radio:
        peripheral = TiltSensor(radio.add_device(sensor))
        await peripheral.start()
        sim_backend = await SimBackend.on_radio(radio)
        pitch = [1.5]
        prompts = 0

        async def sim_ask(text: str) -> None:
            nonlocal prompts
            await ask(text)
            prompts += 1
            if prompts == 2:
                pitch[0] = 31.5

        async def stream() -> None:
            seq = 0
            while True:
                await peripheral.send(TiltMeasurement(seq & 0xFFFF, 0, pitch[0]))
                seq += 1
                await asyncio.sleep(0.02)

        streaming = asyncio.create_task(stream())
        try:
            backend = BleBackend(sim_backend.scanner_class, sim_backend.client_class)
            ble = BleConfig(backend="sim", scan_timeout_s=1.0)
            return await calibrate(sensor, chosen, ble, backend, sim_ask)
        finally:
            await cancel_and_wait(streaming)  # a failed stream is logged
            await sim_backend.close()
            await peripheral.close()


# -- the owner's PIN -------------------------------------------------------------------------


@pin_app.command("set")
def pin_set(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the PIN from the first line of stdin.")
    ] = False,
    config: ConfigOption = None,
    sim: SimOption = False,
    by: ByOption = None,
) -> None:
    """Set or change the owner's PIN (4-12 digits), asked twice without echo. Whoever can run
    this on the station can already change its files, so the old PIN is not asked; on the
    dashboard (settings) changing it needs the old one."""
    from dashboard.auth import Access

    if stdin:
        import sys

        pin = sys.stdin.readline().strip()
    else:
        pin = getpass.getpass("New owner PIN (4-12 digits): ")
        if getpass.getpass("The same PIN again: ") != pin:
            raise fail("pin set", "the two PINs differ: nothing changed")
    try:
        Access.valid_pin(pin)
    except ValueError as exc:
        raise fail("pin set", str(exc)) from None
    with _flow("pin set", config, sim) as flow:
        Access(flow.store, flow.station).set_pin(pin, _who(by))
    print(f"owner PIN set for station {flow.station}")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``spotter`` app."""
    app.command("init")(init_command)
    app.command("history")(history_command)
    app.command("calibrate")(calibrate_command)
    app.add_typer(config_app, name="config")
    app.add_typer(user_app, name="user")
    app.add_typer(session_app, name="session")
    app.add_typer(pin_app, name="pin")
