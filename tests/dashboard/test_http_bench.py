"""``monitor/bench/faults/http.py`` with quick=True: schemathesis against both OpenAPI
descriptions (station and hub, logged in) finds no 5xx; a 20 MB body with no cookie is
refused after one chunk; wrong PINs and logins are held to a handful a minute; a flooding
client against a served station raises no false ``signal_lost`` on the station's clock."""

from __future__ import annotations

import pytest

from monitor.bench.faults import areas
from monitor.bench.faults.http import run


@pytest.mark.timeout(300)
def test_the_http_figures_hold_their_invariants() -> None:
    assert "http" in areas()
    figures = run(quick=True)
    for app in ("station_schemathesis", "hub_schemathesis"):
        fuzzed = figures[app]
        assert fuzzed["5xx"] == 0, fuzzed["5xx_examples"]
        assert fuzzed["operations"] >= 10
        assert fuzzed["requests"] >= 3 * fuzzed["operations"]
        assert fuzzed["by_status"]["4xx"] > 0  # the negative cases were refused, not crashed
    oversize = figures["oversize"]
    assert oversize["status"] == 413
    assert oversize["read_mb_before_refusal"] <= 1  # of 20
    assert oversize["peak_traced_mb"] < 5
    secrets = figures["secrets"]
    assert 5 <= secrets["pin_checked_per_minute"] <= 12
    assert 5 <= secrets["login_checked_per_minute"] <= 12
    assert secrets["pin_refused_429"] > 0
    flood = figures["flood"]
    assert flood["flood_requests"] == 400
    assert flood["flood_5xx"] == 0
    assert flood["flood_by_status"]["429"] > 0  # wrong PINs met the back-off
    assert flood["flood_signal_lost_raised"] == 0, flood["flood_alarms_raised"]
    assert figures["5xx"] == 0
