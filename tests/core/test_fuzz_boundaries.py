"""Hypothesis at the trace boundary: any bytes are a reading or a CodecError; any trace is
alarm events or a TraceError; ``spotter replay`` exits 0 or 2 with one line, never a
traceback. (``spotter bench faults`` runs the same checks far longer: monitor/bench/faults.)"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from monitor.bench.faults import replay as fuzz
from monitor.cli.main import app
from monitor.core.trace import TraceError, TraceReader, open_trace_bytes

pytestmark = [pytest.mark.timeout(600)]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_a_codec_error(data: bytes) -> None:
    fuzz.check_codecs(data)


@FUZZ
@given(fuzz.trace_inputs())
def test_any_trace_replays_or_raises_a_trace_error(data: bytes) -> None:
    fuzz.check_trace(data)


@FUZZ
@given(fuzz.trace_lines())
def test_any_line_after_a_good_header_is_a_record_or_an_error_naming_line_2(line: bytes) -> None:
    one_line = line.replace(b"\n", b" ").replace(b"\r", b" ")
    data = json.dumps(fuzz.HEADER).encode() + b"\n" + one_line + b"\n"
    error: TraceError | None = None
    records: list[object] = []
    try:
        records = list(TraceReader(open_trace_bytes(data), "f"))
    except TraceError as exc:
        error = exc
    if error is None:
        assert len(records) <= 1
    else:
        assert (error.line, str(error)[:5]) == (2, "f:2: ")
    fuzz.check_trace(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz.trace_inputs())
def test_spotter_replay_exits_0_or_2_with_one_line_never_a_traceback(data: bytes) -> None:
    result = CliRunner().invoke(app, ["replay", "-", "--json"], input=data)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("spotter replay")]
        assert len(errors) == 1
        assert re.match(r"spotter replay: error: <stdin>:\d+: ", errors[0])


def test_the_long_fuzz_run_reports_no_crash_and_a_cheap_evil_gap() -> None:
    figures = fuzz.run(quick=True)
    assert figures["crashes"] == 0, figures["first_crash"]
    assert figures["codec_inputs"] >= 100
    assert figures["trace_inputs"] >= 100
    assert figures["evil_gap_marks_evaluated"] < 1000 < figures["evil_gap_grid_marks"]
