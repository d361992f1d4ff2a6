"""The guided session, its summary, history and progress, screening with a clinician's
clearance, and the settings page, clicked through as a person would on a phone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from monitor.bench.harness import SimDaemon, more_pairings
from tests.browser.rig import ARTIFACTS, stored_actions

pytestmark = pytest.mark.browser


def shoot(page: Page, name: str, selector: str | None = None) -> None:
    """A phone screenshot for the README, without the passing toast."""
    page.evaluate("document.querySelector('#toast').hidden = true")
    if selector is not None:
        page.locator(selector).scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def add_user(page: Page, name: str, age: int) -> None:
    page.fill("form.add-user input[name='name']", name)
    page.fill("form.add-user input[name='age']", str(age))
    page.click("form.add-user button[type='submit']")
    page.wait_for_selector(".wizard[data-step='screening']")


@pytest.mark.timeout(120)
def test_guided_session_summary_history_and_settings(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    scenario: Callable[..., Path],
) -> None:
    """As in the demo: the user lies back before anyone taps "Start", so the session starts
    itself; the guided start then makes that running session Anna's, with her checklist and
    her pain before, and it is in her history with the pain after."""
    ARTIFACTS.mkdir(exist_ok=True)
    auto_start = scenario(
        "browser-auto-start",
        duration_s=600,
        theta=[(0, 0), (4, 0), (6, 15), (20, 15), (22, 0), (600, 0)],
    )
    daemon = station(auto_start)
    _, page = dashboard(daemon.url, scale=2)
    page.wait_for_selector("#session-line:has-text('Session since')")
    assert "Anna" not in page.inner_text("#session-line")

    # Who, then the screening: nothing applies.
    page.click("nav [data-nav='session']")
    page.wait_for_selector(".wizard[data-step='user']")
    add_user(page, "Anna", 52)
    assert "Do any of these apply to you?" in page.inner_text(".wizard")
    page.click("form.screening button[type='submit']")  # nothing ticked: none apply
    page.wait_for_selector("text=none of the conditions apply")
    page.click("[data-next='checklist']")

    # Skip the checklist: the station refuses, and says why.
    page.click("[data-next='pain']")
    page.click(".pain [data-pain='3']")
    page.click("[data-next='target']")
    page.wait_for_selector(".wizard[data-step='target'] .target")
    assert "25°" in page.inner_text(".target")
    page.click("#start-session")
    page.wait_for_selector(".reasons li")
    reasons = page.inner_text(".reasons")
    assert "lock the ankle clamps" in reasons
    assert "needs a spotter present" in reasons

    page.click("text=← Back")
    page.click("text=← Back")
    page.wait_for_selector(".wizard[data-step='checklist']")
    for item in ("ankle_clamps_locked", "spotter_present", "warm_up_done"):
        page.check(f"input[name='{item}']")
    page.click("[data-next='pain']")
    page.wait_for_selector(".pain [data-pain='3'][aria-checked='true']")
    page.click("[data-next='target']")
    page.wait_for_selector("#start-session")
    shoot(page, "guided")
    page.click("#start-session")  # this tap also turns the alarm sound on

    # The live view, in the session that was already running, now Anna's.
    page.wait_for_selector("body[data-view='live']")
    assert "The running session is now Anna's" in page.inner_text("#toast")
    page.wait_for_selector("#session-line:has-text('Anna')")
    page.wait_for_selector("#end-session:visible")
    assert page.is_hidden("#sound-banner")
    # "Session since" on the live card is the store's own start time, as history shows it.
    (row,) = page.request.get(f"{daemon.base_url}/api/sessions").json()
    live_since = page.evaluate("window.spotter.live.state.timers.session_started")
    assert live_since == row["started_at"]
    assert f"Session since {row['started_at'][11:16]} · Anna" in page.inner_text("#session-line")
    # Nobody else can take it over while it runs: refused, with the reason.
    csrf = page.evaluate("window.spotter.me.csrf")
    other = page.request.post(
        f"{daemon.base_url}/api/session/start",
        data={"user": "Ben", "ankle_clamps_locked": True, "warm_up_done": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert other.status == 409
    assert other.json()["reasons"] == ["a session is already running for Anna: end it first"]

    # The end, with the pain after.
    page.click("#end-session")
    page.click("#pain-after [data-pain='1']")
    page.click("#end-confirm")
    page.wait_for_selector("#view-summary [data-session]")
    summary = page.inner_text("#view-summary")
    assert "Session summary" in summary
    assert "Anna" in summary
    assert "3 before → 1 after" in summary
    shoot(page, "summary")
    kinds = [a["kind"] for a in stored_actions(daemon)]
    assert kinds == ["session_end"], "the session had started itself: no second start"
    (mine,) = page.request.get(f"{daemon.base_url}/api/sessions?user=Anna").json()
    assert (mine["id"], mine["pain_before"], mine["pain_after"]) == (row["id"], 3, 1)
    assert mine["checklist"] == {
        "ankle_clamps_locked": True,
        "spotter_present": True,
        "warm_up_done": True,
    }

    # History and progress.
    page.click("nav [data-nav='history']")
    page.wait_for_selector(".session-item")
    page.select_option("#history-user", "Anna")
    page.wait_for_selector("#pain-chart canvas")
    progress = page.inner_text("#progress")
    assert "first session" in progress
    assert "Inverted minutes per week" in progress
    shoot(page, "history")
    shoot(page, "progress", "#pain-chart")

    # Settings: limits need the owner's PIN (none is set here), the rest is read-only.
    page.click("nav [data-nav='settings']")
    page.wait_for_selector("#profile-form")
    text = page.inner_text("#view-settings")
    assert "edited in the configuration file" in text
    assert "Calibration" in text
    assert "Push targets" in text
    page.fill("#profile-form input[name='profile']", "standard")
    page.fill("#profile-form input[name='pin']", "1234")
    page.click("#profile-form button[type='submit']")
    page.wait_for_selector("#profile-form .result:has-text('Not changed')")
    assert "owner's PIN" in page.inner_text("#profile-form .result")
    shoot(page, "settings", "#profile-form .result")


@pytest.mark.timeout(90)
def test_screening_blocks_until_a_clinician_clears(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    flat_scenario: Path,
) -> None:
    daemon = station(flat_scenario)
    _, owner = dashboard(daemon.url)
    owner.goto(f"{daemon.base_url}/#/session")
    owner.wait_for_selector(".wizard[data-step='user']")
    add_user(owner, "Ben", 61)
    owner.check("form.screening input[name='eye_disease']")
    owner.click("form.screening button[type='submit']")
    owner.wait_for_selector(".blocked")
    assert "clearance is needed" in owner.inner_text(".blocked")
    assert owner.query_selector("[data-next='checklist']") is None
    assert owner.query_selector(".clearance-form") is None, "only a clinician clears"

    (clinician_url,) = more_pairings(owner, daemon.base_url, 1, role="clinician")
    _, clinician = dashboard(clinician_url)
    clinician.goto(f"{daemon.base_url}/#/session")
    clinician.click("[data-user='Ben']")
    clinician.fill(".clearance-form input[name='note']", "pressure checked")
    clinician.click(".clearance-form button[type='submit']")
    clinician.wait_for_selector(".clearance")
    assert "Cleared by clinician-1" in clinician.inner_text(".clearances")
    assert clinician.query_selector(".blocked") is None
    clinician.click("[data-next='checklist']")
    clinician.wait_for_selector(".wizard[data-step='checklist']")
