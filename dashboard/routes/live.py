"""The station's state and its live stream (server-sent events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from dashboard.guard import MAX_ID
from dashboard.live import Message, next_message, sse
from dashboard.routes.deps import (
    Dashboard,
    Reader,
)


def routes(d: Dashboard) -> APIRouter:
    """The live routes over ``d``."""
    router = APIRouter()

    @router.get("/api/state", tags=["station"])
    async def state(who: Reader) -> dict[str, Any]:
        """Phase, theta, heart rate, timers against limits, sensors, listed alarms."""
        return d.live.state()

    @router.get("/api/stream", tags=["station"], response_class=EventSourceResponse)
    async def stream(
        request: Request,
        who: Reader,
        after: Annotated[
            int | None, Query(ge=0, le=MAX_ID, description="Resume after this alarm seq.")
        ] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: ``alarm`` (id = the store's sequence number; reconnect with
        Last-Event-ID to catch up, none missed or twice) and ``state`` every second."""
        last = request.headers.get("last-event-id")
        header = int(last) if last and last.isdigit() and len(last) <= 15 else None
        # A browser's own reconnect of a stream opened with ?after=N sends Last-Event-ID too:
        # the later of the two is where this client really is.
        known = [n for n in (after, header) if n is not None]
        resume = max(known) if known else None
        client = d.live.connect()
        # The catch-up reads the store, which may already hold events whose commit callback
        # has not reached the fan-out yet: they then arrive on the queue too. Each alarm goes
        # out once, by its sequence number.
        sent = resume or 0
        try:
            if resume is not None:
                for missed in d.live.catch_up(resume):
                    sent = missed.id or sent
                    yield sse(missed)
            yield sse(Message("state", d.live.state()))
            while not client.dropped.is_set():
                message = await next_message(client)
                if message is not None and message.id is not None:
                    if message.id <= sent:
                        continue
                    sent = message.id
                if message is not None:
                    yield sse(message)
                elif await request.is_disconnected():
                    return
        finally:
            d.live.disconnect(client)

    return router
