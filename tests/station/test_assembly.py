"""The station assembly (monitor/station/assembly.py): live and --sim stations are built alike,
and teardown closes every part even when one part's close fails, loudly."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from monitor.core.alarms import AlarmEvent
from monitor.core.profiles import BUILTIN
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.core.sink import SinkBase
from monitor.core.trace import InputKind
from monitor.settings import Settings, load_settings
from monitor.sinks.push import PushSink
from monitor.sinks.sound import SoundSink
from monitor.station.assembly import (
    Assembly,
    StationPlan,
    assemble,
    live_plan,
    sim_plan,
)
from monitor.station.station import LockstepClock, StationClock
from monitor.store.database import StoreError
from monitor.store.writer import StoreWriter

STARTED = datetime(2026, 3, 2, 10, 0).astimezone()
TILT = {"tilt": SensorSpec(SensorKind.SPOTTER_TILT)}


class Heard(SinkBase):
    """A sink of the station itself (sound, display): events in the step that made them."""

    at_once = True

    def __init__(self) -> None:
        self.got: list[AlarmEvent] = []

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        self.got.extend(events)


class Beyond(SinkBase):
    """A sink beyond the station (dashboard, MQTT): events once they are committed."""

    def __init__(self) -> None:
        self.got: list[AlarmEvent] = []

    def alarm_events(self, events: Sequence[AlarmEvent]) -> None:
        self.got.extend(events)


def settings_in(folder: Path) -> Settings:
    folder.mkdir()
    config = folder / "spotter.toml"
    config.write_text(
        f'[station]\nname = "home"\ndata_dir = "{folder / "data"}"\n'
        f'[sound]\nvoice = false\nfile = "{folder / "sound.wav"}"\n'
        "[push]\nenabled = false\n"
    )
    return load_settings(config)


async def first_stage(parts: Assembly) -> tuple[list[str], list[str]]:
    """A symptom alarm's path: (the sinks that had it in the step that raised it, the alarm
    ids the sink beyond the station had once the store committed them)."""
    heard, beyond = parts.station.sinks[0], parts.station.sinks[1]
    assert isinstance(heard, Heard)
    assert isinstance(beyond, Beyond)
    parts.station.user_input(InputKind.SYMPTOM)
    at_first = [type(s).__name__ for s in (heard, beyond) if s.got]
    await parts.writer.flush()
    return at_first, [e.id for e in beyond.got]


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_live_and_sim_assemblies_order_sinks_and_journal_alike(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "live")
    profile = BUILTIN["beginner"]
    live = live_plan(settings, profile, STARTED)
    sim = sim_plan(
        "home",
        settings.sensor_specs(),
        profile,
        None,
        tmp_path / "sim",
        STARTED,
    )
    built: dict[str, Assembly] = {}
    built["live"] = await assemble(live, StationClock(), [Heard(), Beyond()])
    # The same parts asked of --sim (sound and push are the live plan's choice, not the
    # assembly's): the same station comes out, whatever the clock.
    same = replace(sim, sound=live.sound, push=live.push)
    built["sim"] = await assemble(same, LockstepClock(), [Heard(), Beyond()])
    try:
        kinds = {k: [type(s) for s in p.station.sinks] for k, p in built.items()}
        assert kinds["live"] == kinds["sim"] == [Heard, Beyond, SoundSink, PushSink]
        assert [s.at_once for s in built["live"].station.sinks] == [
            s.at_once for s in built["sim"].station.sinks
        ]
        for parts in built.values():
            assert isinstance(parts.writer, StoreWriter)  # the loop never waits on the disk
            assert parts.journal is parts.station.journal
            assert parts.journal.writer is parts.writer
            assert parts.recorder is not None
            assert parts.recorder.writer is parts.writer
            assert parts.recorder is parts.station.recorder
        paths = {k: await first_stage(p) for k, p in built.items()}
        assert paths["live"][0] == paths["sim"][0] == ["Heard"]  # beyond waits for the disk
        assert paths["live"][1] == paths["sim"][1] != []  # then it has the stored seq
        assert built["live"].store.path == settings.station.store_path
        assert built["sim"].store.path == tmp_path / "sim" / "sim.db"
    finally:
        for parts in built.values():
            await parts.aclose()
    # A bare --sim plan: no sound, no push, only the caller's sinks.
    bare = await assemble(sim, LockstepClock(), [Heard(), Beyond()])
    try:
        assert [type(s) for s in bare.station.sinks] == [Heard, Beyond]
    finally:
        await bare.aclose()


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_teardown_closes_every_part_when_one_close_fails_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []

    def radio() -> None:
        closed.append("radio")

    async def backend() -> None:
        closed.append("backend")
        raise RuntimeError("the adapter went away")

    plan = StationPlan(
        "home",
        TILT,
        BUILTIN["beginner"],
        tmp_path / "spotter.db",
        started_at=STARTED,
        traces_dir=tmp_path / "traces",
        writer="thread",
    )
    parts = await assemble(plan, StationClock(), owned=[("radio", radio), ("backend", backend)])
    writer = parts.writer
    assert isinstance(writer, StoreWriter)
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="adapter went away"):
        await parts.aclose()
    assert closed == ["backend", "radio"]  # the one that failed did not stop the next
    with pytest.raises(RuntimeError, match="writer is closed"):
        writer.submit(lambda store: store.audit("test", "after close", {}))
    with pytest.raises(Exception, match="closed"):
        parts.store.events_since(0)
    failed = [r for r in caplog.records if "closing the backend failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].exc_info is not None


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_station_that_cannot_be_built_closes_what_was_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []

    def backend() -> None:
        closed.append("backend")
        raise OSError("the adapter is gone too")

    (tmp_path / "spotter.db").write_bytes(b"not a database, " * 64)
    plan = StationPlan("home", TILT, BUILTIN["beginner"], tmp_path / "spotter.db")
    with caplog.at_level(logging.ERROR), pytest.raises(StoreError):  # the build error is told
        await assemble(
            plan,
            StationClock(),
            owned=[("radio", lambda: closed.append("radio")), ("backend", backend)],
        )
    assert closed == ["backend", "radio"]
    assert any("closing the backend failed" in r.getMessage() for r in caplog.records)
