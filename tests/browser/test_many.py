"""Fifty phones on one station, one of them stalled, plus a client that opens the stream and
never reads: the others still get every alarm event, none twice, in order."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from dashboard.auth import COOKIE
from monitor.bench.harness import SimDaemon, more_pairings
from tests.browser.rig import (
    HANG_GUARD_S,
    LOAD_MADE,
    stored_events,
    wait_until_in_step,
    wait_until_shown,
)

pytestmark = pytest.mark.browser

PAGES = 50
SWINGS = 4


@contextmanager
def never_reading(port: int, cookie: str) -> Iterator[socket.socket]:
    """A client that opens /api/stream with a tiny receive buffer and never reads it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    try:
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: {COOKIE}={cookie}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        yield sock
    finally:
        sock.close()


@pytest.mark.timeout(
    300
)  # a hang guard only: opening 50 pages takes minutes on a loaded 2-core machine
def test_fifty_pages_one_stalled_the_others_get_every_event(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    swing_scenario: Path,
) -> None:
    daemon = station(swing_scenario, speed=2)
    owner_context, owner = dashboard(daemon.url)
    pages = [owner] + [
        dashboard(url)[1] for url in more_pairings(owner, daemon.base_url, PAGES - 1)
    ]
    assert all(p.get_attribute("body", "data-role") == "viewer" for p in pages[1:])
    assert pages[1].is_hidden("#stop"), "a viewer cannot press STOP or acknowledge"
    cookie = next(c["value"] for c in owner_context.cookies() if c["name"] == COOKIE)

    stalled = pages[-1]
    debugger = stalled.context.new_cdp_session(stalled)
    paused: list[object] = []
    debugger.on("Debugger.paused", lambda params: paused.append(params))
    debugger.send("Debugger.enable")
    debugger.send("Debugger.pause")  # its script stops at the next timer or stream message
    with never_reading(daemon.port, cookie):
        daemon.wait_for(
            lambda e: e["id"] == "angle.over_limit" and e["event"] == "resolved",
            timeout_s=HANG_GUARD_S,
            count=SWINGS,
        )
        live = pages[:-1]
        # What the store holds now; the station goes on swinging while the 49 pages are read
        # (on a loaded machine, for a while), so each page must begin with exactly these.
        expected = stored_events(daemon)
        assert len(expected) >= 3 * SWINGS
        assert {e["id"] for e in expected} - LOAD_MADE == {"angle.over_limit"}
        for page in live:
            assert wait_until_shown(page, expected) == expected
            assert page.evaluate("window.spotter.stream.log.duplicates") == 0
        assert paused, "the stalled page's script was paused all along"
        debugger.send("Debugger.resume")
        wait_until_in_step(stalled, daemon)  # it catches up: every event, once, in order
