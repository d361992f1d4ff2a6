"""The MQTT parsers (pure) against anything: any bytes on any topic become a model (or None
for an empty payload) or a :class:`Rejected`, never another exception; depth and size are
refused before a parser recurses; a real station's state and alarm pass."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.bench.faults.mqtt import malformed, valid_alarm, valid_reply
from monitor.core.trace import InputKind
from monitor.mqtt.protocol import (
    HUB_KINDS,
    MAX_DEPTH,
    AlarmMessage,
    CommandRefused,
    RateLimit,
    Rejected,
    Rejections,
    ReplyMessage,
    StateMessage,
    StatusMessage,
    command_id,
    encode,
    parse_command,
    parse_hub_message,
    parse_topic,
)
from monitor.station.assembly import assembled
from monitor.station.station import StationClock
from monitor.station.status import station_state
from tests.core.rig import make_core
from tests.station.rig import plan_like

pytestmark = pytest.mark.timeout(120)

kinds = st.sampled_from(HUB_KINDS)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["online", "home", "2026-01-01T00:00:00", "2026-01-01T00:00:00+00:00"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _parse(kind: str, payload: bytes) -> object:
    try:
        return parse_hub_message("home", kind, payload)
    except Rejected:
        return "rejected"


@settings(max_examples=300, deadline=None)
@given(kinds, st.binary(max_size=300))
def test_any_bytes_on_any_topic_parse_or_are_rejected(kind: str, payload: bytes) -> None:
    _parse(kind, payload)


@settings(max_examples=300, deadline=None)
@given(kinds, json_values)
def test_any_json_on_any_topic_parses_or_is_rejected(kind: str, value: Any) -> None:
    _parse(kind, json.dumps(value).encode())


def _mutate(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(sorted(base))
    return st.builds(
        lambda k, v, drop: (
            {kk: vv for kk, vv in base.items() if kk != k} if drop else {**base, k: v}
        ),
        keys,
        json_values,
        st.booleans(),
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_field_of_a_valid_message_changed_parses_or_is_rejected(data: st.DataObject) -> None:
    kind, base = data.draw(
        st.sampled_from([("alarms", valid_alarm("home", 3)), ("cmd/reply", valid_reply("home"))])
    )
    message = data.draw(_mutate(base))
    result = _parse(kind, json.dumps(message).encode())
    if result != "rejected":  # what passed is a typed message of the topic's station
        assert isinstance(result, AlarmMessage | ReplyMessage)
        assert result.station == "home"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=200_000), st.sampled_from([b"[", b'{"a":']))
def test_too_deep_is_rejected_before_parsing_at_any_depth(depth: int, opener: bytes) -> None:
    payload = opener * depth
    for kind in HUB_KINDS:
        assert _parse(kind, payload) == "rejected"
    with pytest.raises(CommandRefused):
        parse_command(payload)
    assert command_id(payload) is None


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = "[[[[[[[[[[{{{{{{{{{{"
    reply = {**valid_reply("home"), "error": text, "note": '"\\' + text}
    parsed = parse_hub_message("home", "cmd/reply", encode(reply).encode())
    assert parsed is not None
    assert parsed.error == text  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_command_parses_or_is_refused_and_its_id_never_raises(payload: bytes) -> None:
    with contextlib.suppress(CommandRefused):
        parse_command(payload)
    command_id(payload)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_topic_is_a_station_topic_or_rejected(topic: str) -> None:
    try:
        station, kind = parse_topic(topic)
    except Rejected:
        return
    assert topic == f"spotter/v1/{station}/{kind}"
    assert kind in HUB_KINDS


def test_every_payload_of_the_bench_table_is_rejected() -> None:
    table = malformed("home")
    for kind, payload in table:
        assert _parse(kind, payload) == "rejected", (kind, payload[:80])
    assert all(sum(1 for k, _ in table if k == kind) >= 50 for kind in {k for k, _ in table})


def test_non_finite_numbers_and_naive_times_are_rejected() -> None:
    good = valid_alarm("home", 1)
    assert isinstance(parse_hub_message("home", "alarms", encode(good).encode()), AlarmMessage)
    for raw in ("1e400", "NaN", "Infinity", "-1e400"):
        text = encode({**good, "value": "X"}).replace('"X"', raw)
        with pytest.raises(Rejected):
            parse_hub_message("home", "alarms", text.encode())
    with pytest.raises(Rejected, match="offset"):
        parse_hub_message("home", "alarms", encode({**good, "at": "2026-01-01T10:00:00"}).encode())
    with pytest.raises(Rejected, match="someone"):
        parse_hub_message("home", "alarms", encode({**good, "station": "someone"}).encode())


@pytest.mark.asyncio
async def test_a_real_station_state_parses(tmp_path: Path) -> None:
    core = make_core()
    plan = plan_like(core, tmp_path / "s.db")
    async with assembled(plan, StationClock()) as parts:
        station = parts.station
        station.problems["x"] = "a problem"
        station.user_input(InputKind.SYMPTOM)  # a listed alarm in the state
        state = station_state(station, "home")
        assert state["alarms"]
        parsed = parse_hub_message("home", "state", encode(state).encode())
        assert isinstance(parsed, StateMessage)
        assert parsed.model_dump(mode="json") == state
    assert parse_hub_message("home", "status", b"online") == StatusMessage("home", "online")
    assert parse_hub_message("home", "state", b"") is None  # a retained message deleted


def test_rejections_are_counted_per_source_and_kind_and_first_of_each_source_flagged() -> None:
    r = Rejections()
    assert r.add("home", "state", "bad") is True
    assert r.add("home", "alarms", "worse") is False
    assert r.add("clinic2", "state", "bad") is True
    assert r.total == 3
    assert r.by_source() == {"home": 2, "clinic2": 1}
    assert r.as_json() == {"clinic2/state": 1, "home/alarms": 1, "home/state": 1}
    assert r.last["home"] == "alarms: worse"


def test_the_rate_limit_allows_bursts_then_the_rate_per_source() -> None:
    limit = RateLimit(rate_per_s=10, burst=5)
    assert [limit.allow("flood", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limit.allow("home", 0.0)  # each source its own bucket
    assert not limit.allow("flood", 0.05)  # half a token back
    assert limit.allow("flood", 0.1)
    assert [limit.allow("flood", 100.0) for _ in range(6)] == [True] * 5 + [False]  # capped
