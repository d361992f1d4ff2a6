"""The hub's pure core: link.lost per station, the merged alarm list, escalation."""

from __future__ import annotations

from dashboard.clinic.core import Escalation, HubCore

CALM = {"phase": "upright", "alarms": []}
INVERTED = {"phase": "inverted", "alarms": []}


def kinds(events: list) -> list[tuple[str, str, str]]:
    return [(s, e.event.value, e.priority.label) for s, e in events]


def test_a_silent_station_raises_link_lost_after_5_s() -> None:
    hub = HubCore()
    hub.state(0.0, "home", CALM)
    assert hub.tick(4.9) == []
    assert kinds(hub.tick(5.0)) == [("home", "raised", "medium")]
    assert kinds(hub.state(6.0, "home", CALM)) == [
        ("home", "cleared", "medium"),
        ("home", "resolved", "medium"),
    ]


def test_link_lost_is_high_when_the_station_was_inverted_or_alarming_and_latches() -> None:
    hub = HubCore()
    hub.state(0.0, "t1", INVERTED)
    assert kinds(hub.tick(5.0)) == [("t1", "raised", "high")]
    alarming = {"phase": "upright", "alarms": [{"id": "hr.high", "priority": "medium"}]}
    hub.state(0.0, "t2", alarming)
    assert kinds(hub.tick(5.1)) == [("t2", "raised", "high")]
    assert kinds(hub.state(7.0, "t1", CALM)) == [("t1", "cleared", "high")]  # listed until acked
    assert kinds(hub.acknowledge(8.0, "t1", "pat")) == [
        ("t1", "acknowledged", "high"),
        ("t1", "resolved", "high"),
    ]


def test_the_last_will_raises_at_once() -> None:
    hub = HubCore()
    hub.state(0.0, "home", INVERTED)
    events = hub.status(0.5, "home", "offline")
    assert kinds(events) == [("home", "raised", "high")]
    assert events[0][1].message == "home: the station is offline"


def test_the_merged_list_puts_the_most_urgent_first() -> None:
    hub = HubCore()
    hub.state(
        0.0,
        "a",
        {"phase": "upright", "alarms": [{"id": "hr.low", "priority": "low", "message": "HR"}]},
    )
    hub.state(
        0.0,
        "b",
        {
            "phase": "inverted",
            "alarms": [{"id": "hr.high", "priority": "high", "message": "HR 160 > 150"}],
        },
    )
    rows = hub.alarm_list()
    assert [(r["station"], r["id"], r["source"]) for r in rows] == [
        ("b", "hr.high", "station"),
        ("a", "hr.low", "station"),
    ]


def high(station: str = "t1", acked: bool = False) -> dict:
    return {
        "station": station,
        "id": "hr.high",
        "priority": "high",
        "acknowledged": acked,
        "message": "HR 160 > 150",
    }


def test_escalation_goes_down_the_list_until_accepted_and_repeats_every_60_s() -> None:
    esc = Escalation()
    people = ["pat", "sam", "kim"]
    notices, steps = esc.due(0.0, [high()], people)
    assert [(n.person, n.repeat) for n in notices] == [("pat", False)]
    assert esc.due(29.0, [high()], people)[0] == []
    notices, steps = esc.due(30.0, [high()], people)
    assert [(n.person, n.repeat) for n in notices] == [("sam", False)]
    assert [s[2] for s in steps] == ["pat:not accepted", "sam:sent"]
    assert esc.accept("t1", "hr.high", "sam")
    assert esc.due(200.0, [high()], people)[0] == []  # accepted: no more


def test_escalation_repeats_to_the_last_person_and_a_rejection_hands_on() -> None:
    esc = Escalation()
    people = ["pat", "sam"]
    esc.due(0.0, [high()], people)
    notice = esc.reject(5.0, "t1", "hr.high", "pat", people)
    assert notice is not None
    assert notice.person == "sam"
    assert esc.due(40.0, [high()], people)[0] == []  # sam is last: stays with sam
    notices, _ = esc.due(65.0, [high()], people)
    assert [(n.person, n.repeat) for n in notices] == [("sam", True)]


def test_medium_escalates_after_30_s_and_an_acknowledge_ends_it() -> None:
    esc = Escalation()
    medium = {
        "station": "t1",
        "id": "hr.low",
        "priority": "medium",
        "acknowledged": False,
        "raised_s_ago": 10.0,
    }
    assert esc.due(0.0, [medium], ["pat"])[0] == []
    notices, _ = esc.due(20.0, [{**medium, "raised_s_ago": 30.0}], ["pat"])
    assert [n.person for n in notices] == ["pat"]
    _, steps = esc.due(25.0, [{**medium, "acknowledged": True}], ["pat"])
    assert steps == [("t1", "hr.low", "-:ended (acknowledged or resolved)")]


def test_escalation_steps_are_named_alike_on_every_replica_and_adopt_a_hand_on() -> None:
    people = ["pat", "sam"]
    a, b = Escalation(), Escalation()
    [na] = a.due(0.0, [high()], people)[0]
    [nb] = b.due(0.3, [high()], people)[0]  # another replica, a moment later
    assert na.step == nb.step == "pat:sent"
    handed = a.reject(5.0, "t1", "hr.high", "pat", people)
    assert handed is not None
    assert handed.step == "sam:sent"
    b.adopt(5.2, "t1", "hr.high", "sam", None, people)  # what the store says a did
    assert b.due(40.0, [high()], people)[0] == []  # b does not hand it on again
    [ra] = a.due(65.0, [high()], people)[0]
    [rb] = b.due(65.2, [high()], people)[0]
    assert ra.step == rb.step == "sam:repeated#1"
    b.adopt(66.0, "t1", "hr.high", "sam", "sam", people)
    assert b.due(200.0, [high()], people)[0] == []  # accepted at a: b stops too


def test_a_site_bridge_down_raises_link_lost_at_once_and_a_heartbeat_clears_it() -> None:
    from dashboard.clinic.bench import station_state

    hub = HubCore(link_timeout_s=5.0)
    hub.state(0.0, "home", station_state("home", 0.0, []))
    [(station, raised)] = hub.site(1.0, ["home"], bridge_up=False)
    assert (station, raised.id, raised.event.value, raised.value) == (
        "home",
        "link.lost",
        "raised",
        None,
    )
    assert "bridge" in raised.message
    assert hub.site(9.0, ["home"], bridge_up=True) == []  # back, but not heard from yet
    events = hub.state(10.0, "home", station_state("home", 10.0, []))
    assert [e.event.value for _, e in events] == ["cleared"]
