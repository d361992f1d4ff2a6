"""A station with its MQTT bridge in a process of its own, for the last-will test (which kills
it): ``python -m tests.mqtt.station_proc PORT STORE``. Runs until killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.mqtt.rig import Broker, running_station


async def main(port: int, store: Path) -> None:
    broker = Broker(store.parent, port)  # only its port is used: the test runs the broker
    async with running_station(broker, store.parent, "home", discovery=False):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
