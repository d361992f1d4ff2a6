"""HTTPS for the dashboard (dashboard/tls.py, server.py): the station's own CA, a user's
certificate, and plain HTTP on the LAN never silent. Real servers on 127.0.0.1, real TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from dashboard.auth import COOKIE, CSRF_HEADER
from dashboard.server import (
    CA_PATH,
    PLAIN_HTTP_WARNING,
    DashboardConfig,
    DashboardServer,
    choose_tls,
)
from dashboard.tls import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    TLS_DIR,
    TlsError,
    TlsFiles,
    station_tls,
    user_tls,
)
from monitor.settings import ConfigError, load_settings
from tests.dashboard.conftest import Rig

NOW = datetime.datetime(2026, 12, 2, 4, 0, tzinfo=datetime.UTC)


def make_station_tls(data_dir: Path, hostname: str = "spotter-pi") -> TlsFiles:
    files, refused = station_tls(data_dir, "home", hostname, ["192.168.1.20"], NOW)
    assert refused == []
    return files


def trusting(ca_pem: bytes) -> ssl.SSLContext:
    """A client context that trusts only ``ca_pem``, hostname checked."""
    return ssl.create_default_context(cadata=ca_pem.decode())


@asynccontextmanager
async def serving(rig: Rig, config: DashboardConfig) -> AsyncIterator[DashboardServer]:
    server = DashboardServer(rig.station, rig.store, "home", config)
    stop = asyncio.Event()
    task = asyncio.create_task(server.serve(stop))
    try:
        await asyncio.wait_for(server.ready.wait(), 30)  # a hang guard, not a margin
        yield server
    finally:
        stop.set()
        await task


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the station's CA ----------------------------------------------------------------------


def test_the_ca_is_made_once_private_and_small(tmp_path: Path) -> None:
    first = make_station_tls(tmp_path)
    second = make_station_tls(tmp_path)
    folder = tmp_path / TLS_DIR
    assert first.ca_pem == second.ca_pem
    assert first.ca_fingerprint == second.ca_fingerprint
    assert mode(folder) == 0o700
    for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY):
        assert mode(folder / name) == 0o600, name
    assert list(folder.glob("*.new")) == []

    ca = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = constraints.value.permitted_subtrees or []
    assert x509.DNSName("example.com") not in permitted
    assert x509.DNSName("local") in permitted

    server = x509.load_pem_x509_certificate((folder / SERVER_CERT).read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "spotter-pi",
        "spotter-pi.local",
        "localhost",
    }
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("192.168.1.20"),
    }
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=398)  # what Apple and Chrome accept


def test_names_the_ca_may_not_vouch_for_are_left_out_and_reported(tmp_path: Path) -> None:
    make_station_tls(tmp_path, hostname="spotter-pi")
    files, refused = station_tls(tmp_path, "home", "renamed", ["8.8.4.4", "10.0.0.7"], NOW)
    assert sorted(refused) == ["8.8.4.4", "renamed"]
    server = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"renamed.local", "localhost"}
    assert ipaddress.ip_address("10.0.0.7") in sans.get_values_for_type(x509.IPAddress)


def test_a_half_missing_or_exposed_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    make_station_tls(tmp_path)
    key = tmp_path / TLS_DIR / CA_KEY
    key.chmod(0o644)
    with pytest.raises(TlsError, match=r"ca\.key: readable by others .*chmod 600"):
        make_station_tls(tmp_path)
    key.unlink()
    with pytest.raises(TlsError, match=r"ca\.key: missing while its pair is there"):
        make_station_tls(tmp_path)


def test_which_tls_the_dashboard_gets(tmp_path: Path) -> None:
    def choose(**kwargs: object) -> TlsFiles | None:
        args: dict[str, object] = {
            "lan": True,
            "tls": True,
            "cert_file": None,
            "key_file": None,
            "data_dir": tmp_path,
            "station": "home",
        }
        args.update(kwargs)
        return choose_tls(**args)  # type: ignore[arg-type]

    made = choose()
    assert made is not None
    assert made.ca_pem is not None  # the LAN default: the station's CA
    assert choose(tls=False) is None  # --insecure-http / tls = false
    assert choose(lan=False) is None  # loopback stays plain HTTP
    given = choose(lan=False, cert_file=made.cert_file, key_file=made.key_file)
    assert given is not None
    assert given.ca_pem is None
    assert given.cert_file == made.cert_file


def test_a_user_certificate_is_checked_at_start(tmp_path: Path) -> None:
    mine = make_station_tls(tmp_path / "mine")
    other = make_station_tls(tmp_path / "other")
    with pytest.raises(TlsError, match="not a PEM certificate and its key"):
        user_tls(mine.cert_file, other.key_file)
    with pytest.raises(TlsError, match="no such file"):
        user_tls(tmp_path / "none.crt", mine.key_file)
    mine.key_file.chmod(0o644)
    with pytest.raises(TlsError, match="readable by others"):
        user_tls(mine.cert_file, mine.key_file)


def test_config_cert_and_key_go_together(tmp_path: Path) -> None:
    config = tmp_path / "spotter.toml"
    config.write_text('[dashboard]\ncert_file = "/x.crt"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dashboard: .*cert_file and key_file go together"):
        load_settings(config)
    config.write_text(
        '[dashboard]\ncert_file = "/x.crt"\nkey_file = "/x.key"\ntls = false\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="cert_file is set but tls = false"):
        load_settings(config)
    config.write_text("[dashboard]\nlan = true\n", encoding="utf-8")
    assert load_settings(config).dashboard.tls  # HTTPS is the LAN's default


# -- served ----------------------------------------------------------------------------------


async def pair_over(client: httpx.AsyncClient, server: DashboardServer) -> str:
    """Pair through the served URL; returns the Set-Cookie header."""
    url = server.pairing_url()
    assert url.startswith(f"https://127.0.0.1:{server.port}/pair?token=")
    paired = await client.get(url)
    assert paired.status_code == 303, paired.text
    client.cookies.set(COOKIE, paired.cookies[COOKIE])
    return paired.headers["set-cookie"]


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_https_with_the_station_ca(rig: Rig, tmp_path: Path) -> None:
    tls = make_station_tls(tmp_path)
    assert tls.ca_pem is not None
    async with serving(rig, DashboardConfig(port=0, tls=tls)) as server:
        base = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, verify=trusting(tls.ca_pem)) as client:
            set_cookie = await pair_over(client, server)
            assert "; secure" in set_cookie.lower()
            assert "httponly" in set_cookie.lower()
            me = (await client.get("/api/me")).json()
            assert me["role"] == "owner"
            client.headers[CSRF_HEADER] = me["csrf"]
            settings = (await client.get("/api/settings")).json()
            assert settings["https"] is True
            assert settings["plain_http_on_lan"] is False
            assert settings["ca_url"] == CA_PATH
            ca = await client.get(CA_PATH)  # no login needed: a phone fetches it first
            assert ca.status_code == 200
            assert ca.headers["content-type"] == "application/x-x509-ca-cert"
            assert "spotter-home-ca.crt" in ca.headers["content-disposition"]
            assert ca.content == tls.ca_pem
            other = make_station_tls(tmp_path / "another-station")
            assert other.ca_pem is not None
        async with httpx.AsyncClient(base_url=base, verify=trusting(other.ca_pem)) as stranger:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await stranger.get("/healthz")


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_https_with_a_certificate_the_user_gives(rig: Rig, tmp_path: Path) -> None:
    issued = make_station_tls(tmp_path / "the-users-own-ca")  # any CA the user runs
    assert issued.ca_pem is not None
    given = choose_tls(
        lan=False,
        tls=True,
        cert_file=issued.cert_file,
        key_file=issued.key_file,
        data_dir=tmp_path / "data",
        station="home",
    )
    assert given is not None
    assert not (tmp_path / "data" / TLS_DIR).exists()  # no station CA made beside it
    async with serving(rig, DashboardConfig(port=0, tls=given)) as server:
        base = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, verify=trusting(issued.ca_pem)) as client:
            assert "; secure" in (await pair_over(client, server)).lower()
            settings = (await client.get("/api/settings")).json()
            assert settings["https"] is True
            assert settings["ca_url"] is None
            assert (await client.get(CA_PATH)).status_code == 404  # not ours to hand out


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_plain_http_on_the_lan_is_logged_and_flagged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dashboard.server"):
        server = DashboardServer(
            rig.station, rig.store, "home", DashboardConfig(port=0, lan=True, tls=None)
        )
    assert [r.getMessage() for r in caplog.records] == [PLAIN_HTTP_WARNING]
    assert server.pairing_url().startswith("http://")
    async with paired_in_process(server) as client:
        settings = (await client.get("/api/settings")).json()
    assert settings["plain_http_on_lan"] is True
    assert settings["https"] is False
    assert settings["ca_url"] is None


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_loopback_without_tls_is_not_flagged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dashboard.server"):
        server = DashboardServer(rig.station, rig.store, "home", DashboardConfig(port=0))
    assert caplog.records == []
    async with paired_in_process(server) as client:
        settings = (await client.get("/api/settings")).json()
    assert settings["plain_http_on_lan"] is False


@asynccontextmanager
async def paired_in_process(server: DashboardServer) -> AsyncIterator[httpx.AsyncClient]:
    """The server's app driven in process (a LAN bind is not for tests), paired as owner."""
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        token = server.access.new_pairing("owner", "anna")
        paired = await client.get(f"/pair?token={token}")
        client.cookies.set(COOKIE, paired.cookies[COOKIE])
        yield client
