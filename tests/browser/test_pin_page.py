"""The owner sets and changes the PIN on the settings page; every page works under the
Content-Security-Policy (no violation on the live, history and settings views); a viewer can
log out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

from monitor.bench.harness import SimDaemon, more_pairings

pytestmark = pytest.mark.browser


def csp_watch(page: Page) -> list[str]:
    """Console messages of the page that report a Content-Security-Policy violation."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            seen.append(message.text)

    page.on("console", on_console)
    return seen


@pytest.mark.timeout(120)
def test_the_owner_sets_and_changes_the_pin_under_the_csp(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    flat_scenario: Path,
) -> None:
    daemon = station(flat_scenario)
    _, page = dashboard(daemon.url)
    violations = csp_watch(page)
    answer = page.reload()  # every script, style and stream again, now watched
    assert answer is not None
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["referrer-policy"] == "no-referrer"
    page.wait_for_selector("body[data-ready='true'][data-link='up']")
    for view in ("history", "settings"):
        page.click(f"nav [data-nav='{view}']")
        page.wait_for_selector(f"#view-{view} h1, #view-{view} h2")

    page.wait_for_selector("#pin-form")
    device = page.inner_text("#this-device")
    assert device.startswith("This device is paired as the owner of station "), device
    assert "No PIN is set yet" in page.inner_text("#view-settings")
    assert page.locator("#pin-form input[name='old']").count() == 0
    page.fill("#pin-form input[name='new']", "2468")
    page.fill("#pin-form input[name='again']", "2469")
    page.click("#pin-form button[type='submit']")
    page.wait_for_selector("#pin-form .result:has-text('the two new PINs differ')")
    page.fill("#pin-form input[name='again']", "2468")
    page.click("#pin-form button[type='submit']")
    page.wait_for_selector("#pin-form input[name='old']")  # set: changing now needs it
    assert "A PIN is set" in page.inner_text("#view-settings")

    page.fill("#pin-form input[name='old']", "1111")
    page.fill("#pin-form input[name='new']", "13579")
    page.fill("#pin-form input[name='again']", "13579")
    page.click("#pin-form button[type='submit']")
    page.wait_for_selector("#pin-form .result:has-text('Not changed')")
    assert "the current PIN is wrong" in page.inner_text("#pin-form .result")
    page.fill("#pin-form input[name='old']", "2468")
    page.click("#pin-form button[type='submit']")
    page.wait_for_selector("#pin-form .result:has-text('The PIN is set')")
    assert violations == []


@pytest.mark.timeout(120)
def test_a_viewer_logs_out_from_the_settings_page(
    dashboard: Callable[..., tuple[BrowserContext, Page]],
    station: Callable[..., SimDaemon],
    flat_scenario: Path,
) -> None:
    daemon = station(flat_scenario)
    _, owner = dashboard(daemon.url)
    (viewer_url,) = more_pairings(owner, daemon.base_url, 1, "viewer")
    _, viewer = dashboard(viewer_url)
    viewer.click("nav [data-nav='settings']")
    assert viewer.locator("#pin-form").count() == 0
    with viewer.expect_navigation():  # the page reloads once logged out
        viewer.click("button:has-text('Log this device out')")
    me = viewer.evaluate("fetch('/api/me').then((r) => r.status)")
    assert me == 401
