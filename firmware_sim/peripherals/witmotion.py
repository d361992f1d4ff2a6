"""A WitMotion BWT901BLE5.0 IMU (SPEC 4.3), as users buy it.

Service ``ffe5`` notifies on ``ffe4`` a byte stream of ``55 61`` frames (built by
``monitor.codecs.witmotion``, or raw chunks exactly as given, so split frames and junk
reach the central unchanged). ``ffe9`` takes the device's 5-byte ``FF AA reg lo hi``
commands, which are recorded; any other write is refused.
"""

from __future__ import annotations

import logging

from bumble import att
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from firmware_sim.peripherals.base import DEFAULT_ADVERTISING_INTERVAL_MS, SimPeripheral, sim_uuid
from monitor import gatt
from monitor.codecs import witmotion
from monitor.sensors import SensorKind

logger = logging.getLogger(__name__)

COMMAND_PREFIX = b"\xff\xaa"
COMMAND_SIZE = 5
REFUSED = att.ErrorCode.WRITE_REQUEST_REJECTED
"""ATT error for a write that is not a ``FF AA`` command."""


class WitMotionSensor(SimPeripheral):
    """A simulated WitMotion BWT901BLE5.0."""

    kind = SensorKind.WITMOTION
    default_name = "WT901BLE68"

    def __init__(
        self,
        device: Device,
        *,
        name: str | None = None,
        battery_percent: int = 100,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        self.commands: list[bytes] = []
        """Every accepted ``FF AA`` command, in order."""
        notify = Characteristic[bytes](
            sim_uuid(gatt.WITMOTION_NOTIFY),
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions(0),
            b"",
        )
        write = Characteristic[bytes](
            sim_uuid(gatt.WITMOTION_WRITE),
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )
        super().__init__(
            device,
            services=[Service(sim_uuid(gatt.WITMOTION_SERVICE), [notify, write])],
            stream=notify,
            name=name,
            battery_percent=battery_percent,
            advertising_interval_ms=advertising_interval_ms,
        )

    async def send(self, *frames: witmotion.WitMotionFrame) -> bool:
        """Notify frames back to back in one notification, encoded by the project's codec."""
        return await self.notify(b"".join(witmotion.encode_frame(f) for f in frames))

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        data = bytes(value)
        if len(data) != COMMAND_SIZE or not data.startswith(COMMAND_PREFIX):
            logger.info("%s: write %s refused: not an FF AA command", self.name, data.hex())
            raise att.ATT_Error(REFUSED, message=f"not an FF AA command: {data.hex()}")
        self.commands.append(data)
