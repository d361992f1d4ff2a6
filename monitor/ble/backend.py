"""Which bleak backend the station uses: the platform's (production) or the simulator's.

The simulator's backend lives in ``firmware_sim`` and is imported only here, only when the
configuration says ``ble.backend = "sim"``: the production path never imports it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from monitor.settings import BleConfig


class BackendError(RuntimeError):
    """The configured backend cannot be opened; the message says what to fix."""


async def _nothing() -> None:
    return None


def _no_reason(_address: str) -> int | None:
    return None


@dataclass(frozen=True)
class BleBackend:
    """The classes bleak should use (None: the platform's own), how to close them, and how
    to ask why the last link to an address ended.

    ``disconnect_reason`` gives the HCI reason code when the stack reports one. bleak 3.x
    passes none to ``disconnected_callback`` on any platform, so the platform's answer is
    None; the virtual radio knows it.
    """

    scanner_class: type[BaseBleakScanner] | None = None
    client_class: type[BaseBleakClient] | None = None
    close: Callable[[], Awaitable[None]] = _nothing
    description: str = "platform Bluetooth"
    disconnect_reason: Callable[[str], int | None] = _no_reason


HUB = re.compile(r"^tcp-client:(?P<host>127\.0\.0\.1|localhost):(?P<port>\d{1,5})$")


async def open_backend(config: BleConfig) -> BleBackend:
    """The backend the configuration asks for. ``sim`` needs ``sim_hub`` here; in-process
    simulations build their backend themselves (see ``monitor.station.simrun``)."""
    if config.backend == "bleak":
        return BleBackend()
    if config.sim_hub is None:
        raise BackendError(
            "ble.backend = 'sim' needs ble.sim_hub, e.g. 'tcp-client:127.0.0.1:7100'"
        )
    match = HUB.match(config.sim_hub)
    if match is None:
        raise BackendError(
            f"ble.sim_hub {config.sim_hub!r}: expected tcp-client:127.0.0.1:PORT (loopback only)"
        )
    from firmware_sim.bleak_backend import SimBackend

    try:
        sim = await SimBackend.open_hub(int(match["port"]))
    except OSError as exc:
        raise BackendError(f"cannot reach the virtual radio at {config.sim_hub}: {exc}") from None
    return BleBackend(
        sim.scanner_class,
        sim.client_class,
        sim.close,
        f"virtual radio {config.sim_hub}",
        sim.disconnect_reason,
    )
