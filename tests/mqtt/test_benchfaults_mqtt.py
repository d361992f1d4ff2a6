"""``spotter bench faults`` area ``mqtt`` in its quick form: the figures come out, and the
invariants hold (no crash, no event lost, every malformed payload refused, 200 stations
heard, ``link.lost`` on time beside a flooding client)."""

from __future__ import annotations

import pytest

from monitor.bench.faults import areas
from monitor.bench.faults.mqtt import run

pytestmark = [pytest.mark.broker, pytest.mark.timeout(600)]


def test_the_mqtt_fault_figures_and_their_invariants() -> None:
    assert "mqtt" in areas()
    figures = run(quick=True)
    summary = figures["summary"]
    assert summary["crashes"] == 0  # fuzzed parsers, hubs, broker restart, load
    assert figures["fuzz"]["crashes"] == 0
    assert figures["fuzz"]["inputs"] == summary["parser_fuzz_inputs"] > 0
    assert summary["events_lost"] == 0
    assert summary["payloads_rejected"] == summary["payloads_tried"] >= 200
    assert summary["stations_on_one_hub"] == 200
    load = figures["load"]
    assert load["alarms_published"] > 0
    assert load["flood_messages_sent"] > 0
    # the silent station's link.lost, judged on the hub's clock: how silent it was when the
    # ticker raised it, past the timeout, is within the ticker's own gap before that tick
    # (the gap itself is wall-clock lateness of a busy machine: a figure, not asserted)
    gap = load["silent_station_link_lost_tick_gap_s"]
    assert gap is not None, "raised by the hub's ticker"
    assert 0.0 <= load["silent_station_link_lost_late_s"] <= gap + 0.01  # value: 2 decimals
    restart = figures["hub_sigkill_with_retained_poison"]
    assert restart["alive_after_restart"]
    assert restart["link_lost_raised_after_restart"]
    assert figures["broker_restart"]["events_duplicated"] == 0
