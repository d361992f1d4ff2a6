"""A heart-rate strap built from a device profile (Polar H10, a basic strap, a dual ANT+/BLE
strap, or a captured one): Heart Rate 0x180D and whatever else the model serves.

The strap notifies Heart Rate Measurement (0x2A37) payloads built by
``monitor.core.codecs.heart_rate``, so every flag bit is the caller's choice (bumble's own helper
picks the format and trims RR lists itself); :meth:`HeartRateStrap.typical` builds the
measurement this model sends (its contact bits, RR intervals, energy expended now and then).

A dual ANT+/BLE strap accepts one BLE central and does not advertise while a phone or watch
holds its link: :meth:`HeartRateStrap.connect_phone` stands for that phone.
"""

from __future__ import annotations

from bumble.device import Device

from firmware_sim.devices import DEFAULT_FOR_KIND, DeviceProfile, builtin
from firmware_sim.peripherals.base import DEFAULT_ADVERTISING_INTERVAL_MS, SimPeripheral
from monitor.core.codecs import heart_rate
from monitor.core.codecs.heart_rate import Contact
from monitor.core.sensors import SensorKind

_CONTACT = {
    "supported": Contact.DETECTED,
    "not supported": Contact.UNSUPPORTED,
    "not reported": Contact.UNSUPPORTED,
}


class PhoneBusyError(RuntimeError):
    """A phone cannot take a strap that is already connected to a central."""


class HeartRateStrap(SimPeripheral):
    """A simulated chest strap."""

    kind = SensorKind.HEART_RATE

    def __init__(
        self,
        device: Device,
        profile: DeviceProfile | None = None,
        *,
        name: str | None = None,
        battery_percent: int | None = None,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        super().__init__(
            device,
            profile or builtin(DEFAULT_FOR_KIND["heart_rate"]),
            name=name,
            battery_percent=battery_percent,
            advertising_interval_ms=advertising_interval_ms,
        )
        self.phone_connected = False
        self._sent = 0
        self._energy_kj = 0

    async def send(self, measurement: heart_rate.HeartRateMeasurement) -> bool:
        """Notify one measurement, encoded by the project's codec."""
        return await self.notify(heart_rate.encode(measurement))

    def typical(self, bpm: int) -> heart_rate.HeartRateMeasurement:
        """The measurement this model sends for ``bpm``: its contact bits, an RR interval if
        it reports them, and energy expended every ``energy_expended_every`` readings if its
        profile says it sends that (the SIG spec suggests about one in ten)."""
        quirks = self.profile.quirks
        self._sent += 1
        contact = _CONTACT.get(str(quirks.get("contact", "not supported")), Contact.UNSUPPORTED)
        rr = (round(60.0 / bpm * 1024) / 1024,) if quirks.get("rr_intervals") and bpm > 0 else ()
        energy: int | None = None
        every = quirks.get("energy_expended_every")
        if isinstance(every, int) and every > 0:
            self._energy_kj += 1
            if self._sent % every == 0:
                energy = self._energy_kj
        return heart_rate.HeartRateMeasurement(
            bpm, contact=contact, energy_kj=energy, rr_s=rr, rr_present=bool(rr)
        )

    async def connect_phone(self) -> None:
        """A phone or watch takes the strap's one BLE link: it stops advertising, so no other
        central finds it until :meth:`disconnect_phone`."""
        if self.connections:
            raise PhoneBusyError(f"{self.name} is already connected to a central")
        self.phone_connected = True
        await self.device.stop_advertising()

    async def disconnect_phone(self) -> None:
        """The phone lets go: the strap advertises again (if it is online)."""
        self.phone_connected = False
        if self.online and not self.connections:
            await self._advertise()

    async def go_online(self) -> None:
        """Advertise (again) unless a central or a phone holds the link."""
        if self.phone_connected:
            self._online = True
            return
        await super().go_online()

    async def _advertise_again(self) -> None:
        if self.phone_connected:
            self._restart = None
            return
        await super()._advertise_again()
