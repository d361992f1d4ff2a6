"""``spotter replay`` as SPEC section 8 says: output, exit status, errors, determinism."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SPOTTER = [sys.executable, "-m", "monitor.cli.main"]
HEADER = {
    "spotter_trace": 1,
    "station": "home",
    "started_at": "2026-11-22T10:00:00+00:00",
    "sensors": {
        "hr": {"kind": "heart_rate"},
        "tilt": {
            "kind": "spotter_tilt",
            "calibration": {"offset_deg": 0.0, "sign": 1, "axis": "pitch"},
        },
    },
}
TILT = "f8d70002-4cbe-42f1-8950-d15fd4f1e3dc"
HRM = "00002a37-0000-1000-8000-00805f9b34fb"


def spotter(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*SPOTTER, *args], input=stdin, capture_output=True, timeout=120)


def write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.fixture(scope="module")
def over_hold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "over-hold.jsonl"
    result = spotter("sim", "trace", "over-hold", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_replaying_twice_gives_byte_identical_output(over_hold: Path) -> None:
    first = spotter("replay", str(over_hold), "--json")
    second = spotter("replay", str(over_hold), "--json")
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert len(first.stdout.splitlines()) == 9


def test_stdin_and_file_replays_agree(over_hold: Path) -> None:
    from_file = spotter("replay", str(over_hold), "--json")
    from_stdin = spotter("replay", "-", "--json", stdin=over_hold.read_bytes())
    assert from_file.stdout == from_stdin.stdout


def test_json_lines_have_the_section_7_schema_in_time_order(over_hold: Path) -> None:
    out = spotter("replay", str(over_hold), "--json").stdout.decode().splitlines()
    events = [json.loads(line) for line in out]
    assert all(
        list(e) == ["t", "id", "priority", "event", "value", "limit", "message"] for e in events
    )
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    assert events[0]["id"] == "inversion.hold_limit"
    assert events[0]["event"] == "raised"
    assert events[0]["message"] == "Inverted for 60 s (limit 60 s)"


def test_the_readable_table_names_each_alarm(over_hold: Path) -> None:
    result = spotter("replay", str(over_hold))
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "inversion.hold_limit" in text
    assert "MEDIUM" in text
    assert "escalated" in text


def test_the_standard_profile_and_age_change_the_outcome(over_hold: Path) -> None:
    out = spotter("replay", str(over_hold), "--json", "--profile", "standard", "--age", "60")
    first = json.loads(out.stdout.decode().splitlines()[0])
    assert first["limit"] == 120.0


def test_alarms_are_not_errors_but_a_trace_error_is_status_2_naming_file_and_line(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        [
            HEADER,
            {"t": 0.02, "sensor": "tilt", "char": TILT, "hex": "0001000a00c409"},
            '{"t": 0.5, "sensor": "hr", ',
        ],
    )
    result = spotter("replay", str(path), "--json")
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert f"{path}:3: not valid JSON" in lines[0]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"t": 1.0, "sensor": "nope", "char": TILT, "hex": "00"}, "not in the header"),
        ({"t": 1.0, "sensor": "tilt", "char": TILT, "hex": "zz"}, "not hexadecimal"),
        ({"t": 1.0, "input": "dance"}, "unknown input"),
        ({"t": 1.0, "input": "acknowledge"}, "acknowledge needs the alarm"),
        ({"t": 1.0, "sensor": "hr", "link": "maybe"}, "link must be"),
        ({"t": "soon", "end": True}, "t must be a number"),
        ({"t": 1.0}, "not a trace record"),
        ({"t": 0.01, "end": True}, "goes back in time"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_each_kind_of_bad_line_is_named(tmp_path: Path, line: object, problem: str) -> None:
    path = write(
        tmp_path / "t.jsonl", [HEADER, {"t": 0.5, "sensor": "hr", "link": "connected"}, line]
    )
    result = spotter("replay", str(path), "--json")
    assert result.returncode == 2
    message = result.stderr.decode()
    assert f"{path}:3:" in message
    assert problem in message


def test_a_bad_header_is_line_1(tmp_path: Path) -> None:
    bad = {**HEADER, "sensors": {"tilt": {"kind": "gyroscope"}}}
    result = spotter("replay", str(write(tmp_path / "h.jsonl", [bad])), "--json")
    assert result.returncode == 2
    assert ":1: header: sensor 'tilt': unknown sensor kind 'gyroscope'" in result.stderr.decode()


def test_an_empty_trace_and_a_missing_file_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = spotter("replay", str(empty))
    assert result.returncode == 2
    assert "empty trace" in result.stderr.decode()
    result = spotter("replay", str(tmp_path / "none.jsonl"))
    assert result.returncode == 2
    assert "No such file" in result.stderr.decode()


def test_malformed_payloads_are_counted_skipped_and_reported_at_the_end(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.jsonl",
        [
            HEADER,
            {"t": 0.5, "sensor": "hr", "char": HRM, "hex": "0648"},
            {"t": 1.0, "sensor": "hr", "char": HRM, "hex": "0148"},
            {"t": 1.5, "sensor": "tilt", "char": TILT, "hex": "0801000a006400"},
            {"t": 2.0, "sensor": "tilt", "char": TILT, "hex": ""},
            {"t": 3.0, "end": True},
        ],
    )
    result = spotter("replay", str(path), "--json")
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "sensor hr: 1 malformed notification(s) skipped" in err
    assert "sensor tilt: 2 malformed notification(s) skipped" in err


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.jsonl",
        [
            {**HEADER, "firmware": "x"},
            {"t": 0.5, "sensor": "hr", "char": HRM, "hex": "0648", "rssi": -60},
            {"t": 9.0, "input": "symptom", "note": "dizzy"},
            {"t": 10.0, "end": True},
        ],
    )
    result = spotter("replay", str(path), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout.decode().splitlines()[0])["id"] == "user.symptom"


def test_a_bad_profile_is_a_clear_error(tmp_path: Path, over_hold: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text("max_hold_s = -5\nfavourite_colour = 'red'\n")
    result = spotter("replay", str(over_hold), "--profile", str(profile))
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "max_hold_s" in err
    assert "favourite_colour: unknown key" in err


DEEP = "[" * 10_000 + "]" * 10_000
LINK_UP = json.dumps({"t": 0.5, "sensor": "hr", "link": "connected"}).encode()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"t": 1.0, "sensor": ["tilt"], "link": "connected"}', "not in the header"),
        (b'{"t": 1.0, "sensor": {"a": 1}, "char": "x", "hex": "00"}', "not in the header"),
        (b'{"t": 1e308, "end": true}', "at most 31622400 s (a year)"),
        (b'{"t": 1e12, "end": true}', "at most 31622400 s (a year)"),
        (b'{"t": 1e400, "end": true}', "not inf"),
        (b'{"t": NaN, "end": true}', "NaN is not a number"),
        (b'{"t": 1, "end": true, "x": ' + DEEP.encode() + b"}", "nested deeper than 16"),
        (DEEP.encode(), "nested deeper than 16"),
        (b"[" * 100_000 + b"]" * 100_000, "line longer than 65536"),
        (b'{"t": 1.0, "input": "symptom", "by": "\xff\xfe"}', "not UTF-8"),
        (b'{"t": 1.0, "input": "symptom", "by": "\\ud800"}', "by must be a string of UTF-8"),
        (b'{"t": 1.0, "input": ["symptom"]}', "unknown input"),
        (b'{"t": 1.0, "end": true, "pad": "' + b"x" * 70_000 + b'"}', "line longer than 65536"),
        (b'{"t": 1' + b"0" * 5000 + b', "end": true}', "not valid JSON"),
    ],
    ids=lambda v: v.decode(errors="replace")[:40] if isinstance(v, bytes) else v,
)
def test_a_hostile_line_is_status_2_naming_file_and_line(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    path = tmp_path / "evil.jsonl"
    path.write_bytes(json.dumps(HEADER).encode() + b"\n" + LINK_UP + b"\n" + line + b"\n")
    result = spotter("replay", str(path), "--json")
    assert result.returncode == 2, result.stderr.decode()
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines  # one line, no traceback
    assert f"{path}:3: " in lines[0]
    assert problem in lines[0]


def test_non_utf8_bytes_in_the_header_are_line_1(tmp_path: Path) -> None:
    result = spotter("replay", "-", stdin=b'{"spotter_trace": 1, "station": "\xc3("}\n')
    assert result.returncode == 2
    assert result.stderr.decode().strip().endswith("<stdin>:1: not UTF-8 text")


def test_a_week_long_gap_replays_at_once_with_the_events_of_its_first_minutes(
    tmp_path: Path,
) -> None:
    """The user inverts, then the trace says nothing for almost a week: replay ends (today's
    code stepped 6 million marks) with the events stepping gives in the gap's first 25 min;
    nothing changes after them."""
    from monitor.core.sensors import SensorKind, SensorSpec
    from monitor.core.trace import End, TraceHeader, TraceWriter
    from tests.core.rig import make_core, tilt_stream
    from tests.core.test_fuzz_replay_gaps import stepped

    readings = list(tilt_stream(lambda t: 30.0, until=1.0, hz=10))
    sensors = {"tilt": SensorSpec(SensorKind.SPOTTER_TILT), "hr": SensorSpec(SensorKind.HEART_RATE)}
    path = tmp_path / "gap.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        writer = TraceWriter(fh, TraceHeader(sensors, "home"))
        for record in [*readings, End(600_000.0)]:
            writer.write(record)
    expected = list(stepped([*readings, End(1500.0)], make_core("beginner")))
    assert len(expected) >= 8
    result = spotter("replay", str(path), "--json", "--profile", "beginner")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == [e.to_json_line() for e in expected]


def test_sim_trace_writes_into_a_special_file_without_replacing_it(
    tmp_path: Path, over_hold: Path
) -> None:
    """`-o /dev/null` once replaced the machine's /dev/null with a regular file (the atomic
    write renamed its .part over it); a FIFO stands in for /dev/null here."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = spotter("sim", "trace", "over-hold", "-o", str(fifo))
    reader.join(120)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the FIFO was replaced"
    assert received == [over_hold.read_bytes()]
    assert not (tmp_path / "pipe.part").exists()
