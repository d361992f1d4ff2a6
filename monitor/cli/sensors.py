"""``spotter sensors``: what a device is and how to describe it (``capture``), and the
in-process virtual radio with one simulated device per shipped profile that ``spotter scan
--sim`` and ``spotter sensors capture --sim`` look at.

``firmware_sim`` is imported inside the commands only (it is the simulator, and the profile
format's home), so ``spotter --help`` and the station never load it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from monitor.cli.common import SimHub, SimRadio, fail

if TYPE_CHECKING:
    from monitor.ble.backend import BleBackend

sensors_app = typer.Typer(
    help="Sensors: capture a device's GATT table as a profile.", no_args_is_help=True
)
_T = TypeVar("_T")


@contextlib.asynccontextmanager
async def sim_devices() -> AsyncIterator[BleBackend]:
    """An in-process virtual radio with one simulated device per shipped profile (numbered in
    the profiles' name order, so addresses are the same on every run), and a bleak backend on
    it."""
    from firmware_sim.bleak_backend import SimBackend
    from firmware_sim.devices import builtin_profiles
    from firmware_sim.peripherals import peripheral_from_profile
    from firmware_sim.radio import Radio
    from monitor.ble.backend import BleBackend

    async with Radio() as radio, contextlib.AsyncExitStack() as stack:
        for name, profile in builtin_profiles().items():
            peripheral = peripheral_from_profile(profile, radio.add_device(name))
            await peripheral.start()
            stack.push_async_callback(peripheral.close)
        sim = await SimBackend.on_radio(radio)
        stack.push_async_callback(sim.close)
        yield BleBackend(
            sim.scanner_class, sim.client_class, description="in-process virtual radio"
        )


def run_on(sim: bool, hub: int | None, work: Callable[[BleBackend], Awaitable[_T]]) -> _T:
    """Run ``work`` on the adapter, a hub's virtual radio, or an in-process one."""

    import asyncio

    from monitor.ble.backend import BleBackend

    async def on_hub(port: int) -> _T:
        from firmware_sim.bleak_backend import SimBackend

        backend = await SimBackend.open_hub(port)
        try:
            return await work(BleBackend(backend.scanner_class, backend.client_class))
        finally:
            await backend.close()

    async def in_process() -> _T:
        async with sim_devices() as backend:
            return await work(backend)

    async def on_adapter() -> _T:
        return await work(BleBackend())

    if not sim:
        return asyncio.run(on_adapter())
    if hub is not None:
        return asyncio.run(on_hub(hub))
    return asyncio.run(in_process())


@sensors_app.command("capture")
def capture_command(
    address: Annotated[str, typer.Argument(help="The device's address (spotter scan lists it).")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Profile file to write ('-' = standard output).")
    ] = "-",
    sim: SimRadio = False,
    hub: SimHub = None,
    timeout: Annotated[float, typer.Option(min=0.5, help="Seconds to look for it.")] = 10.0,
) -> None:
    """Read a device's GATT table (services, characteristics, properties, descriptors,
    readable values) and write it as a device profile (firmware_sim/devices format)."""
    from firmware_sim.devices import ProfileError, parse_profile, render_profile
    from monitor.ble.capture import CaptureError, capture
    from monitor.ble.link import LINK_ERRORS, describe

    try:
        captured = run_on(sim, hub, lambda backend: capture(backend, address, timeout))
    except CaptureError as exc:
        raise fail("sensors capture", str(exc), 1) from None
    except LINK_ERRORS as exc:
        raise fail("sensors capture", f"Bluetooth is not available: {describe(exc)}", 1) from None
    try:
        profile = parse_profile(captured.profile_data(), f"capture of {address}")
    except ProfileError as exc:  # a device whose table breaks the format: say so, loudly
        raise fail("sensors capture", str(exc), 1) from None
    failed = [
        f"{c.uuid}: {c.read_error}" for _, chars in captured.services for c in chars if c.read_error
    ]
    header = [
        f"Captured by `spotter sensors capture {address}` on "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}"
        + (" (virtual radio)" if sim else "")
        + ".",
        "Before contributing: name the model and vendor, add the sources that confirm what",
        "this capture cannot know (notification rate, quirks), and replace serial numbers.",
        *(f"Read failed: {line}" for line in failed),
    ]
    text = render_profile(profile, header)
    if output == "-":
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail("sensors capture", f"{output}: {exc.strerror or exc}") from None
    print(f"spotter sensors capture: wrote {output}", file=sys.stderr)
