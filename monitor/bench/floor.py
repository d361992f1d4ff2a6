"""The replay floor: what reading a trace costs with nothing but the standard library.

Per line ``json.loads``, per notification ``bytes.fromhex`` and one ``struct`` unpack of the
fixed head, nothing else: no checks, no records, no core. ``spotter bench all`` times it in
its own process and as a whole process (``python -m monitor.bench.floor TRACE``), beside
``spotter replay`` of the same file, so each replay figure stands beside what it cannot beat
by much. Imports nothing of Spotter, so the whole-process figure is the interpreter's start
plus this loop.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterable

_HEAD = struct.Struct("<BHHh")


def parse_floor(lines: Iterable[str]) -> int:
    """Parse every line as the floor does; the number of notifications."""
    unpack = _HEAD.unpack_from
    notifications = 0
    for line in lines:
        obj = json.loads(line)
        hexstr = obj.get("hex")
        if hexstr is not None:
            data = bytes.fromhex(hexstr)
            if len(data) >= _HEAD.size:
                unpack(data)
            notifications += 1
    return notifications


def main() -> None:
    """``python -m monitor.bench.floor TRACE``: prints the notification count."""
    with open(sys.argv[1], encoding="utf-8") as fh:
        print(parse_floor(fh))


if __name__ == "__main__":
    main()
