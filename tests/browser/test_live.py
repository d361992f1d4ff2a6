"""The live view against a real station: alarms are pushed to the page as the station commits
them, and the page's buttons act on the station and are recorded with who pressed them.

How fast (commit to DOM, p50/p99) is measured by ``spotter bench dashboard``, not judged here:
these tests must pass on a machine whose cores are busy, so they judge events and order and
every wait is only a hang guard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from monitor.bench.harness import SimDaemon
from tests.browser.rig import HANG_GUARD_S, HOLD_PROFILE, stored_actions, stored_events, wait_for_js

pytestmark = pytest.mark.browser

HOLD = "inversion.hold_limit"


@pytest.mark.timeout(90)
def test_hold_alarm_is_pushed_to_the_live_page_as_the_daemon_commits_it(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    scenario: Callable[..., Path],
) -> None:
    # Flat for 30 s of the station's clock, so that even a slow start leaves the page live
    # before the alarm; if not, this says so rather than measure a catch-up.
    late_hold = scenario(
        "browser-late-hold",
        duration_s=600,
        theta=[(0, 0), (30, 0), (32, 25), (600, 25)],
        hr=[(0, 68), (600, 76)],
        profile=HOLD_PROFILE,
    )
    daemon = station(late_hold)
    _, page = dashboard(daemon.url)
    assert HOLD not in [e["id"] for e in stored_events(daemon)], "the page was not live first"

    daemon.wait_event(HOLD, "raised", timeout_s=HANG_GUARD_S)
    card = page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}']")
    entry = page.wait_for_selector(
        f"#event-log li[data-id='{HOLD}'][data-event='raised']", state="attached"
    )
    assert card is not None
    assert entry is not None
    # Pushed on the stream the page already had open (one open, no reconnect and catch-up),
    # and handled as live: announced (replayed events are not).
    assert page.evaluate("window.spotter.stream.opens") == 1
    # The page stamped it (Date.now()) after the station committed it (same machine's clock).
    entry_ms = float(entry.get_attribute("data-at-ms") or "nan")
    committed_ms = datetime.fromisoformat(entry.get_attribute("data-at") or "").timestamp() * 1000
    assert entry_ms >= committed_ms - 1  # Date.now() is whole milliseconds

    # Priority as colour AND word AND icon; the words are for the person beside the table:
    # a plain title, the user's own limit, what to do. The raw id and values are folded away
    # in a details element for clinicians.
    text = card.inner_text()
    assert "MEDIUM PRIORITY" in text
    assert "Inverted too long" in text
    assert "over your 0:05 limit" in text
    assert "Come up slowly now." in text
    assert HOLD not in text
    assert "value" not in text
    assert HOLD in card.eval_on_selector("details.alarm-more", "e => e.textContent")
    assert card.query_selector(".icon-medium svg") is not None
    assert "p-medium" in (card.get_attribute("class") or "")
    assert "alarm raised: Inverted too long" in page.inner_text("#announce")
    # ... and it escalates to high at twice the limit, in the same card, saying so.
    daemon.wait_event(HOLD, "escalated", timeout_s=HANG_GUARD_S)
    page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}'][data-priority='high']")
    text = page.inner_text(f"[data-alarm='{HOLD}']")
    assert "HIGH PRIORITY" in text
    assert "twice your 0:05 limit" in text
    assert "limit 10" not in text


@pytest.mark.timeout(90)
def test_acknowledge_button_is_recorded_in_the_store_with_who(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    hold_scenario: Path,
) -> None:
    daemon = station(hold_scenario)
    _, page = dashboard(daemon.url)
    daemon.wait_event(HOLD, "raised", timeout_s=HANG_GUARD_S)
    page.click(f"#alarm-list [data-alarm='{HOLD}'] button[data-act='ack']")

    line = daemon.wait_event(HOLD, "acknowledged", timeout_s=HANG_GUARD_S)
    assert line.event["message"] == "Acknowledged by owner"
    page.wait_for_selector(
        f"#event-log li[data-id='{HOLD}'][data-event='acknowledged']", state="attached"
    )
    page.wait_for_selector(f"[data-alarm='{HOLD}'][data-state='acknowledged']")
    assert page.is_hidden(f"[data-alarm='{HOLD}'] button[data-act='ack']")

    acks = [a for a in stored_actions(daemon) if a["kind"] == "acknowledge"]
    assert [(a["alarm"], a["by"]) for a in acks] == [(HOLD, "owner")]
    events = stored_events(daemon)
    assert {"id": HOLD, "event": "acknowledged"} in [
        {"id": e["id"], "event": e["event"]} for e in events
    ]


@pytest.mark.timeout(60)
def test_stop_button_raises_user_symptom_and_sounds_it(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    flat_scenario: Path,
) -> None:
    daemon = station(flat_scenario)
    _, page = dashboard(daemon.url)
    assert page.is_visible("#sound-banner"), "sound is locked until a tap"

    page.click("#stop")  # the tap also unlocks the alarm sound
    line = daemon.wait_event("user.symptom", "raised", timeout_s=HANG_GUARD_S)
    assert line.event["priority"] == "medium"
    card = page.wait_for_selector("#alarm-list [data-alarm='user.symptom']")
    assert card is not None
    assert "MEDIUM PRIORITY" in card.inner_text()
    assert [(a["kind"], a["by"]) for a in stored_actions(daemon)] == [("symptom", "owner")]

    # The medium tone: 3 pulses a burst, repeating while the alarm sounds.
    page.wait_for_selector("body[data-sound='medium']")
    wait_for_js(page, "window.spotter.sound.bursts.medium >= 1")
    assert page.is_hidden("#sound-banner")
    page.click("#alarm-list [data-alarm='user.symptom'] button[data-act='silence']")
    daemon.wait_event("user.symptom", "silenced", timeout_s=HANG_GUARD_S)
    page.wait_for_selector("body[data-sound='off']")
