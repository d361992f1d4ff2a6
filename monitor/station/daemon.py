"""``spotter run``: the station daemon, live, against the configured sensors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

from monitor.ble.backend import open_backend
from monitor.ble.link import SensorLink
from monitor.core.alarms import Priority
from monitor.core.engine import SafetyCore
from monitor.core.profiles import Profile
from monitor.core.sensors import Calibration, SensorSpec
from monitor.mqtt.bridge import MqttBridge
from monitor.settings import MqttConfig, Settings
from monitor.sinks.push import PushSink
from monitor.sinks.sound import SoundSink
from monitor.station.journal import Journal
from monitor.station.recorder import TraceRecorder
from monitor.station.station import Sink, Station, StationClock
from monitor.store.station_store import Store
from monitor.store.writer import StoreWriter

log = logging.getLogger(__name__)
Attach = Callable[[Station, asyncio.Event], Coroutine[Any, Any, None]]
"""Something to run beside a station until it stops (e.g. the terminal view)."""


def stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM end the run cleanly (the trace gets its end marker)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)


def stored_calibration(
    store: Store, station: str, sensors: dict[str, SensorSpec]
) -> dict[str, SensorSpec]:
    """The configured sensors, with the calibration ``spotter calibrate`` stored, if any."""
    out = dict(sensors)
    for sensor, spec in sensors.items():
        saved = store.setting(station, f"calibration.{sensor}")
        if saved is not None and spec.kind.is_tilt:
            out[sensor] = SensorSpec(spec.kind, Calibration.from_json(saved, spec.kind))
            log.info("sensor %s: stored calibration %s", sensor, saved)
    return out


def mqtt_attacher(config: MqttConfig, name: str) -> Attach:
    """The MQTT bridge beside a station; a lost broker link becomes ``link.lost``."""

    async def attach(station: Station, stop: asyncio.Event) -> None:
        assert station.journal is not None, "the bridge sends from the station's store"
        limit = config.link_lost_after_s

        def link_changed(up: bool, down_for_s: float) -> None:
            station.condition("link.lost", None if up else (Priority.MEDIUM, down_for_s, limit))

        bridge = MqttBridge(
            config,
            name,
            station.journal.store,
            on_link_change=link_changed,
            writer=station.journal.writer,  # its progress is written off the safety loop
        )
        await bridge.run(station, stop)  # on stop: the last events, then "offline"

    return attach


async def run_daemon(
    settings: Settings,
    profile: Profile,
    *,
    sinks: Sequence[Sink] = (),
    stop: asyncio.Event | None = None,
    for_s: float | None = None,
    attach: Attach | None = None,
) -> Station:
    """Run the station until ``stop`` (or a signal, or ``for_s`` seconds). ``attach`` starts
    something beside it (the live terminal view)."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    name = settings.station.name
    store = Store.open(settings.station.store_path)
    try:
        backend = await open_backend(settings.ble)
    except BaseException:
        store.close()
        raise
    sensors = stored_calibration(store, name, settings.sensor_specs())
    started_at = datetime.now().astimezone()
    clock = StationClock()
    midnight = started_at.replace(hour=0, minute=0, second=0, microsecond=0)
    core = SafetyCore(
        sensors,
        profile,
        age_years=settings.station.age,
        started_at=started_at,
        day_inverted_before_s=store.inverted_today_s(name, midnight.isoformat()),
    )
    try:
        writer = await StoreWriter.start(store.path)  # the safety loop never waits on the disk
    except BaseException:
        await backend.close()
        store.close()
        raise
    recorder = TraceRecorder(
        settings.station.data_path / "traces",
        name,
        sensors,
        started_at,
        retention_days=settings.station.trace_retention_days,
        writer=writer,
    )
    journal = Journal(store, name, core, recorder, writer)
    journal.recover()
    station = Station(core, clock, sinks, recorder, journal)
    # Sound and push follow the station's read model. The sound sink probes the audio device
    # and renders prompts: off the event loop.
    sound = await asyncio.to_thread(SoundSink, station, settings.sound, name)
    push = PushSink(station, settings.push, name)
    station.sinks += [sound, push]
    links = [
        SensorLink(name, sensor, settings.ble, backend, station)
        for name, sensor in settings.sensors.items()
    ]
    log.info("station %s: %s, store %s", name, backend.description, store.path)
    timer = None
    if for_s is not None:
        timer = asyncio.get_running_loop().call_later(for_s, stop.set)
    beside = asyncio.create_task(attach(station, stop)) if attach is not None else None
    try:
        await station.run(links, stop)
    finally:
        if timer is not None:
            timer.cancel()
        await writer.flush()  # everything committed (and sent on) before the bridge's last word
        stop.set()  # whatever ended the run, the things beside it end too
        if beside is not None:
            await beside
        await writer.aclose()
        await backend.close()
        store.close()
    return station
