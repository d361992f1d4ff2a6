"""``spotter run``: the station daemon, live, against the configured sensors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from monitor.ble.backend import open_backend
from monitor.ble.link import SensorLink
from monitor.core.profiles import Profile
from monitor.settings import Settings
from monitor.station.assembly import Attach, assembled, live_plan, stop_on_signals
from monitor.station.station import Sink, Station, StationClock

log = logging.getLogger(__name__)


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
    plan = live_plan(settings, profile, datetime.now().astimezone())
    backend = await open_backend(settings.ble)
    async with assembled(
        plan, StationClock(), sinks, owned=[("BLE backend", backend.close)]
    ) as parts:
        links = [
            SensorLink(name, sensor, settings.ble, backend, parts.station)
            for name, sensor in settings.sensors.items()
        ]
        log.info("station %s: %s, store %s", plan.name, backend.description, parts.store.path)
        timer = None
        if for_s is not None:
            timer = asyncio.get_running_loop().call_later(for_s, stop.set)
        try:
            await parts.run(links, stop, attach=attach)
        finally:
            if timer is not None:
                timer.cancel()
    return parts.station
