"""What a user is screened for and what is checked before a start (SPEC section 6): data only.

The session flow (``monitor.station.flow``) decides with them; the CLI's option help and the
dashboard show them. Kept apart from the flow so that ``spotter --help`` need not load the
store and the profiles to print them.
"""

from __future__ import annotations

CONTRAINDICATIONS: dict[str, str] = {
    "high_blood_pressure": "high blood pressure",
    "heart_disease": "heart disease",
    "eye_disease": "glaucoma or other eye disease",
    "retinal_detachment": "retinal detachment",
    "osteoporosis": "osteoporosis",
    "recent_fracture": "a recent fracture",
    "hernia": "hernia",
    "severe_disc_herniation": "severe disc herniation",
    "inner_ear_problems": "inner-ear problems",
    "ear_infection": "ear infection",
    "pregnancy": "pregnancy",
    "cerebral_sclerosis": "cerebral sclerosis",
    "blood_thinners": "blood-thinning medication",
    "obesity": "obesity",
}
"""Every contraindication the sources name (SPEC section 6), by key."""

CHECKLIST: dict[str, str] = {
    "ankle_clamps_locked": "the ankle clamps are locked",
    "spotter_present": "a spotter is present",
    "warm_up_done": "a warm-up is done",
}
