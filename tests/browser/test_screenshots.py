"""Screenshots for the README, taken from the real thing on a phone-sized screen (390 x 844,
2x): the live view, a high-priority alarm, and one session's chart with its alarm markers.
They are saved in test-artifacts/ (not committed); test_pages adds the guided start, the
summary, history and progress, and settings.

The same page then has its layout checked with element bounding boxes on two phones and a
desktop, with one, two and four alarms listed. A real station cannot be made to list exactly
those alarms on cue, so the page's stream is stopped and it is handed states made from its
last real one, with the alarm list replaced and the screen's read model
(:func:`monitor.core.view.screen`) computed again: the page's own rendering, the real read model,
a chosen alarm list."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from monitor.bench.harness import SimDaemon
from monitor.core.view import screen
from tests.browser.rig import ARTIFACTS

pytestmark = pytest.mark.browser

HOLD = "inversion.hold_limit"


@pytest.mark.timeout(90)
def test_screenshots_of_live_view_alarm_and_session(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    hold_scenario: Path,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    daemon = station(hold_scenario)
    _, page = dashboard(daemon.url, scale=2)

    page.wait_for_selector("#phase[data-phase='inverted']")
    assert page.inner_text("#phase") == "INVERTED"
    page.wait_for_timeout(1200)  # a little of the charts
    page.screenshot(path=ARTIFACTS / "live.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    # The big numbers turn upside down, to be read while hanging head-down.
    page.click("#flip")
    assert page.get_attribute("#flip", "aria-pressed") == "true"
    assert "matrix(-1" in page.eval_on_selector("#big", "e => getComputedStyle(e).transform")
    page.screenshot(path=ARTIFACTS / "live-flipped.png")
    page.click("#flip")

    daemon.wait_event(HOLD, "escalated", timeout_s=40)
    page.wait_for_selector(f"#alarm-list [data-alarm='{HOLD}'][data-priority='high']")
    page.wait_for_timeout(600)  # past the flash of a new high alarm
    page.screenshot(path=ARTIFACTS / "alarm.png")

    page.click("nav [data-nav='history']")
    page.click(".session-item")
    page.wait_for_selector("#session-chart canvas")
    page.screenshot(path=ARTIFACTS / "session.png")
    page.locator("#session-chart").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "session-chart.png")

    for name in ("live", "live-flipped", "alarm", "session", "session-chart"):
        shot = ARTIFACTS / f"{name}.png"
        assert shot.stat().st_size > 10_000, shot
    # The chart reads as a chart: our own legend (uPlot's reads "s: -- θ °: --" until hovered).
    assert page.query_selector("#session-chart .u-legend") is None
    legend = page.inner_text("p.legend:has(.key.hr)")
    assert "θ (°), left axis" in legend
    assert "heart rate (bpm), right axis" in legend

    check_layout(page)


ALARMS = [
    ("inversion.hold_limit", "high", 130.0, 120.0),
    ("hr.high", "medium", 128.0, 120.0),
    ("tilt.signal_lost", "medium", 4.0, 2.0),
    ("user.symptom", "medium", None, None),
]
"""Four alarms at once, most urgent first, as the station lists them."""

PHONES = ((360, 740), (412, 915))


def listed(
    alarm_id: str, priority: str, value: float | None, limit: float | None
) -> dict[str, Any]:
    """One alarm as :func:`monitor.status.station_state` lists it."""
    return {
        "id": alarm_id,
        "priority": priority,
        "state": "active",
        "condition": True,
        "acknowledged": False,
        "sounding": True,
        "silenced_for_s": 0.0,
        "value": value,
        "limit": limit,
        "message": "",
        "raised_s_ago": 12.0,
    }


def show_state(page: Page, base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Hand the page a state: ``base`` with ``changes``, its read model computed again."""
    state = copy.deepcopy(base)
    state.update(changes)
    state["screen"] = screen(state)
    page.evaluate("s => window.spotter.live.onState(s)", state)
    return state


Box = dict[str, float]


def box(page: Page, selector: str) -> Box:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not displayed"
    return found


def overlap(a: Box, b: Box) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def in_view(a: Box, width: int, height: int) -> bool:
    return (
        a["x"] >= 0
        and a["y"] >= 0
        and a["x"] + a["width"] <= width
        and a["y"] + a["height"] <= height
    )


