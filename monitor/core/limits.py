"""Limits that hold whatever the profile says (SPEC section 6).

Apart from ``monitor.core.profiles`` so that the rules and the engine can use them without
loading pydantic, which only the profiles' validation needs.
"""

from __future__ import annotations

SESSION_HARD_CAP_S = 600.0
"""Inverted time in one session at which ``session.total_limit`` is high, in every profile."""
