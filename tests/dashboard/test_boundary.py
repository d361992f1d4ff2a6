"""The HTTP boundary (dashboard/guard.py) in front of the station's app: size, type and Host
refused before any route or login check runs; safe 422s; security headers everywhere."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest

from dashboard.guard import MAX_BODY_BYTES, host_name
from tests.dashboard.conftest import Rig
from tests.dashboard.test_stream import login, serve

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

CHUNK = 64 * 1024


class Chunks:
    """A body streamed in chunks (no Content-Length), counting how many were pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.total // CHUNK):
            self.pulled += 1
            yield b"x" * CHUNK


async def test_a_declared_oversize_body_is_refused_before_the_login_check(rig: Rig) -> None:
    big = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"
    answer = await rig.app_client.post(
        "/api/alarms/silence", content=big, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413  # not 401: the body was never parsed


async def test_a_streamed_oversize_body_is_cut_off_at_the_limit(rig: Rig) -> None:
    body = Chunks(200 * 1024 * 1024)
    answer = await rig.app_client.post(
        "/api/alarms/silence", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert body.pulled <= MAX_BODY_BYTES // CHUNK + 1  # of 3200 chunks


async def test_a_bad_content_length_is_refused(rig: Rig) -> None:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    app = rig.app_client._transport.app  # type: ignore[attr-defined]
    for declared in ("\u00b2", "-1", "1e3", "9" * 40):  # a superscript two is a digit to str
        sent.clear()
        headers = [(b"content-length", declared.encode("latin-1")), (b"host", b"127.0.0.1")]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/alarms/silence",
            "headers": headers,
            "query_string": b"",
        }
        await app(scope, receive, send)
        assert sent[0]["status"] == 400, declared


async def test_writes_must_be_json(rig: Rig) -> None:
    owner = await rig.paired()
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        answer = await owner.post(
            "/api/alarms/silence", content=b"{}", headers={"Content-Type": media}
        )
        assert answer.status_code == 415, media
    assert (await owner.post("/api/alarms/silence", json={})).status_code == 200
    await owner.aclose()


async def test_an_unknown_host_is_refused(rig: Rig) -> None:
    for host in ("evil.example", "127.0.0.1.evil.example", ""):
        answer = await rig.app_client.get("/healthz", headers={"Host": host})
        assert answer.status_code == 421, host
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert (await rig.app_client.get("/healthz", headers={"Host": host})).status_code == 200
    assert host_name("[::1]:8000") == "::1"
    assert host_name("LocalHost:80") == "localhost"


async def test_every_answer_carries_the_security_headers(rig: Rig) -> None:
    owner = await rig.paired()
    answers = [
        await rig.app_client.get("/healthz"),
        await rig.app_client.get("/api/state"),  # 401
        await rig.app_client.get("/", headers={"Host": "evil.example"}),  # 421
        await owner.get("/api/sessions/99"),  # 404
        await owner.get("/"),
    ]
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    await owner.aclose()


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a\\ud800b"}',
        b'{"name": "anna", "age": NaN}',
        b'{"name": "anna", "age": 1e400}',
        b'{"name": "anna", "age": -Infinity}',
        b'{"\\ud800": 1, "name": "anna"}',
        b'{"name": "anna", "profile": "/dev/zero"}',
        b'{"name": "anna", "profile": "../../etc/passwd"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"name": ' + b"9" * 5000 + b"}",
    ],
)
async def test_bad_bodies_are_refused_and_never_echoed(rig: Rig, body: bytes) -> None:
    owner = await rig.paired()
    answer = await owner.post(
        "/api/users", content=body, headers={"Content-Type": "application/json"}
    )
    detail = answer.json()["detail"]
    if answer.status_code == 400:  # not JSON at all (too deep, too many digits)
        assert detail == "There was an error parsing the body"
    else:
        assert answer.status_code == 422, answer.text
        assert isinstance(detail, list)
        assert detail
        assert all(set(e) == {"loc", "msg", "type"} for e in detail)
    assert "input" not in answer.text
    assert "/dev/zero" not in answer.text
    json.dumps(detail, allow_nan=False).encode("utf-8")  # strict JSON, valid UTF-8
    await owner.aclose()


@pytest.mark.parametrize(
    "path",
    [
        "/api/sessions/99999999999999999999999999999999",
        "/api/sessions/-1",
        "/api/alarms/events?after=99999999999999999999999999",
        "/api/stream?after=99999999999999999999999999",
        "/api/sessions?limit=99999999999999999999999999",
        "/api/progress?user=anna&weeks=1e400",
    ],
)
async def test_huge_integers_are_refused_not_500(rig: Rig, path: str) -> None:
    owner = await rig.paired()
    answer = await owner.get(path)
    assert answer.status_code in (404, 422), answer.text
    await owner.aclose()


async def test_a_huge_last_event_id_is_ignored(rig: Rig) -> None:
    server, stop, task = await serve(rig)
    client = await login(server)
    headers = {"Last-Event-ID": "9" * 40}
    async with client.stream("GET", "/api/stream", headers=headers) as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("event:"):
                assert line == "event: state"
                break
    await client.aclose()
    stop.set()
    await task


async def test_with_lan_the_station_answers_to_its_lan_address_and_name(rig: Rig) -> None:
    from dashboard.server import DashboardConfig, DashboardServer, lan_address

    local = DashboardServer(rig.station, rig.store, "home", DashboardConfig(port=0))
    assert local.dashboard.hosts == frozenset({"127.0.0.1", "localhost", "::1"})
    lan = DashboardServer(rig.station, rig.store, "home", DashboardConfig(port=0, lan=True))
    assert lan_address() in lan.dashboard.hosts
    assert socket.gethostname().lower() in lan.dashboard.hosts
    assert "evil.example" not in lan.dashboard.hosts