def uncovered(page: Page, selector: str, width: int, height: int, what: str) -> None:
    """``selector`` is inside the viewport and clear of STOP, the header and a toast."""
    mine = box(page, selector)
    assert in_view(mine, width, height), f"{what}: {selector} {mine} outside {width}x{height}"
    for cover in ("#stop", "header.top", "#toast"):
        if cover != selector and page.is_visible(cover):
            assert not overlap(mine, box(page, cover)), f"{what}: {cover} covers {selector}"


def one_line(page: Page, selector: str) -> bool:
    return bool(
        page.eval_on_selector(
            selector,
            "e => { const r = document.createRange(); r.selectNodeContents(e);"
            " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size === 1; }",
        )
    )


def check_layout(page: Page) -> None:
    page.click("nav [data-nav='live']")
    page.wait_for_selector("body[data-view='live']")
    page.evaluate("window.spotter.stream.stop()")
    base = page.evaluate("window.spotter.live.state")
    assert base["timers"]["hold_s"] is not None, "checked while the user is inverted"

    for width, height in PHONES:
        page.set_viewport_size({"width": width, "height": height})
        for count in (1, 2, 4):
            what = f"{width}x{height}, {count} alarm(s)"
            show_state(page, base, alarms=[listed(*a) for a in ALARMS[:count]])
            page.wait_for_selector(f"body[data-alarms='{count}']")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=ARTIFACTS / f"layout-{width}x{height}-{count}.png")
            # At the top of the page: the timer, its Flip, STOP and the first alarm's buttons.
            uncovered(page, "#stop", width, height, what)
            uncovered(page, "#timer-card", width, height, what)
            uncovered(page, "#flip", width, height, what)
            first = "#alarm-list li:first-child"
            uncovered(page, f"{first} button[data-act='ack']", width, height, what)
            uncovered(page, f"{first} button[data-act='silence']", width, height, what)
            # Every alarm's buttons can be brought into view clear of STOP and the header.
            for alarm_id, *_ in ALARMS[:count]:
                for act in ("ack", "silence"):
                    button = f"[data-alarm='{alarm_id}'] button[data-act='{act}']"
                    page.locator(button).scroll_into_view_if_needed()
                    uncovered(page, button, width, height, what)
                assert one_line(page, f"[data-alarm='{alarm_id}'] button[data-act='ack']"), (
                    f"{what}: '✓ Acknowledge' wraps"
                )
            # No raw id on the screen outside the folded details.
            visible = page.inner_text("#view-live")
            for alarm_id, *_ in ALARMS[:count]:
                assert alarm_id not in visible, f"{what}: raw id {alarm_id} shown"
        # A toast (here: the answer to a tap on Silence) covers neither the timer nor STOP.
        page.evaluate("window.scrollTo(0, 0)")
        page.click("#alarm-list li:first-child button[data-act='silence']")
        page.wait_for_selector("#toast:visible")
        toast = box(page, "#toast")
        for kept in ("#timer-card", "#flip", "#stop", "#alarm-list li:first-child .alarm-actions"):
            assert not overlap(toast, box(page, kept)), f"{width}x{height}: the toast covers {kept}"
        page.evaluate("document.querySelector('#toast').hidden = true")

    # No tilt data: the value, the gauge, the label and the sensor card agree.
    tilt = next(s for s in base["sensors"] if s["name"] == "tilt")
    lost_tilt = {**tilt, "fresh": False, "silent_s": 12.4}
    show_state(
        page,
        base,
        theta_deg=None,
        sensors=[lost_tilt if s["name"] == "tilt" else s for s in base["sensors"]],
        alarms=[listed("tilt.signal_lost", "medium", 12.4, 2.0)],
    )
    page.wait_for_selector("#phase:has-text('NO TILT SIGNAL')")
    assert page.inner_text("#theta") == "\u2013"
    assert page.get_attribute("#gauge-needle", "visibility") == "hidden"
    assert "UPRIGHT" not in page.inner_text("#phase")
    card = page.inner_text("#sensors [data-sensor='tilt']")
    assert "no signal for 12 s" in card
    assert "connected" not in card
    assert "Tilt sensor: no signal" in page.inner_text("#alarm-list")

    # Desktop: the θ card beside the timer is filled by its value and gauge, not mostly empty.
    page.set_viewport_size({"width": 1024, "height": 768})
    show_state(page, base, alarms=[])
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=ARTIFACTS / "layout-desktop.png")
    card_box = box(page, ".theta-card")
    filled = box(page, ".theta-row")
    assert filled["height"] >= 0.6 * card_box["height"], (filled, card_box)
    assert box(page, "#gauge")["width"] >= 0.6 * card_box["width"], card_box
