"""The base of every codec's own error."""

from __future__ import annotations


class CodecError(ValueError):
    """A payload broke its protocol. Names the codec, the field and shows the bytes.

    Each codec raises exactly one subclass of this, so a caller can count and skip bad
    payloads with ``except CodecError`` and nothing else.
    """

    codec = "payload"

    def __init__(self, field: str, problem: str, data: bytes) -> None:
        self.field = field
        self.problem = problem
        self.data = bytes(data)
        shown = self.data.hex(" ") if self.data else "(empty)"
        super().__init__(f"{self.codec}: {problem} [field {field}] in bytes {shown}")
