"""Home Assistant MQTT discovery for one station, pure: the payload, its topic, the birth topic.

One retained message on ``homeassistant/device/spotter_{station}/config`` (device-based
discovery) makes the station a Home Assistant device with these entities, all read from the
retained ``state`` topic (the JSON of :func:`monitor.station.status.station_state`):

=================  ==============  ==============================================  ==========
key                platform        value                                           unit
=================  ==============  ==============================================  ==========
``theta``          sensor          ``theta_deg``                                   °
``heart_rate``     sensor          ``hr_bpm``                                      bpm
``inverted_time``  sensor          ``timers.session_inverted_s`` (this session)    s
``session``        binary_sensor   running: ``phase`` is not ``idle``
``problem``        binary_sensor   problem: any alarm listed (attributes: which)
``sensors``        binary_sensor   connectivity: every configured sensor connected
=================  ==============  ==============================================  ==========

Availability: every entity follows the station's ``status`` topic (retained ``online``, last
will ``offline``), so all of them go *unavailable* when the station dies or loses the broker.

No fake numbers: when the strap (or the tilt sensor) is gone the state JSON carries
``hr_bpm: null`` (``theta_deg: null``), never 0. Those two entities then go *unavailable*
through a second availability entry on the state topic (``availability_mode: all``), and their
value template renders ``None``, which Home Assistant's MQTT sensor takes as "unknown" (its
``PAYLOAD_NONE``), so not even a stale last value is graphed as current.

Home Assistant announces itself with ``online`` on ``homeassistant/status`` when it (re)starts;
the bridge then publishes this payload again.
"""

from __future__ import annotations

from typing import Any

from monitor.settings import DISCOVERY_PREFIX

ORIGIN_NAME = "Spotter"
HA_ONLINE = "online"
"""What Home Assistant publishes on its birth topic when it starts."""


def discovery_topic(station: str, prefix: str = DISCOVERY_PREFIX) -> str:
    """Where the station's device discovery payload goes (retained)."""
    return f"{prefix}/device/spotter_{station}/config"


def birth_topic(prefix: str = DISCOVERY_PREFIX) -> str:
    """Where Home Assistant says ``online`` when it (re)starts."""
    return f"{prefix}/status"


def _present(key: str) -> str:
    """An availability template: online while ``key`` of the state JSON is not null."""
    return f"{{{{ 'online' if value_json.{key} is not none else 'offline' }}}}"


def _value_or_none(key: str) -> str:
    """A value template that renders ``None`` (Home Assistant: unknown) for a null ``key``."""
    return f"{{{{ value_json.{key} if value_json.{key} is not none else 'None' }}}}"


def discovery_config(
    station: str, *, state_topic: str, status_topic: str, sw_version: str
) -> dict[str, Any]:
    """The device discovery payload (a JSON object) for ``station``."""
    uid = f"spotter_{station}"
    station_up = {
        "topic": status_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    cmps = {
        **_sensors(uid, state_topic, station_up),
        **_binary_sensors(uid, state_topic),
    }
    for component in cmps.values():
        component.setdefault("state_topic", state_topic)
        component.setdefault("availability", [station_up])
    return {
        "dev": {
            "identifiers": [uid],
            "name": f"Spotter {station}",
            "manufacturer": "Spotter",
            "model": "Inversion table station",
            "sw_version": sw_version,
        },
        "o": {"name": ORIGIN_NAME, "sw": sw_version},
        "cmps": cmps,
        "qos": 1,
    }


def _while_present(station_up: dict[str, str], state_topic: str, key: str) -> dict[str, Any]:
    """Available while the station is up and the state has a value under ``key``."""
    return {
        "availability": [
            station_up,
            {
                "topic": state_topic,
                "value_template": _present(key),
                "payload_available": "online",
                "payload_not_available": "offline",
            },
        ],
        "availability_mode": "all",
    }


def _sensors(uid: str, state_topic: str, station_up: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The measurements: angle, heart rate, inverted time."""

    def while_present(key: str) -> dict[str, Any]:
        return _while_present(station_up, state_topic, key)

    return {
        "theta": {
            "p": "sensor",
            "name": "Angle",
            "unique_id": f"{uid}_theta",
            "icon": "mdi:angle-acute",
            "unit_of_measurement": "°",
            "state_class": "measurement",
            "suggested_display_precision": 0,
            "value_template": _value_or_none("theta_deg"),
            **while_present("theta_deg"),
        },
        "heart_rate": {
            "p": "sensor",
            "name": "Heart rate",
            "unique_id": f"{uid}_heart_rate",
            "icon": "mdi:heart-pulse",
            "unit_of_measurement": "bpm",
            "state_class": "measurement",
            "suggested_display_precision": 0,
            "value_template": _value_or_none("hr_bpm"),
            **while_present("hr_bpm"),
        },
        "inverted_time": {
            "p": "sensor",
            "name": "Inverted this session",
            "unique_id": f"{uid}_inverted_time",
            "device_class": "duration",
            "unit_of_measurement": "s",
            "state_class": "measurement",
            "value_template": _value_or_none("timers.session_inverted_s"),
        },
    }


def _binary_sensors(uid: str, state_topic: str) -> dict[str, dict[str, Any]]:
    """The on/off components: session running, an alarm, every sensor connected."""
    return {
        "session": {
            "p": "binary_sensor",
            "name": "Session",
            "unique_id": f"{uid}_session",
            "device_class": "running",
            "value_template": "{{ 'ON' if value_json.phase != 'idle' else 'OFF' }}",
        },
        "problem": {
            "p": "binary_sensor",
            "name": "Alarm",
            "unique_id": f"{uid}_problem",
            "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.alarms else 'OFF' }}",
            "json_attributes_topic": state_topic,
            "json_attributes_template": (
                "{{ {'alarms': value_json.alarms | map(attribute='id') | list,"
                " 'highest_priority': value_json.highest_priority} | tojson }}"
            ),
        },
        "sensors": {
            "p": "binary_sensor",
            "name": "Sensors",
            "unique_id": f"{uid}_sensors",
            "device_class": "connectivity",
            "value_template": (
                "{{ 'ON' if value_json.sensors"
                " and value_json.sensors | rejectattr('connected') | list | length == 0"
                " else 'OFF' }}"
            ),
        },
    }
