"""The live stream over a real HTTP server: heartbeat, ids, catch-up, a stalled client."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from dashboard.auth import COOKIE
from dashboard.live import QUEUE_SIZE, FanOut, next_message
from dashboard.server import DashboardConfig, DashboardServer
from monitor.core.alarms import AlarmEvent, EventKind, Priority
from monitor.core.trace import InputKind
from tests.dashboard.conftest import Rig

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def serve(rig: Rig) -> tuple[DashboardServer, asyncio.Event, asyncio.Task[None]]:
    server = DashboardServer(rig.station, rig.store, "home", DashboardConfig(port=0))
    stop = asyncio.Event()
    task = asyncio.create_task(server.serve(stop))
    await asyncio.wait_for(server.ready.wait(), 10)
    return server, stop, task


async def login(server: DashboardServer) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    token = server.access.new_pairing("owner", "anna")
    paired = await client.get(f"/pair?token={token}")
    client.cookies.set(COOKIE, paired.cookies[COOKIE])
    return client


async def sse(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> AsyncIterator[dict]:
    """Parsed server-sent events."""
    async with client.stream("GET", "/api/stream", headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        message: dict = {}
        async for line in response.aiter_lines():
            if not line:
                if message:
                    yield message
                message = {}
                continue
            field, _, value = line.partition(": ")
            message[field] = json.loads(value) if field == "data" else value


async def ticking(rig: Rig, stop: asyncio.Event) -> None:
    while not stop.is_set():
        rig.station.tick()
        await asyncio.sleep(0.1)


async def test_heartbeat_every_second_and_alarms_with_their_sequence_ids(rig: Rig) -> None:
    server, stop, task = await serve(rig)
    ticker = asyncio.create_task(ticking(rig, stop))
    client = await login(server)
    try:
        seen: list[dict] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        async for message in sse(client):
            seen.append(message)
            if len([m for m in seen if m["event"] == "state"]) == 1:
                rig.station.user_input(InputKind.SYMPTOM)
            if len([m for m in seen if m["event"] == "state"]) >= 4:
                break
        elapsed = loop.time() - started
        states = [m for m in seen if m["event"] == "state"]
        alarms = [m for m in seen if m["event"] == "alarm"]
        assert elapsed < 6  # four heartbeats, about a second apart
        assert alarms[0]["id"] == "1"
        assert alarms[0]["data"]["id"] == "user.symptom"
        assert alarms[0]["data"]["seq"] == 1
        assert states[-1]["data"]["alarms"][0]["id"] == "user.symptom"
    finally:
        stop.set()
        await client.aclose()
        await task
        await ticker


async def test_reconnecting_with_last_event_id_catches_up_without_duplicates(rig: Rig) -> None:
    server, stop, task = await serve(rig)
    client = await login(server)
    try:
        rig.station.user_input(InputKind.SYMPTOM)  # seq 1 raised, 2 cleared (not inverted)
        rig.station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "tom")  # 3, 4
        got: list[int] = []
        async for message in sse(client, {"Last-Event-ID": "2"}):
            if message["event"] == "alarm":
                got.append(message["data"]["seq"])
            if message["event"] == "state":
                break
        assert got == [3, 4]
    finally:
        stop.set()
        await client.aclose()
        await task


async def test_an_event_committed_before_its_callback_reaches_a_catching_up_client_once(
    rig: Rig,
) -> None:
    """The store writer commits in its own thread and tells the fan-out afterwards: a client
    catching up in between reads the event from the store and then sees it on its queue too.
    It must go out once."""
    server, stop, task = await serve(rig)
    client = await login(server)
    try:
        event = AlarmEvent(1.0, "user.symptom", Priority.HIGH, EventKind.RAISED, 0, 0, "help")
        # committed, but the commit callback (LiveHub.alarm_events) has not run yet
        (seq,) = rig.store.commit_events("home", None, [event])
        got: list[int] = []
        async for message in sse(client, {"Last-Event-ID": "0"}):
            if message["event"] == "state" and not got:
                pytest.fail("the catch-up did not carry the committed event")
            if message["event"] == "state":
                server.live.alarm_events([event])  # now the callback arrives: seq again
                rig.station.user_input(InputKind.SYMPTOM)  # and a newer event after it
            if message["event"] == "alarm":
                got.append(message["data"]["seq"])
                if message["data"]["seq"] > seq:
                    break
        assert got == [seq, seq + 1]
    finally:
        stop.set()
        await client.aclose()
        await task


async def test_a_stalled_client_does_not_hold_up_the_others(rig: Rig) -> None:
    server, stop, task = await serve(rig)
    reader = await login(server)
    token = server.access.new_pairing("viewer", "stalled")
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        pairing = await reader.get(f"/pair?token={token}")  # a second cookie, for the raw client
        cookie = pairing.cookies[COOKIE]
        raw.sendall(
            f"GET /api/stream HTTP/1.1\r\nHost: x\r\nCookie: {COOKIE}={cookie}\r\n\r\n".encode()
        )
        await asyncio.sleep(0.5)  # it is connected, and never reads another byte
        got: list[int] = []
        rounds = QUEUE_SIZE + 8  # more events than the stalled client's queue holds

        async def produce() -> None:
            for _ in range(rounds // 4):
                rig.station.user_input(InputKind.SYMPTOM)
                rig.station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "x")
                await asyncio.sleep(0.005)

        producing: asyncio.Task[None] | None = None
        while len(got) < rounds:  # as a browser does: reconnect with Last-Event-ID if cut off
            headers = {"Last-Event-ID": str(got[-1])} if got else None
            async for message in sse(reader, headers):
                if producing is None:
                    producing = asyncio.create_task(produce())
                if message["event"] == "alarm":
                    got.append(message["data"]["seq"])
                    if len(got) == rounds:
                        break
        assert producing is not None
        await producing
        assert got == list(range(1, rounds + 1))  # every event, in order, none twice
    finally:
        raw.close()
        stop.set()
        await reader.aclose()
        await task


async def test_a_client_whose_queue_fills_is_cut_off_and_the_rest_get_everything(rig: Rig) -> None:
    clients = [rig.live.connect() for _ in range(10)]
    stalled = clients[0]
    got: dict[int, list[int]] = {i: [] for i in range(1, 10)}
    for _ in range(QUEUE_SIZE // 2 + 10):
        rig.station.user_input(InputKind.SYMPTOM)
        rig.station.user_input(InputKind.ACKNOWLEDGE, "user.symptom", "x")
        for i in range(1, 10):  # the nine others keep up; the first never reads
            queue = clients[i].queue
            while not queue.empty():
                message = queue.get_nowait()
                if message.kind == "alarm":
                    got[i].append(message.data["seq"])
    assert stalled.dropped.is_set()
    assert rig.live.dropped == 1
    last = rig.live.last_seq
    for i in range(1, 10):
        assert got[i] == list(range(1, last + 1))
    # the cut-off client catches up from the store when it reconnects
    assert [m.id for m in rig.live.catch_up(5)][:3] == [6, 7, 8]


async def test_a_client_that_hangs_up_leaves_no_task_behind() -> None:
    """The wait of a stream (station or hub page) is cancelled when the client goes: its inner
    wait is cancelled and awaited, none left pending to be destroyed later."""
    fan = FanOut()
    client = fan.connect()
    before = asyncio.all_tasks()
    waiting = asyncio.create_task(next_message(client))
    await asyncio.sleep(0)  # it is inside its wait now
    # the wait, and on Python 3.11 the inner task asyncio.wait_for makes for the queue's get
    assert len(asyncio.all_tasks() - before) in {1, 2}
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert asyncio.all_tasks() - before == set()
    fan.disconnect(client)
