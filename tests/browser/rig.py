"""Helpers of the browser tests: the store seen from outside, the page's event log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from monitor.bench.harness import SimDaemon, event_log
from monitor.store.station_store import Store

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "dashboard" / "static"
ARTIFACTS = REPO / "test-artifacts"
HOLD_PROFILE = {"base": "beginner", "max_hold_s": 5}
"""Holds of 5 s: the hold alarm comes 5 s after the user is inverted, high at 10 s."""
HANG_GUARD_S = 90.0
"""How long a browser test waits for anything before it fails as hung. Only a guard: what a
test judges is the order of events and the station's clock, never how fast this machine is
(the suite must pass while other processes keep both cores busy)."""
LOAD_MADE = frozenset({"tilt.signal_lost", "hr.signal_lost"})
"""Alarms a loaded machine can add to a simulated run: at speed 2 a station loop held up for
a second sees a simulated sensor silent for 2 s of its clock (the replay of its trace agrees)."""


def stored_events(daemon: SimDaemon) -> list[dict[str, Any]]:
    """The station's committed alarm events (seq, id, event), read through its Store."""
    store = Store.open(daemon.store_path, migrate=False)
    try:
        return [
            {"seq": e.seq, "id": e.event.id, "event": e.event.event.value}
            for e in store.events_since(0, limit=1_000_000)
        ]
    finally:
        store.close()


def stored_actions(daemon: SimDaemon) -> list[dict[str, Any]]:
    """Who acknowledged, silenced, pressed STOP: the store's actions."""
    store = Store.open(daemon.store_path, migrate=False)
    try:
        return store.actions()
    finally:
        store.close()


def page_events(page: Page) -> list[dict[str, Any]]:
    """The page's event log as (seq, id, event)."""
    return [{k: e[k] for k in ("seq", "id", "event")} for e in event_log(page)]


def wait_for_js(page: Page, expression: str, timeout_s: float = HANG_GUARD_S) -> None:
    """Wait until ``expression`` is truthy in the page. Playwright's ``wait_for_function``
    builds its predicate with ``eval``, which the dashboard's CSP (script-src 'self') refuses;
    ``evaluate`` goes through the DevTools protocol, which the CSP does not govern."""
    waited_ms = 0.0
    while not page.evaluate(expression):
        if waited_ms >= timeout_s * 1000:
            pytest.fail(f"{expression!r} still false after {timeout_s} s")
        page.wait_for_timeout(100)
        waited_ms += 100


def wait_until_shown(
    page: Page, expected: list[dict[str, Any]], timeout_s: float = HANG_GUARD_S
) -> list[dict[str, Any]]:
    """Wait until the page's event log holds at least as many events as ``expected`` (events
    the store had at one moment; the station goes on making more meanwhile), then return the
    log's first ``len(expected)`` events, for the caller to compare."""
    waited_ms = 0.0
    while len(got := page_events(page)) < len(expected):
        if waited_ms >= timeout_s * 1000:
            pytest.fail(
                f"the page shows {len(got)} events after {timeout_s} s, the store had "
                f"{len(expected)}: page seqs {[e['seq'] for e in got]}"
            )
        page.wait_for_timeout(250)
        waited_ms += 250
    return got[: len(expected)]


def wait_until_in_step(page: Page, daemon: SimDaemon, timeout_s: float = HANG_GUARD_S) -> None:
    """Wait until the page's event log holds every event the store has (and no more)."""
    deadline = timeout_s * 1000
    waited = 0.0
    while True:
        expected = stored_events(daemon)
        got = page_events(page)
        if got == expected:
            return
        if waited >= deadline:
            missing = [e for e in expected if e not in got]
            extra = [e for e in got if e not in expected]
            pytest.fail(
                f"the page's event log differs from the store after {timeout_s} s: "
                f"missing {missing}, not in the store {extra}, "
                f"page seqs {[e['seq'] for e in got]}"
            )
        page.wait_for_timeout(250)
        waited += 250
