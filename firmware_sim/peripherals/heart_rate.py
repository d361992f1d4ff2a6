"""A heart-rate strap: Heart Rate (0x180D), Battery (0x180F) and Device Information (0x180A).

The strap notifies Heart Rate Measurement (0x2A37) payloads built by
``monitor.codecs.heart_rate``, so every flag bit is the test's choice (bumble's own helper
picks the format and trims RR lists itself).
"""

from __future__ import annotations

from bumble.device import Device
from bumble.gatt import Characteristic, Service

from firmware_sim.peripherals.base import (
    DEFAULT_ADVERTISING_INTERVAL_MS,
    SimPeripheral,
    readable,
    sim_uuid,
)
from monitor import gatt
from monitor.codecs import heart_rate
from monitor.sensors import SensorKind


class HeartRateStrap(SimPeripheral):
    """A simulated chest strap."""

    kind = SensorKind.HEART_RATE
    default_name = "Spotter HR sim"

    def __init__(
        self,
        device: Device,
        *,
        name: str | None = None,
        battery_percent: int = 100,
        manufacturer: str = "Spotter",
        model: str = "HR sim",
        firmware: str = "1.0.0",
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        measurement = Characteristic[bytes](
            sim_uuid(gatt.HEART_RATE_MEASUREMENT),
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions(0),
            b"",
        )
        device_information = Service(
            sim_uuid(gatt.DEVICE_INFORMATION_SERVICE),
            [
                readable(gatt.MANUFACTURER_NAME, manufacturer.encode()),
                readable(gatt.MODEL_NUMBER, model.encode()),
                readable(gatt.FIRMWARE_REVISION, firmware.encode()),
            ],
        )
        super().__init__(
            device,
            services=[
                Service(sim_uuid(gatt.HEART_RATE_SERVICE), [measurement]),
                device_information,
            ],
            stream=measurement,
            name=name,
            battery_percent=battery_percent,
            advertising_interval_ms=advertising_interval_ms,
        )

    async def send(self, measurement: heart_rate.HeartRateMeasurement) -> bool:
        """Notify one measurement, encoded by the project's codec."""
        return await self.notify(heart_rate.encode(measurement))
