"""Pushes to the spotter's phone: real apprise ``json://`` deliveries to a local HTTP receiver,
the schedule on explicit station times (no 60 s waits), retries, and a safety loop that never
waits on the network."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.core.alarms import Alarm, Latch, Priority
from monitor.core.engine import SafetyCore
from monitor.core.station_view import AlarmView, CoreViews
from monitor.settings import PushConfig, redact
from monitor.sinks.push import (
    Outbox,
    PushConfigError,
    PushMessage,
    PushSchedule,
    PushSink,
    PushStats,
    apprise_sender,
)
from tests.core.rig import make_core
from tests.station.drive import hold, publish

pytestmark = pytest.mark.timeout(30)

LOW, MEDIUM, HIGH = Priority.LOW, Priority.MEDIUM, Priority.HIGH
HOLD_HIGH = {"inversion.hold_limit": (HIGH, 130.0, 120.0)}
HR_MEDIUM = {"hr.high": (MEDIUM, 130.0, 120.0)}
FAST = {"retry_first_s": 0.01, "retry_max_s": 0.05}


class Receiver:
    """An HTTP server on 127.0.0.1 that records apprise's JSON posts.

    ``statuses`` are answered in turn (the last one from then on); a cleared ``gate`` holds
    every answer back until it is set.
    """

    def __init__(self) -> None:
        self.posts: queue.Queue[dict[str, Any]] = queue.Queue()
        self.statuses = [200]
        self.requests = 0
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self.answered = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                status = receiver.statuses[min(receiver.requests, len(receiver.statuses)) - 1]
                receiver.posts.put(json.loads(body) | {"status": status, "path": self.path})
                receiver.arrived.set()
                assert receiver.gate.wait(20)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, secret: str = "spotter:hunter2@") -> str:
        return f"json://{secret}127.0.0.1:{self.port}/hook"

    def next(self) -> dict[str, Any]:
        return self.posts.get(timeout=10)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def push_sink(url: str, **config: Any) -> PushSink:
    core = make_core("standard")
    return PushSink(CoreViews(core), PushConfig(urls=[url], **FAST | config), "home")


def core_of(sink: PushSink) -> SafetyCore:
    """The core behind a sink built by :func:`push_sink`."""
    assert isinstance(sink.source, CoreViews)
    return sink.source.core


# -- the schedule, end to end ------------------------------------------------------------


def test_high_alarm_is_pushed_at_once_then_every_60_s_until_acknowledged(
    receiver: Receiver,
) -> None:
    sink = push_sink(receiver.url())
    core = core_of(sink)
    publish([sink], core.alarms.update(0.0, HOLD_HIGH, True))
    first = receiver.next()
    assert first["message"] == "HIGH · home · Inverted for 130 s (limit 120 s)"
    assert first["title"] == "Spotter home: HIGH alarm"
    assert (first["type"], first["path"]) == ("failure", "/hook")

    for t in (0.1, 30.0, 59.9):
        sink.tick(t)
    assert sink.pushed == 1
    sink.tick(60.0)
    assert receiver.next()["message"] == (
        "HIGH · home · Inverted for 130 s (limit 120 s) · unacknowledged for 60 s"
    )
    sink.tick(120.0)
    assert sink.pushed == 3
    assert sink.flush(10)  # delivered before the acknowledge, which would cancel it
    publish([sink], core.alarms.acknowledge(150.0, "inversion.hold_limit"))
    hold(core, [sink], HOLD_HIGH, 150.0, 270.0, inverted=True)  # acknowledged: quiet
    assert sink.pushed == 3
    hold(core, [sink], HOLD_HIGH, 270.0, 271.0, inverted=True)  # 120 s later it sounds again
    assert sink.pushed == 4
    assert sink.flush(10)
    sink.close()

    assert receiver.next()["message"].endswith("(limit 120 s) · unacknowledged for 120 s")
    assert receiver.next()["message"] == "HIGH · home · Inverted for 130 s (limit 120 s)"
    assert sink.stats == PushStats(sent=4)
    assert receiver.posts.empty()


def test_medium_alarm_is_pushed_after_30_s_unacknowledged(receiver: Receiver) -> None:
    sink = push_sink(receiver.url())
    core = core_of(sink)
    hold(core, [sink], HR_MEDIUM, 0.0, 30.0)
    assert sink.pushed == 0
    hold(core, [sink], HR_MEDIUM, 30.0, 30.1)
    assert sink.pushed == 1
    pushed = receiver.next()
    assert pushed["message"] == "MEDIUM · home · HR 130 > 120 · unacknowledged for 30 s"
    assert pushed["type"] == "warning"
    hold(core, [sink], HR_MEDIUM, 30.1, 90.1)
    assert sink.pushed == 2  # again 60 s later
    assert sink.flush(10)  # delivered before the acknowledge, which would cancel it
    publish([sink], core.alarms.acknowledge(100.0, "hr.high"))
    hold(core, [sink], HR_MEDIUM, 100.0, 200.0)
    assert sink.pushed == 2
    assert sink.flush(10)
    sink.close()
    assert sink.stats.sent == 2


def test_a_medium_alarm_acknowledged_within_30_s_is_never_pushed(receiver: Receiver) -> None:
    sink = push_sink(receiver.url())
    core = core_of(sink)
    hold(core, [sink], HR_MEDIUM, 0.0, 20.0)
    publish([sink], core.alarms.acknowledge(20.0, "hr.high"))
    hold(core, [sink], HR_MEDIUM, 20.0, 100.0)
    sink.close()
    assert sink.pushed == 0
    assert receiver.requests == 0


def test_escalation_to_high_is_pushed_at_once(receiver: Receiver) -> None:
    sink = push_sink(receiver.url())
    core = core_of(sink)
    wants = {"inversion.hold_limit": (MEDIUM, 121.0, 120.0)}
    hold(core, [sink], wants, 0.0, 29.9, inverted=True)
    assert sink.pushed == 0
    hold(core, [sink], wants, 29.9, 30.1, inverted=True)  # unacknowledged 30 s inverted: high
    assert core.alarms.alarms["inversion.hold_limit"].priority is HIGH
    assert sink.pushed == 1
    assert receiver.next()["message"].startswith("HIGH · home · Inverted for 121 s")
    sink.close()


# -- failures and the safety loop --------------------------------------------------------


def test_a_500_is_logged_and_retried(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [500, 200]
    caplog.set_level(logging.DEBUG)
    sink = push_sink(receiver.url())
    publish([sink], core_of(sink).alarms.update(0.0, HOLD_HIGH, True))
    assert receiver.next()["status"] == 500
    assert receiver.next()["status"] == 200
    assert sink.flush(10)
    sink.close()

    assert sink.stats == PushStats(sent=1, failed=1)
    failed = [r.getMessage() for r in caplog.records if r.name == "monitor.sinks.push"]
    assert any(
        "push of high inversion.hold_limit to json://***@127.0.0.1" in m
        and "failed (not delivered, attempt 1); retrying" in m
        for m in failed
    )
    assert "hunter2" not in caplog.text
    assert sink.problem is None


def test_a_receiver_that_is_down_is_retried_with_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    url = f"json://127.0.0.1:{port}/hook"
    inner = apprise_sender([url])
    attempts: list[bool] = []
    third = threading.Event()

    def send(target: int, message: PushMessage) -> bool:
        if len(attempts) == 3:
            third.set()  # the third failure has been counted before the fourth attempt
        ok = inner(target, message)
        attempts.append(ok)
        return ok

    core = make_core("standard")
    sink = PushSink(CoreViews(core), PushConfig(urls=[url], **FAST), "home", send=send)
    publish([sink], core.alarms.update(0.0, HOLD_HIGH, True))
    assert third.wait(10)
    stats = sink.stats
    assert stats.failed >= 3
    assert stats.sent == 0
    assert stats.pending == 1
    assert sink.problem == f"push failing to json://127.0.0.1:{port}/***"
    publish([sink], core.alarms.acknowledge(1.0, "inversion.hold_limit"))  # stops the retries
    assert sink.flush(10)
    sink.close()
    assert not any(attempts)
    assert sink.stats.retrying == 0
    assert sink.stats.cancelled == 1
    assert "retrying in" in caplog.text


@pytest.mark.asyncio
async def test_the_safety_loop_does_not_wait_for_a_slow_receiver(receiver: Receiver) -> None:
    receiver.gate.clear()
    sink = push_sink(receiver.url())
    core = core_of(sink)
    publish([sink], core.alarms.update(0.0, HOLD_HIGH, True))  # the push starts in the worker
    assert await asyncio.to_thread(receiver.arrived.wait, 10)
    hold(core, [sink], HOLD_HIGH, 0.1, 61.0, inverted=True)  # 600 ticks, a repeat queued
    assert not receiver.answered.is_set()  # every call above returned before the answer
    assert sink.stats.pending == 2
    receiver.gate.set()
    assert await asyncio.to_thread(sink.flush, 10)
    sink.close()
    assert sink.stats.sent == 2


def test_a_full_queue_drops_its_oldest_non_high_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate, busy = threading.Event(), threading.Event()
    delivered: list[str] = []

    def send(target: int, message: PushMessage) -> bool:
        busy.set()
        assert gate.wait(20)
        delivered.append(message.alarm_id)
        return True

    def message(alarm_id: str, priority: Priority) -> PushMessage:
        return PushMessage(0.0, alarm_id, priority, "t", "b", 0)

    outbox = Outbox(send, ["json://127.0.0.1:1/***"], queue_size=2)
    outbox.put(message("first", HIGH))
    assert busy.wait(10)  # in flight: the queue is empty again
    outbox.put(message("a", MEDIUM))
    outbox.put(message("b", MEDIUM))
    outbox.put(message("c", HIGH))
    outbox.put(message("d", MEDIUM))
    outbox.put(message("d", MEDIUM))  # the same alarm again replaces the waiting one
    gate.set()
    assert outbox.flush(10)
    outbox.close()

    assert delivered == ["first", "c", "d"]
    assert outbox.stats == PushStats(sent=3, dropped=2, cancelled=1)
    dropped = [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()]
    assert dropped == [
        "push queue full (2): dropped medium a to json://127.0.0.1:1/***",
        "push queue full (2): dropped medium b to json://127.0.0.1:1/***",
    ]


# -- the pure schedule -------------------------------------------------------------------


def describe(alarm_id: str, priority: Priority, value: float | None, limit: float | None) -> str:
    return f"{alarm_id} {value} / {limit}"


def view(alarm: Alarm) -> AlarmView:
    return AlarmView.of(alarm, describe(alarm.id, alarm.priority, alarm.value, alarm.limit))


def test_schedule_low_never_latched_high_until_acknowledged_resolved_stops() -> None:
    schedule = PushSchedule("home")
    low = Alarm("day.total_limit", (LOW, 901.0, 900.0), Latch.NO, 0.0)
    high = Alarm("motion.impact", (HIGH, 3.5, 3.0), Latch.YES, 0.0)
    messages, stopped = schedule.due(0.0, [view(low), view(high)])
    assert [(m.alarm_id, m.repeat) for m in messages] == [("motion.impact", 0)]
    high.condition = False  # latched: still listed, still unacknowledged
    messages, _ = schedule.due(60.0, [view(low), view(high)])
    assert [(m.alarm_id, m.repeat) for m in messages] == [("motion.impact", 1)]
    assert messages[0].body == (
        "HIGH · home · motion.impact 3.5 / 3.0 · condition cleared · unacknowledged for 60 s"
    )
    messages, stopped = schedule.due(70.0, [view(low)])  # resolved
    assert (messages, stopped) == ([], ["motion.impact"])
    assert schedule.due(1000.0, [view(low)]) == ([], [])


# -- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://user:hunter2@127.0.0.1:8080/path?token=abc", "json://***@127.0.0.1:8080/***"),
        ("tgram://123456789:AbCdEf/12345", "tgram://***/***"),
        ("ntfys://my-secret-topic", "ntfys://***"),
        ("ntfy://ntfy.sh/my-secret-topic", "ntfy://ntfy.sh/***"),
        ("mailtos://user:pass@gmail.com", "mailtos://***@gmail.com"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***/***"),
        ("json://[::1]:80/x", "json://[::1]:80/***"),
        ("not a url", "***"),
    ],
)
def test_redact_hides_everything_but_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_urls_never_show_in_the_config_or_its_errors(caplog: pytest.LogCaptureFixture) -> None:
    config = PushConfig(urls=["tgram://123456789:hunter2/12345"])
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.model_dump())
    with pytest.raises(ValidationError) as bad:
        PushConfig(urls=["hunter2"])
    assert "urls[0] is not a URL" in str(bad.value)
    assert "hunter2" not in str(bad.value)
    with pytest.raises(PushConfigError, match=r"push.urls\[0\] \(tgram://\*\*\*\)") as unusable:
        apprise_sender(["tgram://hunter2"])
    assert "hunter2" not in str(unusable.value)
    assert "hunter2" not in caplog.text


def test_no_urls_or_disabled_means_no_worker() -> None:
    core = make_core()
    for config in (PushConfig(), PushConfig(enabled=False, urls=["json://127.0.0.1:1"])):
        sink = PushSink(CoreViews(core), config, "home")
        hold(core, [sink], HOLD_HIGH, 0.0, 1.0, inverted=True)
        assert sink.outbox is None
        assert sink.stats == PushStats()
        assert sink.problem is None
        sink.close()
