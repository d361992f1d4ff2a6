"""Trace reading and writing (SPEC section 5)."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator

import pytest

from monitor.core.sensors import Calibration, SensorKind, SensorSpec
from monitor.core.trace import (
    End,
    InputKind,
    LinkChange,
    Notification,
    TraceError,
    TraceHeader,
    TraceReader,
    TraceWriter,
    UserInput,
)

SPEC_EXAMPLE = """\
{"spotter_trace": 1, "station": "home", "started_at": "2026-11-22T10:00:00+00:00", "sensors": {"hr": {"kind": "heart_rate"}, "tilt": {"kind": "spotter_tilt", "calibration": {"offset_deg": 0.0, "sign": 1, "axis": "pitch"}}}}
{"t": 0.020, "sensor": "tilt", "char": "f8d70002-4cbe-42f1-8950-d15fd4f1e3dc", "hex": "0001000a00c409"}
{"t": 0.500, "sensor": "hr", "char": "00002a37-0000-1000-8000-00805f9b34fb", "hex": "16466e03"}
{"t": 7.000, "sensor": "hr", "link": "disconnected"}
{"t": 9.000, "input": "symptom"}
{"t": 12.00, "input": "acknowledge", "alarm": "user.symptom", "by": "anna"}
{"t": 300.0, "end": true}
"""


def test_the_spec_example_reads() -> None:
    reader = TraceReader(io.StringIO(SPEC_EXAMPLE), "example")
    assert reader.header.station == "home"
    assert reader.header.sensors["tilt"].calibration == Calibration(0.0, 1, "pitch")
    records = list(reader)
    assert records == [
        Notification(
            0.02, "tilt", "f8d70002-4cbe-42f1-8950-d15fd4f1e3dc", bytes.fromhex("0001000a00c409")
        ),
        Notification(0.5, "hr", "00002a37-0000-1000-8000-00805f9b34fb", bytes.fromhex("16466e03")),
        LinkChange(7.0, "hr", False),
        UserInput(9.0, InputKind.SYMPTOM),
        UserInput(12.0, InputKind.ACKNOWLEDGE, "user.symptom", "anna"),
        End(300.0),
    ]


def test_calibration_defaults_per_kind() -> None:
    header = json.dumps({"spotter_trace": 1, "sensors": {"w": {"kind": "witmotion"}}})
    reader = TraceReader(io.StringIO(header + "\n"), "x")
    assert reader.header.sensors["w"].calibration == Calibration(0.0, 1, "y")


def test_writer_output_reads_back_the_same() -> None:
    header = TraceHeader(
        {
            "tilt": SensorSpec(SensorKind.WITMOTION, Calibration(1.5, -1, "x")),
            "hr": SensorSpec(SensorKind.HEART_RATE),
        },
        "clinic-3",
    )
    records = [
        LinkChange(0.0, "tilt", True),
        Notification(0.01, "tilt", "0000ffe4-0000-1000-8000-00805f9a34fb", b"\x55\x61\x00"),
        UserInput(1.25, InputKind.SILENCE),
        UserInput(2.5, InputKind.ACKNOWLEDGE, "hr.high", "bo"),
        End(3.0),
    ]
    out = io.StringIO()
    writer = TraceWriter(out, header)
    for r in records:
        writer.write(r)
    reader = TraceReader(io.StringIO(out.getvalue()), "x")
    assert reader.header.sensors == header.sensors
    assert list(reader) == records


def test_the_reader_streams_and_never_reads_ahead() -> None:
    pulled = 0

    def lines() -> Iterator[str]:
        nonlocal pulled
        yield SPEC_EXAMPLE.splitlines(keepends=True)[0]
        for i in itertools.count():
            pulled += 1
            yield json.dumps({"t": i * 0.01, "sensor": "hr", "link": "connected"}) + "\n"

    class Stream:
        """An endless text stream: reads from the generator, one line per readline."""

        def __init__(self) -> None:
            self.lines = lines()

        def readline(self, limit: int) -> str:
            return next(self.lines)

    reader = TraceReader(Stream(), "endless")  # type: ignore[arg-type]
    first = list(itertools.islice(reader, 1000))
    assert len(first) == 1000
    assert pulled == 1000  # an endless trace is read one line at a time


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("", 1, "empty trace"),
        ('{"t": 0, "end": true}\n', 1, "must be the header"),
        ('{"spotter_trace": 2, "sensors": {}}\n', 1, "unsupported spotter_trace version"),
        ('{"spotter_trace": 1, "sensors": {}}\n', 1, "sensors must be an object"),
        (
            '{"spotter_trace": 1, "sensors": {"a": {"kind": "heart_rate"}, "b": {"kind": "heart_rate"}}}\n',
            1,
            "more than one heart-rate sensor",
        ),
        (
            '{"spotter_trace": 1, "sensors": {"a": {"kind": "spotter_tilt", "calibration": {"sign": 2}}}}\n',
            1,
            "sign must be 1 or -1",
        ),
        (
            '{"spotter_trace": 1, "sensors": {"a": {"kind": "spotter_tilt", "calibration": {"offset_deg": 1e400}}}}\n',
            1,
            "offset_deg inf outside -180..180",
        ),
        (
            '{"spotter_trace": 1, "sensors": {"a": {"kind": "heart_rate"}}}\n{"t": 1, "end": true}\n{"spotter_trace": 1}\n',
            3,
            "a second header",
        ),
        (
            '{"spotter_trace": 1, "sensors": {"a": {"kind": "heart_rate"}}}\n\n{"t": -1, "end": true}\n',
            3,
            "not negative",
        ),
    ],
)
def test_trace_errors_name_the_file_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(TraceError) as info:
        list(TraceReader(io.StringIO(text), "f.jsonl"))
    assert info.value.line == line
    assert str(info.value).startswith(f"f.jsonl:{line}: ")
    assert problem in str(info.value)
