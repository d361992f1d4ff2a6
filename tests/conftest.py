"""Fixtures more than one test folder uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.rig import Broker, free_port, make_password_file


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on a free 127.0.0.1 port, with the deploy ACL and the test users."""
    folder = tmp_path / "broker"
    folder.mkdir()
    make_password_file(folder / "passwd")
    b = Broker(folder, free_port())
    b.start()
    try:
        yield b
    finally:
        b.stop()
