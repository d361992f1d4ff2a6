"""The stations: the snapshot, the live stream, and acknowledging or silencing an alarm."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import Field

from dashboard.clinic.routes.deps import Actor, Name, Who, problem
from dashboard.guard import StrictBody
from dashboard.live import Message, next_message, sse

if TYPE_CHECKING:
    from dashboard.clinic.service import Hub


class SilenceBody(StrictBody):
    alarm: str | None = Field(default=None, max_length=64)


def reachable(hub: Hub, station: str, what: str) -> None:
    """Refuse (409, with the reason) a command for a station that is away: a station keeps
    no command sent while it is offline, so it would be lost without a word."""
    view = hub.core.stations[station]
    if view.status == "online" and "link.lost" not in view.alarms.alarms:
        return
    raise problem(
        409,
        f"{station} is offline: the {what} cannot reach it now (a station gets no command "
        "sent while it is away). Act at the station, or here once it is back online.",
    )


def routes(hub: Hub) -> APIRouter:
    """The station routes."""
    router = APIRouter()

    @router.get("/hub/api/snapshot", tags=["stations"])
    async def snapshot(who: Who) -> dict[str, Any]:
        """Every station as a tile, the merged alarm list, open escalations."""
        return hub.snapshot()

    @router.get("/hub/api/stream", tags=["stations"], response_class=EventSourceResponse)
    async def stream(request: Request, who: Who) -> AsyncIterator[ServerSentEvent]:
        """``snapshot`` four times a second and every ``event`` (alarm events of the stations
        and of the hub, command replies); reconnect with Last-Event-ID to catch up."""
        last = request.headers.get("last-event-id")
        client = hub.connect()
        try:
            if last and last.isdigit() and len(last) <= 15:
                for missed in hub.events[int(last) :]:
                    yield sse(missed)
            yield sse(Message("snapshot", hub.snapshot()))
            while not client.dropped.is_set():
                message = await next_message(client)
                if message is not None:
                    yield sse(message)
                elif await request.is_disconnected():
                    return
        finally:
            hub.disconnect(client)

    @router.post("/hub/api/stations/{station}/alarms/{alarm}/acknowledge", tags=["alarms"])
    async def acknowledge(station: Name, alarm: Name, who: Actor) -> dict[str, Any]:
        """Acknowledge at the station (mirrored there), or the hub's own link.lost here."""
        if station not in hub.core.stations:
            raise problem(404, f"no station {station!r}")
        if alarm == "link.lost" and hub.acknowledge(station, who["name"]):
            return {"ok": True, "where": "hub"}
        reachable(hub, station, "acknowledgement")
        try:
            command = await hub.command(station, "acknowledge", alarm, who["name"])
        except (ConnectionError, ValueError) as exc:
            raise problem(503, str(exc)) from None
        return {"ok": True, "where": "station", "command": command}

    @router.post("/hub/api/stations/{station}/silence", tags=["alarms"])
    async def silence(station: Name, body: SilenceBody, who: Actor) -> dict[str, Any]:
        """Pause the station's sound for one alarm or all, for the silence period."""
        if station not in hub.core.stations:
            raise problem(404, f"no station {station!r}")
        reachable(hub, station, "silence")
        try:
            command = await hub.command(station, "silence", body.alarm, who["name"])
        except (ConnectionError, ValueError) as exc:
            raise problem(503, str(exc)) from None
        return {"ok": True, "command": command}

    return router
