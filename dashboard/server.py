"""Serving the dashboard from inside the station's event loop (uvicorn), and the pairing URL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from dashboard.app import Dashboard, create_app
from dashboard.auth import Access
from dashboard.guard import allowed_hosts
from dashboard.live import LiveHub
from monitor.flow import SessionFlow
from monitor.station import Station
from monitor.store import Store

log = logging.getLogger(__name__)
LOCALHOST = "127.0.0.1"


@dataclass
class DashboardConfig:
    """Where the dashboard listens."""

    host: str = LOCALHOST
    port: int = 8000
    lan: bool = False


def lan_address() -> str:
    """This machine's address on the local network (for the phone's pairing URL)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address: str = probe.getsockname()[0]
        except OSError:
            address = LOCALHOST
    return address


class _QuietServer(uvicorn.Server):
    """uvicorn inside the station's loop: the station owns SIGINT and SIGTERM, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DashboardServer:
    """The dashboard of one station: app, live hub, access; started beside the station."""

    def __init__(
        self,
        station: Station,
        store: Store,
        name: str,
        config: DashboardConfig,
        config_summary: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        # the station's writer: a login or a screening never holds the safety loop on the disk
        writer = None if station.journal is None else station.journal.writer
        self.access = Access(store, name, writer=writer)
        self.live = LiveHub(station, store, name)
        station.sinks.append(self.live)
        # with --lan the phone names this machine by its LAN address (or host name)
        extra = (lan_address(), socket.gethostname()) if config.lan else (config.host,)
        self.dashboard = Dashboard(
            station,
            SessionFlow(store, name, writer),
            self.live,
            self.access,
            name,
            config_summary or {},
            hosts=allowed_hosts(extra),
        )
        self.app = create_app(self.dashboard)
        host = "0.0.0.0" if config.lan else config.host  # the LAN mode asks for every interface
        self._server = _QuietServer(
            uvicorn.Config(
                self.app,
                host=host,
                port=config.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self.port = config.port
        self.ready = asyncio.Event()
        """Set once the server listens (``port`` is then the real one)."""

    def pairing_url(self, role: str = "owner", name: str = "owner") -> str:
        """A one-time URL that pairs a browser with this station."""
        token = self.access.new_pairing(role, name)
        host = lan_address() if self.config.lan else LOCALHOST
        return f"http://{host}:{self.port}/pair?token={token}"

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind: that must not stop the station
            host = self._server.config.host
            raise OSError(f"cannot listen on {host}:{self.config.port} (in use?)") from None

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set. Raises OSError if the port cannot be had."""
        serving = asyncio.create_task(self._serve())
        while not self._server.started:
            if serving.done():
                serving.result()  # e.g. the port is taken: let the error out
                return
            await asyncio.sleep(0.02)
        for server in self._server.servers:
            for sock in server.sockets:
                self.port = sock.getsockname()[1]
                break
        self.ready.set()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        self._server.should_exit = True
        stopping.cancel()
        await serving
