"""The station's state as one JSON-able object: what the dashboard shows, what MQTT's
``state`` topic carries, what the service reports. Built from the station's read model
(:func:`monitor.core.station_view.state_json`); this adds the wall-clock time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.core.station_view import ViewSource, state_json


def station_state(station: ViewSource, name: str = "") -> dict[str, Any]:
    """Phase, theta, heart rate, timers against limits, sensors, listed alarms, problems."""
    return state_json(station.view(), name, datetime.now().astimezone())
