"""Serving the dashboard from inside the station's event loop (uvicorn), over HTTPS when it
has a certificate (dashboard/tls.py), and the pairing URL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Response

from dashboard.app import Dashboard, create_app
from dashboard.auth import Access
from dashboard.guard import allowed_hosts
from dashboard.live import LiveHub
from dashboard.tls import TlsFiles, station_tls, user_tls
from monitor.station.flow import SessionFlow
from monitor.station.station import Station
from monitor.store.station_store import Store
from monitor.supervise import cancel_and_wait

log = logging.getLogger(__name__)
LOCALHOST = "127.0.0.1"
CA_PATH = "/ca.crt"
"""Where the station's CA certificate is served for phones to download (no login: public)."""
PLAIN_HTTP_WARNING = (
    "dashboard on the LAN over plain HTTP: the session cookie and pairing links can be read "
    "by anyone on the network (tls = false / --insecure-http); drop that to serve HTTPS"
)


@dataclass
class DashboardConfig:
    """Where the dashboard listens."""

    host: str = LOCALHOST
    port: int = 8000
    lan: bool = False
    tls: TlsFiles | None = None
    """Serve HTTPS with these files; None: plain HTTP (said loudly when ``lan``)."""

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "http" if self.tls is None else "https"

    @property
    def plain_on_lan(self) -> bool:
        """Cookies and pairing tokens would cross the LAN in clear text."""
        return self.lan and self.tls is None


def lan_address() -> str:
    """This machine's address on the local network (for the phone's pairing URL)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address: str = probe.getsockname()[0]
        except OSError:
            address = LOCALHOST
    return address


def choose_tls(
    *,
    lan: bool,
    tls: bool,
    cert_file: Path | None,
    key_file: Path | None,
    data_dir: Path,
    station: str,
) -> TlsFiles | None:
    """What the dashboard serves HTTPS with, if anything (blocking: call before the loop).

    A certificate the user gives is used on any interface. Otherwise the LAN gets HTTPS with
    the station's own CA unless ``tls`` is off; 127.0.0.1 stays plain HTTP (loopback never
    leaves the machine, and browsers treat it as a secure origin). Raises TlsError.
    """
    if not tls:
        return None
    if cert_file is not None and key_file is not None:
        return user_tls(cert_file.expanduser(), key_file.expanduser())
    if not lan:
        return None
    now = datetime.datetime.now(datetime.UTC)
    files, refused = station_tls(data_dir, station, socket.gethostname(), [lan_address()], now)
    if refused:
        log.warning(
            "dashboard certificate: the station's CA may not vouch for %s (made for another "
            "host name or a private network); reach the station by another address, or delete "
            "%s/%s to make a new CA",
            ", ".join(refused),
            data_dir,
            "tls",
        )
    return files


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
        ca_pem = config.tls.ca_pem if config.tls is not None else None
        summary = {
            **(config_summary or {}),
            "https": config.tls is not None,
            "plain_http_on_lan": config.plain_on_lan,
            "ca_url": CA_PATH if ca_pem is not None else None,
        }
        self.dashboard = Dashboard(
            station,
            SessionFlow(store, name, writer),
            self.live,
            self.access,
            name,
            summary,
            hosts=allowed_hosts(extra),
        )
        self.app = create_app(self.dashboard)
        if ca_pem is not None:
            self._serve_ca(ca_pem, name)
        if config.plain_on_lan:
            log.warning(PLAIN_HTTP_WARNING)
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
                ssl_certfile=config.tls.cert_file if config.tls is not None else None,
                ssl_keyfile=config.tls.key_file if config.tls is not None else None,
            )
        )
        self.port = config.port
        self.ready = asyncio.Event()
        """Set once the server listens (``port`` is then the real one)."""

    def _serve_ca(self, ca_pem: bytes, name: str) -> None:
        """``GET /ca.crt``: the station's CA for a phone to install (see docs/lan-https.md)."""
        filename = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)

        async def ca_certificate() -> Response:
            """The station's CA certificate (PEM): install it on a phone to trust the
            dashboard's HTTPS. Public, like any certificate; compare its fingerprint."""
            return Response(
                ca_pem,
                media_type="application/x-x509-ca-cert",
                headers={
                    "Content-Disposition": f'attachment; filename="spotter-{filename}-ca.crt"',
                    "Cache-Control": "no-store",
                },
            )

        self.app.add_api_route(CA_PATH, ca_certificate, methods=["GET"], tags=["access"])

    def base_url(self) -> str:
        """``https://ADDRESS:PORT`` (or http), with the LAN address in LAN mode."""
        host = lan_address() if self.config.lan else LOCALHOST
        return f"{self.config.scheme}://{host}:{self.port}"

    def pairing_url(self, role: str = "owner", name: str = "owner") -> str:
        """A one-time URL that pairs a browser with this station."""
        token = self.access.new_pairing(role, name)
        return f"{self.base_url()}/pair?token={token}"

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
        await cancel_and_wait(stopping)
        await serving
