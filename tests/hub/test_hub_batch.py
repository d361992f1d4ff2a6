"""The hub stores what arrives together in one transaction: one commit for a batch, its
events shown after the commit, and a failure mid-batch keeps (and acknowledges) what came
before it and leaves what follows to come again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dashboard.clinic.links import Incoming
from dashboard.clinic.service import Hub
from dashboard.clinic.settings import HubSettings
from dashboard.clinic.store import HubStore
from monitor.bench.faults.mqtt import valid_alarm
from monitor.mqtt.protocol import HubMessage, Topics, encode

pytestmark = [pytest.mark.timeout(60)]


def alarms(acked: Counter[int], count: int) -> list[Incoming]:
    """``count`` alarm events of station ``home`` (seq 1..), each counting its acks."""
    return [
        Incoming(
            Topics.of("home").alarms,
            encode(valid_alarm("home", seq)).encode(),
            False,
            lambda seq=seq: acked.update([seq]),  # type: ignore[misc]
        )
        for seq in range(1, count + 1)
    ]


@pytest.mark.asyncio
async def test_a_batch_is_one_commit_and_shown_once_stored(tmp_path: Path) -> None:
    store = HubStore.open(tmp_path / "hub.db")
    hub = Hub(HubSettings(), store)
    commits = []
    shown_at_commit: list[int] = []

    def committing() -> None:
        commits.append(1)
        shown_at_commit.append(len(hub.events))

    store.before_commit = committing
    acked: Counter[int] = Counter()
    await hub._handle_batch(alarms(acked, 20))
    assert len(commits) == 1
    assert shown_at_commit == [0]  # nothing on the pages before the commit
    assert [e.data["seq"] for e in hub.events] == list(range(1, 21))
    assert store.last_seq("home") == 20
    assert acked == Counter(range(1, 21))  # each once
    assert len(hub.latencies_ms) == 20  # commit -> stored, each measured after the commit
    store.close()


@pytest.mark.asyncio
async def test_a_failure_mid_batch_keeps_what_came_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = HubStore.open(tmp_path / "hub.db")
    hub = Hub(HubSettings(), store)
    apply = hub._apply

    def buggy(message: HubMessage) -> None:
        if getattr(message, "seq", None) == 4:
            raise RuntimeError("a bug past parsing")
        apply(message)

    monkeypatch.setattr(hub, "_apply", buggy)
    acked: Counter[int] = Counter()
    with pytest.raises(RuntimeError, match="a bug past parsing"):
        await hub._handle_batch(alarms(acked, 8))
    assert store.last_seq("home") == 3  # kept
    assert [e.data["seq"] for e in hub.events] == [1, 2, 3]
    assert acked == Counter([1, 2, 3, 4])  # the failing one too: it must not come again
    store.close()
