"""The live view against a real station: alarms reach the page fast, and the page's buttons
act on the station and are recorded with who pressed them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from dashboard.harness import SimDaemon
from tests.browser.rig import stored_actions, stored_events

pytestmark = pytest.mark.browser

HOLD = "inversion.hold_limit"


@pytest.mark.timeout(90)
def test_hold_alarm_is_in_the_page_within_a_second_of_the_daemon_raising_it(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    hold_scenario: Path,
) -> None:
    daemon = station(hold_scenario)
    _, page = dashboard(daemon.url)
    live_since = time.time()

    line = daemon.wait_event(HOLD, "raised", timeout_s=40)
    assert line.at > live_since, (
        "the page must be live before the alarm, or this measures a catch-up"
    )
    card = page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}']", timeout=5000)
    entry = page.wait_for_selector(
        f"#event-log li[data-id='{HOLD}'][data-event='raised']", state="attached", timeout=5000
    )
    assert card is not None
    assert entry is not None

    # Both stamps are the page's Date.now() when it put the element in the DOM; line.at is
    # when the daemon's JSON line (printed as it committed the event) arrived here.
    card_ms = float(card.get_attribute("data-shown-at") or "nan")
    entry_ms = float(entry.get_attribute("data-at-ms") or "nan")
    latency_s = max(card_ms, entry_ms) / 1000 - line.at
    assert -0.05 < latency_s < 1.0, f"alarm shown {latency_s:.3f} s after the daemon raised it"
    committed = datetime.fromisoformat(entry.get_attribute("data-at") or "").timestamp()
    assert entry_ms / 1000 - committed < 1.0

    # Priority as colour AND word AND icon; the message says value against limit.
    text = card.inner_text()
    assert "MEDIUM PRIORITY" in text
    assert "Inverted for 5 s (limit 5 s)" in text
    assert card.query_selector(".icon-medium svg") is not None
    assert "p-medium" in (card.get_attribute("class") or "")
    assert "alarm raised: Inverted for 5 s" in page.inner_text("#announce")
    # ... and it escalates to high at twice the limit, in the same card.
    daemon.wait_event(HOLD, "escalated", timeout_s=20)
    page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}'][data-priority='high']", timeout=2000)
    assert "HIGH PRIORITY" in page.inner_text(f"[data-alarm='{HOLD}']")


@pytest.mark.timeout(90)
def test_acknowledge_button_is_recorded_in_the_store_with_who(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    hold_scenario: Path,
) -> None:
    daemon = station(hold_scenario)
    _, page = dashboard(daemon.url)
    daemon.wait_event(HOLD, "raised", timeout_s=40)
    page.click(f"#alarm-list [data-alarm='{HOLD}'] button[data-act='ack']", timeout=5000)

    line = daemon.wait_event(HOLD, "acknowledged", timeout_s=10)
    assert line.event["message"] == "Acknowledged by owner"
    page.wait_for_selector(
        f"#event-log li[data-id='{HOLD}'][data-event='acknowledged']", state="attached"
    )
    page.wait_for_selector(f"[data-alarm='{HOLD}'][data-state='acknowledged']", timeout=3000)
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
    line = daemon.wait_event("user.symptom", "raised", timeout_s=10)
    assert line.event["priority"] == "medium"
    card = page.wait_for_selector("#alarm-list [data-alarm='user.symptom']", timeout=3000)
    assert card is not None
    assert "MEDIUM PRIORITY" in card.inner_text()
    assert [(a["kind"], a["by"]) for a in stored_actions(daemon)] == [("symptom", "owner")]

    # The medium tone: 3 pulses a burst, repeating while the alarm sounds.
    page.wait_for_selector("body[data-sound='medium']", timeout=3000)
    page.wait_for_function("window.spotter.sound.bursts.medium >= 1", timeout=3000)
    assert page.is_hidden("#sound-banner")
    page.click("#alarm-list [data-alarm='user.symptom'] button[data-act='silence']")
    daemon.wait_event("user.symptom", "silenced", timeout_s=10)
    page.wait_for_selector("body[data-sound='off']", timeout=3000)
