"""The Spotter tilt sensor (SPEC 4.2): Tilt Measurement, Control Point, Sensor Info, Battery.

Control Point writes are decoded by ``monitor.core.codecs.spotter_tilt.decode_control``; a bad
write is answered with the ATT error the codec names (0x80 for an unknown opcode). Commands
change what the sensor reports about itself (the sample rate in Sensor Info) and are
recorded on the object for tests to check; they do not alter the payloads the sensor is
told to send, which come from a scenario or a trace.
"""

from __future__ import annotations

import dataclasses
import logging

from bumble import att
from bumble.device import Connection, Device

from firmware_sim.devices import DEFAULT_FOR_KIND, DeviceProfile, builtin
from firmware_sim.peripherals.base import DEFAULT_ADVERTISING_INTERVAL_MS, SimPeripheral
from monitor.core.codecs import spotter_tilt
from monitor.core.codecs.spotter_tilt import (
    ControlCommand,
    ControlOp,
    ControlPointError,
    SensorInfo,
)
from monitor.core.sensors import SensorKind

logger = logging.getLogger(__name__)


class TiltSensor(SimPeripheral):
    """A simulated Spotter tilt sensor on the table bed."""

    kind = SensorKind.SPOTTER_TILT

    def __init__(
        self,
        device: Device,
        profile: DeviceProfile | None = None,
        *,
        name: str | None = None,
        rate_hz: int = 100,
        firmware_build: int = 1,
        battery_percent: int | None = None,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        self.info = SensorInfo(spotter_tilt.SPEC_VERSION, rate_hz, firmware_build)
        self.commands: list[ControlCommand] = []
        """Every valid Control Point command, in order."""
        self.tare_count = 0
        self.identify_count = 0
        profile = profile or builtin(DEFAULT_FOR_KIND["spotter_tilt"])
        self.sensor_info_uuid = str(profile.quirks["sensor_info"])
        super().__init__(
            device,
            profile,
            reads={self.sensor_info_uuid: lambda _c: spotter_tilt.encode_info(self.info)},
            writes={str(profile.quirks["control_point"]): self._on_control},
            name=name,
            battery_percent=battery_percent,
            advertising_interval_ms=advertising_interval_ms,
        )

    @property
    def rate_hz(self) -> int:
        """The sample rate the sensor reports in Sensor Info."""
        return self.info.rate_hz

    async def send(self, measurement: spotter_tilt.TiltMeasurement) -> bool:
        """Notify one measurement, encoded by the project's codec."""
        return await self.notify(spotter_tilt.encode(measurement))

    def _on_control(self, _connection: Connection, value: bytes) -> None:
        try:
            command = spotter_tilt.decode_control(bytes(value))
        except ControlPointError as exc:
            logger.info("%s: Control Point write refused: %s", self.name, exc)
            raise att.ATT_Error(exc.att_error, message=str(exc)) from exc
        self.commands.append(command)
        if command.op is ControlOp.TARE:
            self.tare_count += 1
        elif command.op is ControlOp.IDENTIFY:
            self.identify_count += 1
        elif command.rate_hz is not None:
            self.info = dataclasses.replace(self.info, rate_hz=command.rate_hz)
        logger.debug("%s: %s", self.name, command)

    async def play(self, char: str, data: bytes) -> bool:
        """As :meth:`SimPeripheral.play`; a recorded Sensor Info value becomes the sensor's."""
        if self.canonical(char) == self.sensor_info_uuid:
            self.info = spotter_tilt.decode_info(data)
            return False
        return await super().play(char, data)
