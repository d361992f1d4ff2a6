"""The next deadline among candidate times: how the pure core tells replay how far a gap in
``t`` may be jumped (see :meth:`monitor.core.engine.SafetyCore.next_change`)."""

from __future__ import annotations

import math
from collections.abc import Iterable

SLACK_S = 1e-6
"""A candidate this close to now still counts: "held for d s" is tested as ``t - since >= d``,
which float rounding can make false at ``t == since + d``; the change then comes at the next
step, and the deadline must not be dropped before it. (Well above the rounding error of
times below a week, well below the 0.1 s grid.)"""


def earliest(t: float, times: Iterable[float]) -> float:
    """The earliest of ``times`` not before ``t`` (less :data:`SLACK_S`); infinity if none."""
    return min((x for x in times if x > t - SLACK_S), default=math.inf)
