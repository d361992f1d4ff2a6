"""Fuzzing the trace boundary: codecs, the trace reader, replay and ``spotter replay``.

A trace (or a notification inside one) may come from anyone. Whatever the bytes, decoding
gives a reading or a ``CodecError``; reading and replaying gives alarm events or a
``TraceError`` naming the line; ``spotter replay`` exits 0 or 2 with one line on stderr.
Anything else is a crash. :func:`run` tries many inputs with hypothesis (a longer run than the
test suite's) and reports how many it tried, the crashes (0), and what an evil gap costs.

The checks and the input strategies are shared with ``tests/core/test_fuzz_boundaries.py``.
Hypothesis is imported when a strategy is built, so the product never needs it.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.core.codecs import CodecError, battery, heart_rate, spotter_tilt, witmotion
from monitor.core.profiles import BUILTIN
from monitor.core.replay import catch_up, core_for, replay
from monitor.core.trace import MAX_TRACE_S, TraceError, TraceReader, open_trace_bytes

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

TILT = "f8d70002-4cbe-42f1-8950-d15fd4f1e3dc"
HRM = "00002a37-0000-1000-8000-00805f9b34fb"
WIT = "0000ffe4-0000-1000-8000-00805f9a34fb"
HEADER = {
    "spotter_trace": 1,
    "station": "fuzz",
    "sensors": {"hr": {"kind": "heart_rate"}, "tilt": {"kind": "spotter_tilt"}},
}
DECODERS: tuple[Callable[[bytes], object], ...] = (
    battery.decode,
    heart_rate.decode,
    spotter_tilt.decode,
    spotter_tilt.decode_info,
    spotter_tilt.decode_control,
    witmotion.decode_frame,
)
HOSTILE_LINES: tuple[bytes, ...] = (
    b'{"t": 1e12, "end": true}',
    b'{"t": 1e308, "end": true}',
    b'{"t": 1e400, "end": true}',
    b'{"t": NaN, "end": true}',
    b'{"t": 1.0, "sensor": ["tilt"], "link": "connected"}',
    b"[" * 100_000 + b"]" * 100_000,
    b"[" * 10_000 + b"]" * 10_000,
    b'{"t": 1.0, "input": "symptom", "by": "\xff\xfe"}',
    b'{"t": 1.0, "input": "symptom", "by": "\\ud800"}',
)
"""The lines of the adversarial pass (issue 14, item 9), each a trace of its own."""


def check_codecs(data: bytes) -> None:
    """Every decoder on ``data``, and the WitMotion stream fed it in two pieces: a reading or
    CodecError (anything else propagates: a crash)."""
    for decode in DECODERS:
        with contextlib.suppress(CodecError):
            decode(data)
    stream = witmotion.WitMotionStream()
    half = len(data) // 2
    stream.feed(data[:half])
    stream.feed(data[half:])


def check_trace(data: bytes) -> int:
    """Read and replay ``data`` as a trace: the number of alarm events, or -1 for a trace
    error. Anything else propagates (a crash)."""
    try:
        reader = TraceReader(open_trace_bytes(data), "fuzz")
        core = core_for(reader, BUILTIN["beginner"], None)
        return sum(1 for _ in replay(reader, core))
    except TraceError:
        return -1


def _json_values() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from(["tilt", "hr", TILT, HRM, WIT, "connected", "symptom", "acknowledge"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=8,
    )


def trace_lines() -> SearchStrategy[bytes]:
    """One line of a near-valid trace: a record with some of its fields replaced or added,
    arbitrary JSON, or arbitrary bytes."""
    from hypothesis import strategies as st

    times = st.one_of(
        st.floats(0, 600, allow_nan=False),
        st.sampled_from([0, 1e12, 1e308, -1, MAX_TRACE_S, MAX_TRACE_S + 1, 86_399.95]),
        _json_values(),
    )
    hexes = st.binary(max_size=24).map(bytes.hex)
    records = st.one_of(
        st.fixed_dictionaries(
            {
                "t": times,
                "sensor": st.sampled_from(["tilt", "hr"]),
                "char": st.sampled_from([TILT, HRM, WIT, "00002a19-0000-1000-8000-00805f9b34fb"]),
                "hex": hexes,
            }
        ),
        st.fixed_dictionaries(
            {"t": times, "sensor": st.sampled_from(["tilt", "hr"]), "link": _json_values()}
        ),
        st.fixed_dictionaries(
            {"t": times, "input": st.sampled_from(["symptom", "silence", "acknowledge"])},
            optional={"alarm": _json_values(), "by": _json_values()},
        ),
        st.fixed_dictionaries({"t": times, "end": st.just(True)}),
    )
    mutated = st.tuples(records, st.dictionaries(st.text(max_size=6), _json_values())).map(
        lambda pair: {**pair[0], **pair[1]}
    )
    return st.one_of(
        records.map(lambda r: json.dumps(r).encode()),
        mutated.map(lambda r: json.dumps(r).encode()),
        _json_values().map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
        st.sampled_from(HOSTILE_LINES),
    )


def trace_inputs() -> SearchStrategy[bytes]:
    """A whole trace: a header (mostly valid) and lines from :func:`trace_lines`, in time
    order or not; or arbitrary bytes."""
    from hypothesis import strategies as st

    headers = st.one_of(
        st.just(json.dumps(HEADER).encode()),
        _json_values().map(lambda v: json.dumps({**HEADER, "sensors": v}).encode()),
        st.binary(max_size=32),
    )
    traces = st.tuples(headers, st.lists(trace_lines(), max_size=12)).map(
        lambda pair: b"\n".join([pair[0], *pair[1]]) + b"\n"
    )
    return st.one_of(traces, st.binary(max_size=200))


def replay_cli(data: bytes, path: Path) -> subprocess.CompletedProcess[bytes]:
    """``spotter replay PATH --json`` on ``data`` written to ``path``."""
    path.write_bytes(data)
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "replay", str(path), "--json"],
        capture_output=True,
        timeout=300,
        check=False,
    )


def evil_gap_seconds() -> tuple[float, int]:
    """Replay of a trace that goes silent until just before the latest ``t`` allowed (a
    year): the wall time and the number of grid marks evaluated (of 316 million)."""
    lines = [
        json.dumps(HEADER),
        json.dumps({"t": 0.5, "sensor": "tilt", "char": TILT, "hex": "0001000a00c409"}),
    ]
    start = time.perf_counter()
    reader = TraceReader(io.StringIO("\n".join(lines) + "\n"), "evil")
    core = core_for(reader, BUILTIN["beginner"], None)
    for record in reader:
        core.apply(record)
    evaluated = sum(1 for _ in catch_up(core, core.t, MAX_TRACE_S - 1))
    return time.perf_counter() - start, evaluated


def run(quick: bool) -> dict[str, Any]:
    """The figures: inputs tried per target, crashes (with the first one's input), the evil
    gap's cost, and (full run) the CLI's exit status on each adversarial line."""
    try:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st
    except ImportError:
        need = "the replay fuzz run needs hypothesis (pip install -e '.[dev]')"
        raise RuntimeError(need) from None

    examples = 200 if quick else 5000
    tried = {"codec_inputs": 0, "trace_inputs": 0}
    crashes: list[str] = []

    def attempt(kind: str, check: Callable[[bytes], object], data: bytes) -> None:
        tried[kind] += 1
        try:
            check(data)
        except Exception as exc:
            crashes.append(f"{kind}: {type(exc).__name__}: {exc} on {data[:120]!r}")

    fuzz = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=quick,
        suppress_health_check=list(HealthCheck),
    )

    @fuzz
    @given(st.binary(max_size=64))
    def codecs(data: bytes) -> None:
        attempt("codec_inputs", check_codecs, data)

    @fuzz
    @given(trace_inputs())
    def traces(data: bytes) -> None:
        attempt("trace_inputs", check_trace, data)

    started = time.perf_counter()
    codecs()
    traces()
    fuzz_s = time.perf_counter() - started
    gap_s, gap_marks = evil_gap_seconds()
    figures: dict[str, Any] = {
        **tried,
        "crashes": len(crashes),
        "first_crash": crashes[0] if crashes else None,
        "fuzz_seconds": round(fuzz_s, 2),
        "evil_gap_trace_s": MAX_TRACE_S - 1,
        "evil_gap_grid_marks": int((MAX_TRACE_S - 1) * 10),
        "evil_gap_marks_evaluated": gap_marks,
        "evil_gap_replay_seconds": round(gap_s, 4),
    }
    if not quick:
        figures |= _hostile_cli()
    return figures


def _hostile_cli() -> dict[str, Any]:
    """``spotter replay`` on a file of each adversarial line: its exit statuses, and how many
    runs printed a traceback."""
    statuses: list[int] = []
    tracebacks = 0
    with tempfile.TemporaryDirectory() as tmp:
        for line in HOSTILE_LINES:
            body = json.dumps(HEADER).encode() + b"\n" + line + b"\n"
            result = replay_cli(body, Path(tmp) / "hostile.jsonl")
            statuses.append(result.returncode)
            tracebacks += b"Traceback" in result.stderr
    return {
        "cli_hostile_files": len(HOSTILE_LINES),
        "cli_exit_statuses": sorted(set(statuses)),
        "cli_tracebacks": tracebacks,
    }
