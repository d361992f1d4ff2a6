"""The fan-out's send path: each message is encoded once for every client, and the bytes on
the wire are the ones FastAPI writes when each client's event is encoded on its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent

from dashboard.live import FanOut, Message, sse

DATA: dict[str, Any] = {
    "id": "angle.over_limit",
    "value": 47.25,
    "limit": float("nan"),
    "peak": float("inf"),
    "at": datetime(2026, 12, 2, 11, 30, tzinfo=UTC),
    "nested": {"list": [1, 2.5, None, "ünï", float("-inf")], "ok": True},
    "words": {"title": 'Angle "over" limit\n'},
}


def _wire(messages: list[Message]) -> bytes:
    app = FastAPI()

    @app.get("/s", response_class=EventSourceResponse)
    async def stream() -> AsyncIterator[ServerSentEvent]:
        for message in messages:
            yield sse(message)

    async def get() -> bytes:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/s")).content

    return asyncio.run(get())


def test_a_message_sent_to_many_clients_is_encoded_once_for_all() -> None:
    async def run() -> list[Message]:
        fan = FanOut()
        clients = [fan.connect() for _ in range(3)]
        fan._send(Message("alarm", DATA, 7))
        return [c.queue.get_nowait() for c in clients]

    got = asyncio.run(run())
    assert got[0].prepared is not None
    assert all(m.prepared is got[0].prepared for m in got)
    assert got[0].prepared.raw_data is not None


@pytest.mark.parametrize(("kind", "ident"), [("alarm", 7), ("state", None)])
def test_the_prepared_event_is_byte_identical_to_fastapis_own_encoding(
    kind: str, ident: int | None
) -> None:
    async def prepared() -> Message:
        fan = FanOut()
        client = fan.connect()
        fan._send(Message(kind, DATA, ident))
        return client.queue.get_nowait()

    sent = asyncio.run(prepared())
    assert sent.prepared is not None
    own = _wire([Message(kind, DATA, ident)])  # encoded by FastAPI, as before
    assert b'"limit": null' in own
    assert _wire([sent]) == own
