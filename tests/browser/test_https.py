"""The dashboard over HTTPS in a real Chromium that trusts the station's CA the way a phone
does: the CA is installed in the browser's certificate store (an NSS database in a temporary
HOME, made with certutil from libnss3-tools), never by ignoring certificate errors."""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, sync_playwright

from dashboard.tls import TlsFiles, station_tls
from monitor.bench.harness import SimDaemon, launch_chromium

pytestmark = pytest.mark.browser

CERTUTIL = Path("/usr/bin/certutil")


def station_ca(data_dir: Path) -> TlsFiles:
    """The station's own CA and a server certificate it signed, given to the daemon as its
    certificate (a LAN bind is not for tests: this one serves HTTPS on 127.0.0.1)."""
    now = datetime.datetime.now(datetime.UTC)
    files, refused = station_tls(data_dir, "browser", "localhost", [], now)
    assert refused == []
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "spotter.toml").write_text(
        f'[dashboard]\ncert_file = "{files.cert_file}"\nkey_file = "{files.key_file}"\n',
        encoding="utf-8",
    )
    return files


def trusting_home(home: Path, ca_pem: bytes) -> Path:
    """A HOME whose NSS database trusts ``ca_pem`` to identify web sites (certutil -t C,,)."""
    if not CERTUTIL.exists():
        pytest.fail(f"{CERTUTIL} is missing: apt-get install -y libnss3-tools", pytrace=False)
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    ca = home / "station-ca.crt"
    ca.write_bytes(ca_pem)
    certutil = [str(CERTUTIL), "-d", f"sql:{nssdb}"]
    subprocess.run([*certutil, "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        [*certutil, "-A", "-n", "spotter station", "-t", "C,,", "-i", str(ca)],
        check=True,
        capture_output=True,
    )
    return home


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[[bytes | None], Browser]]:
    """chromium(ca_pem): a headless Chromium that trusts that CA too (None: only the
    system's CAs). All are closed after the test."""
    with sync_playwright() as playwright:
        launched: list[Browser] = []

        def launch(ca_pem: bytes | None) -> Browser:
            home = None
            if ca_pem is not None:
                home = trusting_home(tmp_path / f"home{len(launched)}", ca_pem)
            launched.append(launch_chromium(playwright, home=home))
            return launched[-1]

        try:
            yield launch
        finally:
            for browser in launched:
                browser.close()


@pytest.mark.timeout(120)
def test_chromium_pairs_over_https_trusting_the_station_ca(
    chromium: Callable[[bytes | None], Browser],
    station: Callable[..., SimDaemon],
    flat_scenario: Path,
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    files = station_ca(data_dir)
    assert files.ca_pem is not None
    daemon = station(flat_scenario, data_dir=data_dir)
    assert daemon.url is not None
    assert daemon.url.startswith("https://127.0.0.1:")

    # A browser that does not trust the station's CA is refused: the trust below is real.
    stranger = chromium(None).new_context()
    with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
        stranger.new_page().goto(daemon.base_url + "/healthz")
    stranger.close()

    errors: list[str] = []
    trusted = chromium(files.ca_pem)
    context: BrowserContext = trusted.new_context(viewport={"width": 390, "height": 844})
    page: Page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(daemon.url)  # pairs: the cookie is set, then the live view opens
    page.wait_for_selector("body[data-ready='true'][data-link='up']")
    assert page.url.startswith("https://127.0.0.1:")
    cookies = context.cookies()
    assert [c["secure"] for c in cookies] == [True]
    assert [c["httpOnly"] for c in cookies] == [True]
    assert page.is_hidden("#plain-http")
    page.click("nav [data-nav='settings']")
    page.wait_for_selector("#view-settings .card h2:text('Devices')")
    assert page.locator("#ca-hint").count() == 0  # a given certificate: no CA to hand out
    assert errors == []
    context.close()
