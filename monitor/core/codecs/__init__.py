"""Pure codecs: bytes <-> frozen readings for every payload of SPEC section 4.

Every decoder raises only its own subclass of :class:`CodecError`, which names the field and
shows the bytes, so the shell counts and skips a bad payload with one ``except``.
"""

from monitor.core.codecs import battery, heart_rate, spotter_tilt, witmotion
from monitor.core.codecs.errors import CodecError

__all__ = ["CodecError", "battery", "heart_rate", "spotter_tilt", "witmotion"]
