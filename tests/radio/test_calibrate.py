"""``spotter calibrate`` against a live simulated sensor, and the arithmetic behind it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firmware_sim.bleak_backend import SimBackend
from firmware_sim.peripherals import TiltSensor, WitMotionSensor
from firmware_sim.radio import Radio
from monitor.ble.backend import BleBackend
from monitor.ble.calibrate import CalibrationError, calibrate, solve
from monitor.core.codecs import witmotion
from monitor.core.codecs.spotter_tilt import TiltMeasurement
from monitor.core.sensors import Calibration, SensorKind, SensorSpec
from monitor.settings import BleConfig, SensorConfig
from monitor.station.assembly import stored_calibration
from monitor.store.station_store import Store

BLE = BleConfig(backend="sim", scan_timeout_s=1.0)


def test_solve_picks_the_axis_that_moved_and_makes_head_down_positive() -> None:
    cal = solve(SensorKind.WITMOTION, (2.0, 0.5, 90.0), (-28.0, 1.0, 90.5))
    assert cal == Calibration(2.0, -1, "x")
    assert cal.theta(-28.0) == pytest.approx(30.0)
    assert solve(SensorKind.SPOTTER_TILT, (0, 1.5, 0), (0, 31.5, 0)) == Calibration(1.5, 1, "pitch")


def test_a_table_that_did_not_move_is_refused() -> None:
    with pytest.raises(CalibrationError, match=r"moved only 3\.0°"):
        solve(SensorKind.SPOTTER_TILT, (0, 1.0, 0), (0, 4.0, 0))


@pytest.mark.radio
@pytest.mark.timeout(60)
@pytest.mark.asyncio
@pytest.mark.parametrize("kind", [SensorKind.SPOTTER_TILT, SensorKind.WITMOTION])
async def test_calibrate_against_the_live_sensor(kind: SensorKind) -> None:
    async with Radio() as radio:
        device = radio.add_device("tilt")
        peripheral = (
            TiltSensor(device) if kind is SensorKind.SPOTTER_TILT else WitMotionSensor(device)
        )
        await peripheral.start()
        sim = await SimBackend.on_radio(radio)
        angle = [1.5]  # flat: 1.5° on the sensor's axis (pitch; WitMotion: x, reversed)
        prompts: list[str] = []

        async def ask(text: str) -> None:
            prompts.append(text)
            if len(prompts) == 2:
                angle[0] = 1.5 - 30.0 if kind is SensorKind.WITMOTION else 31.5

        async def stream() -> None:
            seq = 0
            while True:
                if isinstance(peripheral, TiltSensor):
                    await peripheral.send(TiltMeasurement(seq, 0, angle[0]))
                else:
                    frame = witmotion.WitMotionFrame((0, 0, 1), (0, 0, 0), (angle[0], 0.3, 80.0))
                    await peripheral.send(frame)
                seq = (seq + 1) & 0xFFFF
                await asyncio.sleep(0.01)

        streaming = asyncio.create_task(stream())
        try:
            backend = BleBackend(sim.scanner_class, sim.client_class)
            result = await calibrate("tilt", SensorConfig(kind=kind), BLE, backend, ask)
        finally:
            streaming.cancel()
            await sim.close()
            await peripheral.close()
    assert len(prompts) == 2
    assert "flat" in prompts[0]
    assert "head-down" in prompts[1]
    if kind is SensorKind.SPOTTER_TILT:
        assert result == Calibration(1.5, 1, "pitch")
    else:
        assert result.axis == "x"
        assert result.sign == -1
        assert result.offset_deg == pytest.approx(1.5, abs=0.01)


def test_the_daemon_uses_the_stored_calibration(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "spotter.db")
    try:
        store.set_setting("home", "calibration.tilt", {"offset_deg": 2.0, "sign": -1, "axis": "x"})
        sensors = {
            "tilt": SensorSpec(SensorKind.WITMOTION),
            "hr": SensorSpec(SensorKind.HEART_RATE),
        }
        used = stored_calibration(store, "home", sensors)
        assert used["tilt"].calibration == Calibration(2.0, -1, "x")
        assert used["hr"] == sensors["hr"]
    finally:
        store.close()
