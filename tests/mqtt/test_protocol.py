"""The pure parts of the MQTT bridge, with no broker: topics, commands, payloads, the
configuration, the Home Assistant discovery payload, and finding the store's last sequence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.core.alarms import AlarmEvent, EventKind, Priority
from monitor.mqtt import homeassistant
from monitor.mqtt.outbound import latest_seq
from monitor.mqtt.protocol import (
    Acknowledge,
    CommandRefused,
    EndSession,
    Silence,
    Topics,
    alarm_payload,
    command_id,
    parse_command,
)
from monitor.settings import MqttConfig
from monitor.store.station_store import Store

pytestmark = pytest.mark.timeout(30)


def test_topics_of_a_station() -> None:
    t = Topics.of("clinic2")
    assert t.status == "spotter/v1/clinic2/status"
    assert t.state == "spotter/v1/clinic2/state"
    assert t.telemetry == "spotter/v1/clinic2/telemetry"
    assert t.alarms == "spotter/v1/clinic2/alarms"
    assert t.cmd == "spotter/v1/clinic2/cmd"
    assert t.reply == "spotter/v1/clinic2/cmd/reply"


@pytest.mark.parametrize("name", ["", "a/b", "+", "#", "home station", "é"])
def test_a_station_name_must_be_a_topic_level_and_a_user_name(name: str) -> None:
    with pytest.raises(ValueError, match="station name"):
        Topics.of(name)


def test_commands_parse_into_their_models() -> None:
    ack = parse_command(b'{"cmd": "acknowledge", "alarm": "hr.high", "by": "Ana", "id": "7"}')
    assert ack == Acknowledge(cmd="acknowledge", alarm="hr.high", by="Ana", id="7")
    assert parse_command(b'{"cmd": "silence", "by": "Ana"}') == Silence(cmd="silence", by="Ana")
    assert isinstance(parse_command(b'{"cmd": "end_session", "by": "Ana"}'), EndSession)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "Invalid JSON"),
        (b"{", "Invalid JSON"),
        (b"null", "object"),
        (b'{"cmd": "reboot", "by": "x"}', "cmd"),
        (b'{"by": "x"}', "cmd"),
        (b'{"cmd": "acknowledge", "by": "x"}', "alarm: Field required"),
        (b'{"cmd": "acknowledge", "alarm": "hr.high"}', "by: Field required"),
        (b'{"cmd": "acknowledge", "alarm": "hr.high", "by": ""}', "by"),
        (b'{"cmd": "acknowledge", "alarm": "../etc", "by": "x"}', "alarm"),
        (b'{"cmd": "silence", "by": "x", "for_s": 600}', "for_s: unknown key"),
        (b'{"cmd": "end_session", "by": "x", "id": 5}', "id"),
        (b" " * 5000, "5000 bytes"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(CommandRefused, match=why):
        parse_command(payload)


def test_a_refused_command_keeps_its_id_for_the_reply() -> None:
    assert command_id(b'{"cmd": "nope", "id": "abc"}') == "abc"
    assert command_id(b'{"id": 5}') is None
    assert command_id(b"\xff") is None
    assert command_id(b"[]") is None


def test_an_alarm_event_payload_is_the_spec_object_plus_seq(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    try:
        event = AlarmEvent(62.0, "inversion.hold_limit", Priority.MEDIUM, EventKind.RAISED, 60.0,
                           60.0, "Inverted for 60 s (limit 60 s)")  # fmt: skip
        store.commit_events("home", None, [event])
        payload = alarm_payload(store.events_since(0)[0])
    finally:
        store.close()
    assert payload == {**event.to_json(), "seq": 1, "station": "home", "at": payload["at"]}
    assert json.loads(json.dumps(payload)) == payload


def test_latest_seq_finds_the_end_without_reading_everything(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    try:
        assert latest_seq(store) == 0
        event = AlarmEvent(1.0, "user.symptom", Priority.MEDIUM, EventKind.RAISED, 0.0, 5.0, "x")
        for n in (1, 2, 5, 57, 200):
            store.commit_events("home", None, [event] * n)
            assert latest_seq(store) == len(store.events_since(0))
    finally:
        store.close()


def test_mqtt_config_defaults_and_consistency(tmp_path: Path) -> None:
    c = MqttConfig()
    assert not c.enabled
    assert c.broker_port == 1883
    assert c.tls_context() is None
    assert MqttConfig(tls=True).broker_port == 8883
    assert MqttConfig(tls=True, port=9000).broker_port == 9000
    with pytest.raises(ValidationError, match="tls = true"):
        MqttConfig(ca_file=tmp_path / "ca.crt")
    with pytest.raises(ValidationError, match="go together"):
        MqttConfig(tls=True, cert_file=tmp_path / "c.crt")
    with pytest.raises(ValidationError, match="state_every_s"):
        MqttConfig(state_every_s=2)  # the heartbeat is at least every second
    with pytest.raises(ValidationError, match=r"unknown|extra"):
        MqttConfig(hostname="x")  # type: ignore[call-arg]


def test_the_password_stays_secret() -> None:
    c = MqttConfig(password="hunter2-secret")  # type: ignore[arg-type]
    assert "hunter2-secret" not in repr(c)
    assert "hunter2-secret" not in str(c.model_dump())
    with pytest.raises(ValidationError) as bad:
        MqttConfig(password="hunter2-secret", port="x")  # type: ignore[arg-type]
    assert "hunter2-secret" not in str(bad.value)


# -- Home Assistant discovery --------------------------------------------------------------

HOME = Topics.of("home")


def discovery() -> dict:  # type: ignore[type-arg]
    return homeassistant.discovery_config(
        "home", state_topic=HOME.state, status_topic=HOME.status, sw_version="1.2.3"
    )


def test_discovery_payload_has_the_documented_keys() -> None:
    payload = discovery()
    assert homeassistant.discovery_topic("home") == "homeassistant/device/spotter_home/config"
    assert payload["dev"]["identifiers"] == ["spotter_home"]
    assert payload["dev"]["name"] == "Spotter home"
    assert payload["o"] == {"name": "Spotter", "sw": "1.2.3"}
    cmps = payload["cmps"]
    assert set(cmps) == {"theta", "heart_rate", "inverted_time", "session", "problem", "sensors"}
    unique = [c["unique_id"] for c in cmps.values()]
    assert len(set(unique)) == len(unique)
    for key, component in cmps.items():
        assert component["p"] in {"sensor", "binary_sensor"}, key
        assert component["unique_id"].startswith("spotter_home_"), key
        assert component["state_topic"] == HOME.state, key
        assert "value_json" in component["value_template"], key
        station_up = component["availability"][0]
        assert station_up == {
            "topic": HOME.status,
            "payload_available": "online",
            "payload_not_available": "offline",
        }, key
    assert cmps["theta"]["unit_of_measurement"] == "°"
    assert cmps["heart_rate"]["unit_of_measurement"] == "bpm"
    for key in ("theta", "heart_rate"):
        assert cmps[key]["state_class"] == "measurement"
        assert "device_class" not in cmps[key]  # Home Assistant has none for angle or HR
    assert cmps["inverted_time"]["unit_of_measurement"] == "s"
    assert cmps["session"]["device_class"] == "running"
    assert cmps["problem"]["device_class"] == "problem"
    assert cmps["sensors"]["device_class"] == "connectivity"
    assert json.loads(json.dumps(payload)) == payload


def test_heart_rate_is_never_a_fake_zero() -> None:
    """A null hr_bpm makes the entity unavailable (a second availability entry on the state
    topic, all must hold) and its value None (unknown), never 0."""
    hr = discovery()["cmps"]["heart_rate"]
    assert hr["availability_mode"] == "all"
    assert hr["availability"][1] == {
        "topic": HOME.state,
        "value_template": "{{ 'online' if value_json.hr_bpm is not none else 'offline' }}",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    assert hr["value_template"] == (
        "{{ value_json.hr_bpm if value_json.hr_bpm is not none else 'None' }}"
    )
    assert "| int" not in hr["value_template"]
    assert "default" not in hr["value_template"]


def test_discovery_templates_render_as_home_assistant_would() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(autoescape=False)
    env.filters["tojson"] = json.dumps
    cmps = discovery()["cmps"]

    def render(template: str, state: dict) -> str:  # type: ignore[type-arg]
        return str(env.from_string(template).render(value_json=state))

    gone = {"hr_bpm": None, "theta_deg": None, "phase": "idle", "alarms": [], "sensors": []}
    here = {"hr_bpm": 72.0, "theta_deg": 31.5, "phase": "inverted", "alarms": [{"id": "a"}],
            "sensors": [{"connected": True}]}  # fmt: skip
    hr = cmps["heart_rate"]
    assert render(hr["value_template"], gone) == "None"
    assert render(hr["availability"][1]["value_template"], gone) == "offline"
    assert render(hr["value_template"], here) == "72.0"
    assert render(hr["availability"][1]["value_template"], here) == "online"
    assert render(cmps["session"]["value_template"], here) == "ON"
    assert render(cmps["problem"]["value_template"], gone) == "OFF"
    assert render(cmps["sensors"]["value_template"], here) == "ON"
    assert render(cmps["sensors"]["value_template"], gone) == "OFF"
