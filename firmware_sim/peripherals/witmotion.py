"""A WitMotion BWT901BLE5.0 IMU (SPEC 4.3) as its profile describes it, quirks included.

Service ``ffe5`` (on the vendor's ``…9a34fb`` base) notifies on ``ffe4`` a byte stream of
``55 61`` frames (built by ``monitor.core.codecs.witmotion``, or raw chunks exactly as given, so
split frames and junk reach the central unchanged). ``ffe9`` takes the vendor's 5-byte
``FF AA reg lo hi`` commands, with or without response; each is recorded, and any other write
with response is refused:

- ``FF AA 03 code 00`` sets the return rate (``0x06`` = 10 Hz, the default; ``0x08`` = 50 Hz;
  ``0x09`` = 100 Hz; the profile's ``rate_codes``). The sensor then sends that many data
  frames a second: played records made at ``source_rate_hz`` are thinned to the sensor's rate
  (every k-th data frame goes out), so a station that never sets the rate sees 10 Hz. A unit
  built with ``honours_rate_command=False`` records the command and stays at its rate (the
  station must notice).
- ``FF AA 27 reg 00`` reads registers: the answer is a ``55 71`` packet (``55 71 reg 00`` and
  eight i16 register values from ``reg``) in the same notification stream.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from bumble import att
from bumble.device import Connection, Device

from firmware_sim.devices import DEFAULT_FOR_KIND, DeviceProfile, builtin
from firmware_sim.peripherals.base import DEFAULT_ADVERTISING_INTERVAL_MS, SimPeripheral
from monitor.core.codecs import witmotion
from monitor.core.sensors import SensorKind

logger = logging.getLogger(__name__)

COMMAND_PREFIX = b"\xff\xaa"
COMMAND_SIZE = 5
REFUSED = att.ErrorCode.WRITE_REQUEST_REJECTED
"""ATT error for a write (with response) that is not a ``FF AA`` command."""
HEADER = 0x55
DATA = 0x61
REGISTERS = 0x71
FRAME_SIZE = 20
PACKET_TYPES = frozenset({DATA, REGISTERS})
_NOTIFICATION_BYTES = 20


class WitMotionSensor(SimPeripheral):
    """A simulated WitMotion BWT901BLE5.0."""

    kind = SensorKind.WITMOTION

    def __init__(
        self,
        device: Device,
        profile: DeviceProfile | None = None,
        *,
        name: str | None = None,
        source_rate_hz: float | None = None,
        honours_rate_command: bool | None = None,
        battery_percent: int | None = None,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        profile = profile or builtin(DEFAULT_FOR_KIND["witmotion"])
        quirks = profile.quirks
        self.rate_codes = {int(k): float(v) for k, v in quirks["rate_codes"].items()}
        self.rate_register = int(quirks["rate_register"])
        self.read_register = int(quirks["register_read"])
        self.rate_hz = float(profile.notify_rate_hz or 10)
        """The return rate the sensor runs at now."""
        self.source_rate_hz = source_rate_hz
        """The rate of the records it is given to play (None: send every frame given)."""
        self.honours_rate_command = (
            bool(quirks.get("honours_rate_command", True))
            if honours_rate_command is None
            else honours_rate_command
        )
        default_code = next(c for c, hz in self.rate_codes.items() if hz == self.rate_hz)
        self.registers: dict[int, int] = {self.rate_register: default_code}
        self.commands: list[bytes] = []
        """Every accepted ``FF AA`` command, in order."""
        self._buf = bytearray()
        self._frames = 0
        self._replies: set[asyncio.Task[bool]] = set()
        super().__init__(
            device,
            profile,
            writes={str(quirks["command"]): self._on_write},
            name=name,
            battery_percent=battery_percent,
            advertising_interval_ms=advertising_interval_ms,
        )

    async def send(self, *frames: witmotion.WitMotionFrame) -> bool:
        """Notify frames back to back in one notification, encoded by the project's codec."""
        return await self.notify(b"".join(witmotion.encode_frame(f) for f in frames))

    def keep_every(self) -> int:
        """One data frame in this many of the played records goes out at the current rate."""
        if self.source_rate_hz is None or self.rate_hz >= self.source_rate_hz:
            return 1
        return max(1, round(self.source_rate_hz / self.rate_hz))

    async def play(self, char: str, data: bytes) -> bool:
        """As :meth:`SimPeripheral.play`; stream bytes go out at the sensor's return rate."""
        if self.canonical(char) != self.stream_uuid:
            return await super().play(char, data)
        every = self.keep_every()
        if every == 1 and not self._buf:
            return await self.notify(data)
        out = self._thin(data, every)
        for i in range(0, len(out), _NOTIFICATION_BYTES):
            await self.notify(bytes(out[i : i + _NOTIFICATION_BYTES]))
        assert self.stream is not None
        return self.is_subscribed(self.stream)

    def _thin(self, data: bytes, every: int) -> bytearray:
        """Whole packets from the byte stream, every ``every``-th data frame kept; register
        replies and stray bytes pass; a partial packet waits for the rest."""
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while len(buf) - pos >= 2:
            if buf[pos] == HEADER and buf[pos + 1] in PACKET_TYPES:
                if len(buf) - pos < FRAME_SIZE:
                    break
                packet = buf[pos : pos + FRAME_SIZE]
                pos += FRAME_SIZE
                if packet[1] == DATA:
                    keep = self._frames % every == 0
                    self._frames += 1
                    if not keep:
                        continue
                out += packet
            else:
                out.append(buf[pos])
                pos += 1
        del buf[:pos]
        if every == 1:
            out += buf
            buf.clear()
        return out

    def register_reply(self, register: int) -> bytes:
        """The ``55 71`` packet answering a read of ``register``: eight registers from it."""
        values = [self.registers.get(register + i, 0) for i in range(8)]
        return bytes((HEADER, REGISTERS, register & 0xFF, register >> 8)) + struct.pack(
            "<8h", *values
        )

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        data = bytes(value)
        if len(data) != COMMAND_SIZE or not data.startswith(COMMAND_PREFIX):
            logger.info("%s: write %s refused: not an FF AA command", self.name, data.hex())
            raise att.ATT_Error(REFUSED, message=f"not an FF AA command: {data.hex()}")
        self.commands.append(data)
        register, low, high = data[2], data[3], data[4]
        if register == self.read_register:
            reply = self.register_reply(low)
            task = asyncio.get_running_loop().create_task(self.notify(reply))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)
        elif (
            register == self.rate_register and self.honours_rate_command and low in self.rate_codes
        ):
            self.rate_hz = self.rate_codes[low]
            self.registers[register] = low | high << 8
            logger.debug("%s: return rate %g Hz", self.name, self.rate_hz)
