"""The ``spotter`` command."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from monitor.cli import station as cli_station
from monitor.cli.common import SimHub, SimRadio, fail
from monitor.cli.hub import hub_app
from monitor.cli.sensors import sensors_app

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from dashboard.server import DashboardConfig
    from monitor.core.alarms import AlarmEvent
    from monitor.core.profiles import Profile
    from monitor.station.assembly import Attach
    from monitor.station.service import ServiceNotifier
    from monitor.station.simrun import SimRun
    from monitor.station.station import Station

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
cli_station.register(app)
app.add_typer(hub_app, name="hub")
app.add_typer(sensors_app, name="sensors")

DEFAULT_PROFILE = "beginner"
"""``monitor.core.profiles.DEFAULT_PROFILE``, written out: importing the profiles (pydantic)
would cost every command, ``--help`` included, its start-up time (a test keeps them equal)."""


@contextlib.contextmanager
def open_text(path: str) -> Iterator[tuple[TextIO, str]]:
    """``-`` is standard input; anything else a UTF-8 file. Bytes that are not UTF-8 are kept
    as surrogates, so the trace reader can name the line they are on."""
    if path == "-":
        yield (
            io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape"),
            ("<stdin>"),
        )
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        yield fh, path


def alarm_table(events: list[AlarmEvent]) -> Table:
    """The readable table of ``spotter replay``."""
    from rich.table import Table

    from monitor.core.alarms import Priority

    style_of = {Priority.HIGH: "bold red", Priority.MEDIUM: "yellow", Priority.LOW: "cyan"}
    table = Table(title="Alarm events", show_lines=False)
    table.add_column("t (s)", justify="right")
    table.add_column("priority")
    table.add_column("event")
    table.add_column("alarm")
    table.add_column("value", justify="right")
    table.add_column("limit", justify="right")
    table.add_column("message")
    for e in events:
        style = style_of[e.priority]
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
    from monitor.core.profiles import BUILTIN, ProfileError
    from monitor.core.replay import core_for, replay
    from monitor.core.trace import TraceError, TraceReader

    try:
        chosen = BUILTIN.get(profile) or _profile_file(profile)
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
        from rich.console import Console

        console = Console(width=None if sys.stdout.isatty() else 160)
        if events:
            console.print(alarm_table(events))
        else:
            console.print("No alarms.")
    report_stats(core)


def _profile_file(path: str) -> Profile:
    """A profile file, read by the shell; the settings module (pydantic-settings) is loaded
    only here, so a replay with a built-in profile starts without it."""
    from monitor.settings import load_profile

    return load_profile(path)


def report_stats(core: object) -> None:
    """Malformed payloads and other sensor trouble, on stderr, after the run."""
    from monitor.core.engine import SafetyCore

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
    from rich.console import Console
    from rich.table import Table

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
        if target.exists() and not target.is_file():  # /dev/null, a pipe: never replace it
            with open(target, "w", encoding="utf-8") as fh:
                write_trace(sc, fh)
            return
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

    from monitor.bench.runs import bench_replay

    print(json.dumps(bench_replay(repeat), indent=2))


# ``spotter run``'s options
_SimOpt = Annotated[
    str | None,
    typer.Option(help="Play a scenario (name or TOML) or a trace through simulated sensors."),
]
_ForOpt = Annotated[
    float | None, typer.Option("--for", min=0.1, help="Stop after this many seconds.")
]
_JsonOpt = Annotated[
    bool, typer.Option("--json", help="Alarm events as JSON lines instead of the live view.")
]
_ConfigOpt = Annotated[
    str | None, typer.Option(help="Configuration file (default: $SPOTTER_CONFIG).")
]
_ProfileOpt = Annotated[str | None, typer.Option(help="Override the profile.")]
_AgeOpt = Annotated[float | None, typer.Option(min=1, help="Override the user's age.")]
_SpeedOpt = Annotated[
    float, typer.Option(min=0.1, max=50, help="With --sim: play this many times faster.")
]
_DashboardOpt = Annotated[
    bool, typer.Option(help="Serve the web dashboard (default: the config's choice).")
]
_PortOpt = Annotated[
    int | None, typer.Option(min=0, max=65535, help="Dashboard port (0: a free one).")
]
_LanOpt = Annotated[
    bool, typer.Option("--lan", help="Dashboard on the LAN: prints a pairing URL and QR code.")
]
_InsecureHttpOpt = Annotated[
    bool,
    typer.Option("--insecure-http", help="With --lan: plain HTTP instead of HTTPS (warned about)."),
]
_ServiceOpt = Annotated[
    bool,
    typer.Option(
        "--service", help="Run under systemd: sd_notify (READY, STATUS, WATCHDOG), plain logs."
    ),
]
_StayOpt = Annotated[
    bool, typer.Option("--stay", help="With --sim: keep running after the scenario ends.")
]


@app.command("run")
def run_command(
    sim: _SimOpt = None,
    for_s: _ForOpt = None,
    json_out: _JsonOpt = False,
    config: _ConfigOpt = None,
    profile: _ProfileOpt = None,
    age: _AgeOpt = None,
    speed: _SpeedOpt = 1.0,
    dashboard: _DashboardOpt = True,
    port: _PortOpt = None,
    lan: _LanOpt = False,
    insecure_http: _InsecureHttpOpt = False,
    service: _ServiceOpt = False,
    stay: _StayOpt = False,
) -> None:
    """The station daemon: sensors -> safety core -> alarms; a live terminal view and the web
    dashboard (http://127.0.0.1:8000 by default; the printed pairing URL logs a browser in).

    With --sim, simulated sensors on an in-process virtual radio stand in for the hardware and
    the daemon's real BLE code connects to them. With --json, alarm events are printed as JSON
    lines, t in seconds since the scenario (or trace) started.
    """
    from monitor.station.assembly import mqtt_attacher, together
    from monitor.station.simrun import SimRun

    view_console = _run_logging(service, json_out)
    settings, chosen = _run_settings(config, profile, service)
    if service and (sim is not None or json_out):
        raise fail("run", "--service runs the real station: no --sim, no --json")
    if speed != 1.0 and sim is None:
        raise fail("run", "--speed is for simulations only (--sim)")
    result = SimRun()
    sinks, attachers, notifier = _run_outputs(service, json_out, result, view_console)
    if settings.mqtt.enabled:
        attachers.append(mqtt_attacher(settings.mqtt, settings.station.name))
    if dashboard and settings.dashboard.enabled:
        attachers.append(_run_dashboard(settings, port, lan, insecure_http, service, json_out))
    beside = together(attachers)
    if sim is None:
        _run_live(settings, chosen, sinks, for_s, beside, notifier)
        return
    _run_sim(sim, settings, chosen, profile, age, sinks, for_s, speed, beside, result, stay)


def _run_logging(service: bool, json_out: bool) -> Console:
    """``spotter run``'s logging: plain INFO lines for journald; on a terminal, warnings
    through rich above the live view (on the returned console); else warnings with times."""
    import logging

    from rich.console import Console

    from monitor.sinks.terminal import log_handler

    view_console = Console()
    if service:  # journald adds the time
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif not json_out and view_console.is_terminal:  # logs above the live view, through rich
        logging.basicConfig(
            level=logging.WARNING,
            format="%(name)s: %(message)s",
            handlers=[log_handler(view_console)],
        )
    else:
        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    return view_console


def _run_settings(config: str | None, profile: str | None, service: bool) -> tuple[Any, Any]:
    """The settings and the chosen profile; an error is told to systemd too (``--service``)."""
    from monitor.core.profiles import ProfileError
    from monitor.settings import ConfigError, config_path, load_profile, load_settings, run_problems
    from monitor.station.service import ServiceNotifier

    try:
        settings = load_settings(config)
        problems = run_problems(settings)  # what spotter config check reports, too
        if problems:
            where = config_path(config) or "defaults and environment (no file)"
            raise ConfigError(f"{where}: " + "; ".join(problems))
        chosen = load_profile(profile or settings.station.profile)
    except (ConfigError, ProfileError) as exc:
        if service:
            ServiceNotifier().status(str(exc))
        raise fail("run", str(exc)) from None
    return settings, chosen


def _run_outputs(
    service: bool, json_out: bool, result: SimRun, view_console: Console
) -> tuple[list[Any], list[Attach], ServiceNotifier | None]:
    """Where ``spotter run`` shows the station: (sinks, attachers, the systemd notifier):
    sd_notify with ``--service``, JSON lines with ``--json``, else the live terminal view."""
    import asyncio

    from monitor.sinks.jsonl import JsonLinesSink
    from monitor.sinks.terminal import TerminalView
    from monitor.station.service import ServiceNotifier

    attachers: list[Attach] = []
    sinks: list[Any] = []
    notifier = ServiceNotifier() if service else None
    if notifier is not None:
        sinks.append(notifier)
        attachers.append(notifier.attend)
    elif json_out:
        sinks.append(JsonLinesSink(sys.stdout, lambda: result.origin or 0.0))
    else:

        async def attach_view(station: Station, stop: asyncio.Event) -> None:
            view = TerminalView(station, view_console)
            station.sinks.append(view)
            await view.run(stop)

        attachers.append(attach_view)
    return sinks, attachers, notifier


def _run_dashboard(
    settings: Any, port: int | None, lan: bool, insecure_http: bool, quiet: bool, plain: bool
) -> Attach:
    """The dashboard beside the station, HTTPS chosen from the settings and the options."""
    from dashboard.server import DashboardConfig, choose_tls
    from dashboard.tls import TlsError

    web = settings.dashboard
    lan = lan or web.lan
    try:
        tls = choose_tls(
            lan=lan,
            tls=web.tls and not insecure_http,
            cert_file=web.cert_file,
            key_file=web.key_file,
            data_dir=settings.station.data_path,
            station=settings.station.name,
        )
    except (TlsError, OSError) as exc:
        raise fail("run", f"dashboard HTTPS: {exc}") from None
    return dashboard_attacher(
        settings.station.name,
        DashboardConfig(port=web.port if port is None else port, lan=lan, tls=tls),
        quiet=quiet,
        plain=plain,
        summary=config_summary(settings),
    )


def _run_live(
    settings: Any,
    chosen: Any,
    sinks: list[Any],
    for_s: float | None,
    together: Attach,
    notifier: ServiceNotifier | None,
) -> None:
    """The real station, on the configured BLE sensors."""
    import asyncio

    from monitor.ble.backend import BackendError
    from monitor.station.daemon import run_daemon
    from monitor.store.database import StoreError

    try:
        asyncio.run(run_daemon(settings, chosen, sinks=sinks, for_s=for_s, attach=together))
    except (BackendError, StoreError) as exc:
        if notifier is not None:
            notifier.status(str(exc))
        raise fail("run", str(exc)) from None


def _run_sim(
    sim: str,
    settings: Any,
    chosen: Any,
    profile: str | None,
    age: float | None,
    sinks: list[Any],
    for_s: float | None,
    speed: float,
    together: Attach,
    result: SimRun,
    stay: bool,
) -> None:
    """A scenario or trace played through simulated sensors to the station's real BLE code;
    then where its traces went and the run's statistics."""
    import asyncio

    from monitor.core.trace import TraceError
    from monitor.station.assembly import stop_on_signals
    from monitor.station.simrun import SimSourceError, open_source, run_simulation
    from monitor.store.database import StoreError

    try:
        source = open_source(sim)
    except (SimSourceError, TraceError) as exc:
        raise fail("run", str(exc)) from None
    run_profile = chosen if profile is not None or source.profile is None else source.profile

    async def main() -> SimRun:
        stop = asyncio.Event()
        stop_on_signals(stop)
        return await run_simulation(
            source,
            profile=run_profile,
            age_years=age if age is not None else source.age_years,
            data_dir=settings.station.data_path,
            station_name=settings.station.name,
            sinks=sinks,
            for_s=for_s,
            speed=speed,
            stop=stop,
            attach=together,
            result=result,
            stay=stay,
        )

    try:
        asyncio.run(main())
    except (TraceError, StoreError) as exc:
        raise fail("run", str(exc)) from None
    traces = ", ".join(str(p) for p in result.trace_paths) or "none (no session)"
    origin = result.origin if result.origin is not None else float("nan")
    print(
        f"\nspotter run: trace(s) {traces}; scenario time 0 = station time {origin:.3f} s",
        file=sys.stderr,
    )
    if result.station is not None:
        report_stats(result.station.core)


def config_summary(settings: Any) -> dict[str, Any]:
    """What the dashboard's settings page shows of the configuration (no secrets)."""
    from monitor.settings import redact

    return {
        "sound": settings.sound.model_dump(mode="json"),
        "push_targets": [redact(u) for u in settings.push.url_values()],
        "dashboard": settings.dashboard.model_dump(mode="json"),
    }


def dashboard_attacher(
    name: str,
    config: DashboardConfig,
    *,
    quiet: bool,
    summary: dict[str, Any],
    plain: bool = False,
) -> Attach:
    """Serve the dashboard beside a station and print its pairing URL on stderr (``quiet``:
    log it at INFO, for the service's journal; ``plain``: no QR code, for --json)."""
    import asyncio
    import logging

    lan = config.lan

    async def attach(station: Station, stop: asyncio.Event) -> None:
        from dashboard.server import CA_PATH, DashboardServer

        log = logging.getLogger("dashboard")
        assert station.journal is not None, "the dashboard needs the station's store"
        server = DashboardServer(station, station.journal.store, name, config, summary)
        serving = asyncio.create_task(server.serve(stop))
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if serving.done():
            problem = serving.exception()
            station.problems["dashboard"] = f"not served: {problem}"
            log.error("dashboard: %s", station.problems["dashboard"])
            print(
                f"spotter run: dashboard not served: {station.problems['dashboard']}",
                file=sys.stderr,
            )
            return
        url = server.pairing_url()
        ca = None
        if config.tls is not None and config.tls.ca_fingerprint is not None:
            ca = (
                f"HTTPS with the station's own CA: install {server.base_url()}{CA_PATH} on a "
                f"phone once, SHA-256 {config.tls.ca_fingerprint} (docs/lan-https.md)"
            )
        if quiet:  # --service: the journal has it (information, not a warning)
            log.info("dashboard on port %s; pair a browser with: %s", server.port, url)
            if ca is not None:
                log.info("dashboard: %s", ca)
        else:  # on stderr, so --json keeps stdout to the alarm events
            print(f"Dashboard: {url}  (this link logs one browser in, once)", file=sys.stderr)
            if ca is not None:
                print(f"Dashboard: {ca}", file=sys.stderr)
            if lan and not plain:
                import segno

                segno.make(url).terminal(out=sys.stderr, compact=True)
        await serving

    return attach


@sim_app.command("radio")
def sim_radio(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port on 127.0.0.1; 0 picks one.")
    ] = 7100,
    supervision_timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds a sensor stays held by a process that vanished (killed) before its "
            "link times out (0: at once).",
        ),
    ] = 0.0,
) -> None:
    """The virtual radio hub: sensors and daemons in other processes meet here."""
    import asyncio

    from firmware_sim.radio import serve_hub

    try:
        asyncio.run(serve_hub(port, supervision_timeout))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise fail(
            "sim radio", f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None


@sim_app.command("run")
def sim_run(
    source: Annotated[str, typer.Argument(help="A scenario (name or TOML) or a trace file.")],
    hub: Annotated[int, typer.Option(min=1, max=65535, help="The radio hub's port.")] = 7100,
    speed: Annotated[
        float, typer.Option(min=0.1, max=50, help="Play this many times faster.")
    ] = 1.0,
) -> None:
    """Simulated sensors on the radio hub, playing a scenario or a trace once a daemon has
    subscribed. User inputs in it are printed (they reach a daemon through its dashboard)."""
    import asyncio

    from firmware_sim.player import play_on_hub
    from monitor.core.trace import TraceError
    from monitor.station.simrun import SimSourceError, open_source

    try:
        sim = open_source(source)
    except (SimSourceError, TraceError) as exc:
        raise fail("sim run", str(exc)) from None

    def show(record: object) -> None:
        print(f"input for the daemon: {record}", file=sys.stderr)

    kinds = {name: spec.kind for name, spec in sim.header.sensors.items()}
    try:
        stats = asyncio.run(
            play_on_hub(
                hub,
                kinds,
                sim.records(),
                battery_percent=sim.battery,
                rate_hz=sim.rate_hz,
                speed=speed,
                on_input=show,
            )
        )
    except KeyboardInterrupt:
        return
    except OSError as exc:
        raise fail(
            "sim run", f"cannot reach the radio hub on port {hub}: {exc.strerror or exc}"
        ) from None
    except TraceError as exc:
        raise fail("sim run", str(exc)) from None
    finally:
        sim.close()
    print(
        f"spotter sim run: {stats.delivered} notifications delivered, {stats.lost} lost",
        file=sys.stderr,
    )


@app.command("scan")
def scan_command(
    sim: SimRadio = False,
    hub: SimHub = None,
    timeout: Annotated[float, typer.Option(min=0.5, help="Seconds to scan.")] = 5.0,
    config: Annotated[
        str | None,
        typer.Option(
            help="Configuration file (default: $SPOTTER_CONFIG, if any): also name each "
            "configured sensor that was not seen."
        ),
    ] = None,
) -> None:
    """List nearby sensors: kind, model (from the device profiles), name, address, RSSI and
    battery; then a ready configuration block (sensors.NAME) for each sensor Spotter can use."""
    from rich.console import Console
    from rich.table import Table

    from firmware_sim.devices import builtin_profiles, recognise
    from monitor.ble.link import LINK_ERRORS, describe
    from monitor.ble.scan import config_block, not_seen, scan
    from monitor.cli.sensors import run_on
    from monitor.settings import ConfigError, config_path, load_settings

    configured = None
    if config_path(config) is not None:
        try:
            configured = load_settings(config).sensors
        except ConfigError as exc:
            raise fail("scan", str(exc)) from None

    try:
        found = run_on(sim, hub, lambda backend: scan(backend, timeout))
    except LINK_ERRORS as exc:
        raise fail("scan", f"Bluetooth is not available: {describe(exc)}", 1) from None
    profiles = builtin_profiles()
    models = {f.address: recognise(f.name, f.service_uuids, profiles) for f in found}
    table = Table(title="Sensors in range" + (" (virtual radio)" if sim else ""))
    for column in ("kind", "model", "name", "address", "RSSI", "battery"):
        table.add_column(column)
    for f in found:
        model = models[f.address]
        table.add_row(
            f.kind.value if f.kind else "(not a sensor)",
            model[1].model if model else "",
            f.name or "",
            f.address,
            "" if f.rssi is None else f"{f.rssi} dBm",
            f"{f.battery_percent} %" if f.battery_percent is not None else (f.problem or ""),
        )
    console = Console()
    console.print(table if found else "No BLE devices found.")
    usable = [f for f in found if f.kind is not None]
    if usable:
        console.print("\nFor the configuration (spotter.toml), one tilt sensor and one strap:\n")
        for f in usable:
            model = models[f.address]
            print(config_block(f, model[1].model if model else None))
    for line in not_seen(found, configured or {}):
        print(line)


@bench_app.command("startup")
def bench_startup_command(
    runs: Annotated[int, typer.Option(min=1, help="Runs of each; the fastest is reported.")] = 5,
) -> None:
    """Start-up: spotter --help, spotter replay of a short trace, import monitor.core; JSON."""
    import json

    from monitor.bench.startup import bench_startup

    print(json.dumps(bench_startup(runs), indent=2))


@bench_app.command("all")
def bench_all_command(
    quick: Annotated[
        bool, typer.Option(help="Every section as short as it allows (the test; no figures).")
    ] = False,
    out: Annotated[
        str, typer.Option(help="Folder for performance.json, performance.md and the plots.")
    ] = "docs",
    readme: Annotated[
        str | None, typer.Option(help="README whose performance table to rewrite ('' for none).")
    ] = "README.md",
    note: Annotated[str, typer.Option(help="A line for the page's header (e.g. the load).")] = "",
    from_json: Annotated[
        str | None, typer.Option(help="Run nothing: remake the page, plots and table from JSON.")
    ] = None,
) -> None:
    """Every benchmark in one run, each figure beside its target and floor: JSON (printed and
    in OUT/performance.json), OUT/performance.md and its plots, the README's table."""
    import json
    from pathlib import Path

    from monitor.bench.all import bench_all

    report = bench_all(
        quick,
        Path(out),
        Path(readme) if readme else None,
        note,
        Path(from_json) if from_json else None,
    )
    print(json.dumps(report, indent=2))
    if not report["ok"]:
        raise typer.Exit(1)


@bench_app.command("live")
def bench_live_command(
    seconds: Annotated[float, typer.Option(min=3, help="How long to stream.")] = 60.0,
    rate_hz: Annotated[int, typer.Option(min=1, max=200, help="Tilt notifications per s.")] = 100,
    receive_only: Annotated[
        bool, typer.Option(help="The floor: a station whose core discards every notification.")
    ] = False,
) -> None:
    """One station streaming tilt at 100 Hz and HR at 1 Hz over the virtual radio; print JSON."""
    import json

    from monitor.bench.runs import bench_live

    print(json.dumps(bench_live(seconds, rate_hz, receive_only), indent=2))


@app.command("doctor")
def doctor_command(
    config: Annotated[
        str | None, typer.Option(help="Configuration file (default: $SPOTTER_CONFIG).")
    ] = None,
) -> None:
    """Check Bluetooth, permissions, audio, configuration, store and disk; say what to fix."""
    from rich.console import Console

    from monitor.cli.doctor import exit_code, render, render_plain, run_checks

    results = run_checks(config)
    console = Console()
    if console.is_terminal:  # a table as wide as the terminal
        console.print(render(results))
    else:
        print(render_plain(results))
    raise typer.Exit(exit_code(results))


@bench_app.command("hub")
def bench_hub_command(
    seconds: Annotated[float, typer.Option(min=8, help="How long the stations publish.")] = 30.0,
    stations: Annotated[int, typer.Option(min=1, max=1000, help="Simulated stations.")] = 50,
    replicas: Annotated[
        int, typer.Option(min=1, max=8, help="Hub replicas (needs --database).")
    ] = 1,
    database: Annotated[
        str | None,
        typer.Option(
            help="A PostgreSQL URL the replicas share (the bench uses a schema of its own "
            "there, dropped after). Without it: one hub on its SQLite file."
        ),
    ] = None,
    floor: Annotated[
        bool, typer.Option(help="The floor: the broker alone, a bare subscriber for the hub.")
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            help="cProfile the hub's process in the measured window: the stats to this file, "
            "the top functions by own time in the JSON's profile (one hub only)."
        ),
    ] = None,
) -> None:
    """50 stations (state 1 Hz, telemetry 10 Hz) through a real Mosquitto to one hub, or to
    --replicas hubs on one --database; JSON."""
    import json

    if database is None:
        if replicas > 1:
            raise fail("bench hub", "--replicas needs --database postgresql://... to share")
        from dashboard.clinic.bench import bench_hub

        print(json.dumps(bench_hub(seconds, stations, floor=floor, profile=profile), indent=2))
        return
    if not database.startswith(("postgresql://", "postgres://")):
        raise fail("bench hub", "--database: a postgresql:// URL")
    if profile is not None:
        raise fail("bench hub", "--profile: one hub on its SQLite file (no --database)")
    from dashboard.clinic.bench_replicas import bench_replicas

    print(json.dumps(bench_replicas(seconds, stations, replicas, database), indent=2))


@bench_app.command("faults")
def bench_faults_command(
    quick: Annotated[bool, typer.Option(help="A short run (what the tests use).")] = False,
    area: Annotated[list[str] | None, typer.Option(help="Only these areas (repeatable).")] = None,
) -> None:
    """Fault injection, fuzzing and abuse of every boundary: figures as JSON."""
    import json

    from monitor.bench.faults import run_all

    print(json.dumps(run_all(quick=quick, only=area or None), indent=2))


@bench_app.command("dashboard")
def bench_dashboard_command(
    seconds: Annotated[float, typer.Option(min=11, help="Scenario seconds per client count.")] = 60,
    clients: Annotated[
        list[int] | None, typer.Option(min=1, help="Pages open at once (repeatable; 1 and 20).")
    ] = None,
) -> None:
    """Alarm event -> its element in the page's DOM (real Chromium), 1 and 20 clients; JSON."""
    import json

    from monitor.bench.dashboard import bench_dashboard

    print(json.dumps(bench_dashboard(clients or (1, 20), duration_s=seconds), indent=2))


def main() -> None:
    """Entry point for ``python -m monitor.cli.main``."""
    app()


if __name__ == "__main__":
    main()
