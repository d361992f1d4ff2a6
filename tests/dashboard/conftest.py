"""A station with a store and its dashboard app, driven through httpx (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio

from dashboard.app import Dashboard, create_app
from dashboard.auth import COOKIE, CSRF_HEADER, Access
from dashboard.live import LiveHub
from monitor.core.profiles import BUILTIN
from monitor.core.sensors import SensorKind, SensorSpec
from monitor.station.assembly import StationPlan, assemble
from monitor.station.flow import SessionFlow
from monitor.station.station import Station, StationClock
from monitor.store.station_store import Store


@dataclass
class Rig:
    station: Station
    store: Store
    access: Access
    live: LiveHub
    app_client: httpx.AsyncClient

    async def paired(self, role: str = "owner", name: str = "owner") -> httpx.AsyncClient:
        """A client logged in through a pairing token, with the CSRF header set."""
        token = self.access.new_pairing(role, name)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app_client._transport.app),  # type: ignore[attr-defined]
            base_url="http://127.0.0.1",
        )
        response = await client.get(f"/pair?token={token}")
        assert response.status_code == 303, response.text
        assert COOKIE in response.cookies
        client.cookies.set(COOKIE, response.cookies[COOKIE])
        me = (await client.get("/api/me")).json()
        client.headers[CSRF_HEADER] = me["csrf"]
        return client


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sensors = {"tilt": SensorSpec(SensorKind.SPOTTER_TILT), "hr": SensorSpec(SensorKind.HEART_RATE)}
    plan = StationPlan("home", sensors, BUILTIN["beginner"], tmp_path / "spotter.db")
    parts = await assemble(plan, StationClock())
    station, store = parts.station, parts.store
    access = Access(store, "home")
    live = LiveHub(station, store, "home")
    station.sinks.append(live)
    app = create_app(Dashboard(station, SessionFlow(store, "home"), live, access, "home", {}))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
    try:
        yield Rig(station, store, access, live, client)
    finally:
        await client.aclose()
        await asyncio.sleep(0)
        await parts.aclose()
