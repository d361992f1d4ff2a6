"""``spotter bench faults`` for the station (monitor/bench/faults/station.py), quick mode: the
invariants behind every figure it prints, judged on the station's clock and on events."""

from __future__ import annotations

import pytest

from monitor.bench.faults import station

pytestmark = [pytest.mark.radio, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_station_faults_quick_figures_hold_their_invariants() -> None:
    figures = station.run(quick=True)

    slow = figures["slow_disk"]
    assert slow["same_events_as_healthy_disk"] is True
    assert slow["events"] > 0
    # the sound has each alarm in the step that raised it, stalled disk or not
    assert slow["alarm_to_sound_s_slow"] == slow["alarm_to_sound_s_healthy"] == 0.0
    assert slow["false_technical_alarms"] == 0
    assert slow["committed"] == slow["events"]
    assert slow["committed_in_order"] is True
    assert slow["sent_beyond"] == slow["events"]
    assert slow["sent_beyond_before_commit"] == 0
    assert slow["max_store_lag_s"] > 1.0  # the stalls were felt ...
    assert slow["lag_shown"] is True  # ... shown ...
    assert slow["lag_cleared"] is True  # ... and cleared once the disk caught up

    full = figures["disk_full"]
    assert full["alarm_events_while_failing"] > 0
    assert full["sounded_while_failing"] == full["alarm_events_while_failing"]
    assert full["problem_shown"] is True
    assert full["problem_cleared"] is True
    assert full["events_after_recovery"] > 0
    assert full["events_after_recovery_committed"] == full["events_after_recovery"]

    kills = figures["kills"]
    assert kills["kill_runs"] == 20
    assert kills["committed_events_lost"] == 0
    assert kills["store_intact_after_kills"] is True
    assert kills["committed_is_what_was_shown_in_order"] is True
    assert kills["events_seen_committed_before_kills"] > 0

    for name in ("silent", "flapping"):
        radio = figures[name]
        assert radio["crashes"] == 0, name
        assert radio["technical_alarms_raised"] > 0, name
        assert radio["technical_alarms_as_replay"] is True, name
        assert radio["technical_alarm_max_offset_s"] <= 0.3, name
    assert figures["flapping"]["station_s"] == 300
    assert figures["flapping"]["tilt_link_drops"] >= 1
