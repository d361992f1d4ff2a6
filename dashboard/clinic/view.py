"""The hub page's read model: every station as a tile, the merged alarm list, the open
escalations. Pure: what the hub knows and the time come in, a JSON-able dict goes out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.clinic.core import LINK_LOST, Escalation, HubCore, StationView

RANK = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Sites:
    """A clinic group's central hub: the site each bridged station is at, and each site's
    bridge (up: True)."""

    site_of: Mapping[str, str]
    bridges: Mapping[str, bool]


def hub_view(
    core: HubCore,
    escalation: Escalation,
    sites: Sites,
    now: float,
    escalation_people: int,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The snapshot the hub page shows, at ``now`` (the hub's clock); ``extra``: the hub's
    own keys (its problems, the malformed messages it refused)."""
    chases = [
        {
            "station": c.station,
            "alarm": c.alarm,
            "priority": c.priority,
            "with": None,
            "accepted_by": c.accepted_by,
            "message": c.message,
        }
        for c in escalation.chases.values()
    ]
    return {
        "stations": [_tile(core.stations[name], sites, now) for name in sorted(core.stations)],
        "sites": {site: {"bridge_up": up} for site, up in sorted(sites.bridges.items())},
        "alarms": core.alarm_list(),
        "escalations": chases,
        "escalation_people": escalation_people,
        **extra,
    }


def _tile(view: StationView, sites: Sites, now: float) -> dict[str, Any]:
    state = view.state or {}
    own = view.alarms.alarms.get(LINK_LOST)
    priorities = [a.get("priority") for a in state.get("alarms", [])]
    if own is not None:
        priorities.append(own.priority.label)
    highest = min(priorities, key=lambda p: RANK.get(p or "", 3), default=None)
    site = sites.site_of.get(view.name)
    return {
        "station": view.name,
        "site": site,
        "site_down": site is not None and not sites.bridges.get(site, False),
        "status": view.status,
        "silent_s": None if view.last_heard == float("-inf") else round(now - view.last_heard, 1),
        "link_lost": own is not None,
        "highest_priority": highest,
        "phase": state.get("phase"),
        "theta_deg": state.get("theta_deg"),
        "hr_bpm": state.get("hr_bpm"),
        "timers": state.get("timers", {}),
        "user": state.get("user"),
        "sensors": state.get("sensors", []),
        "alarms": len(state.get("alarms", [])) + (own is not None),
    }
