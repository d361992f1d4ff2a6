"""Codecs: the public byte vectors, round trips and fuzzing (SPEC section 4)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.codecs import CodecError, battery, heart_rate, spotter_tilt, witmotion
from monitor.core.codecs.heart_rate import Contact, HeartRateMeasurement
from monitor.core.codecs.spotter_tilt import AnkleLock, ControlCommand, ControlOp, TiltMeasurement

VECTORS = json.loads((Path(__file__).parent / "codecs_vectors.json").read_text())["vectors"]
ERRORS: dict[str, type[CodecError]] = {
    "heart_rate": heart_rate.HeartRateError,
    "battery": battery.BatteryError,
    "spotter_tilt": spotter_tilt.TiltError,
    "control_point": spotter_tilt.ControlPointError,
    "sensor_info": spotter_tilt.SensorInfoError,
    "witmotion_frame": witmotion.WitMotionError,
}


def _decode(codec: str, data: bytes) -> dict[str, Any]:
    """Decode with the named codec into the vectors' descriptive field names."""
    if codec == "heart_rate":
        m = heart_rate.decode(data)
        return {
            "bpm": m.bpm,
            "contact": m.contact.value,
            "energy_kj": m.energy_kj,
            "rr_s": list(m.rr_s),
        }
    if codec == "battery":
        return {"percent": battery.decode(data).percent}
    if codec == "spotter_tilt":
        t = spotter_tilt.decode(data)
        return {
            "seq": t.seq,
            "sensor_ms": t.sensor_ms,
            "pitch_deg": t.pitch_deg,
            "accel_g": None if t.accel_g is None else list(t.accel_g),
            "gyro_dps": None if t.gyro_dps is None else list(t.gyro_dps),
            "lock": None if t.lock is None else t.lock.value,
        }
    if codec == "control_point":
        c = spotter_tilt.decode_control(data)
        out: dict[str, Any] = {"op": c.op.name.lower()}
        if c.rate_hz is not None:
            out["hz"] = c.rate_hz
        return out
    if codec == "sensor_info":
        i = spotter_tilt.decode_info(data)
        return {
            "spec_version": i.spec_version,
            "rate_hz": i.rate_hz,
            "firmware_build": i.firmware_build,
        }
    if codec == "witmotion_frame":
        f = witmotion.decode_frame(data)
        return {
            "accel_g": list(f.accel_g),
            "gyro_dps": list(f.gyro_dps),
            "angle_deg": list(f.angle_deg),
        }
    raise AssertionError(codec)


def _vid(v: dict[str, Any]) -> str:
    return f"{v['codec']}-{v.get('hex', 'stream')}"


@pytest.mark.parametrize("vector", [v for v in VECTORS if "expect" in v and "hex" in v], ids=_vid)
def test_valid_vector_decodes_as_published(vector: dict[str, Any]) -> None:
    assert _decode(vector["codec"], bytes.fromhex(vector["hex"])) == vector["expect"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if "error" in v], ids=_vid)
def test_invalid_vector_raises_the_codecs_own_error_naming_the_problem(
    vector: dict[str, Any],
) -> None:
    data = bytes.fromhex(vector["hex"])
    with pytest.raises(ERRORS[vector["codec"]]) as info:
        _decode(vector["codec"], data)
    message = str(info.value).lower()
    # Every part of the vector's description appears in the message ("a (b)" -> "a", "b").
    for part in re.split(r"\s*\(|\)\s*", vector["error"].lower()):
        assert part.strip() in message, (part, message)
    assert info.value.field
    assert (data.hex(" ") or "(empty)") in str(info.value)


def test_unknown_control_opcode_answers_att_error_0x80() -> None:
    with pytest.raises(spotter_tilt.ControlPointError) as info:
        spotter_tilt.decode_control(b"\x7f")
    assert info.value.att_error == 0x80


def test_witmotion_stream_vector_reassembles_and_counts_junk() -> None:
    (vector,) = [v for v in VECTORS if v["codec"] == "witmotion_stream"]
    stream = witmotion.WitMotionStream()
    frames = []
    for chunk in vector["chunks"]:
        frames += stream.feed(bytes.fromhex(chunk))
    assert len(frames) == vector["expect"]["frames"]
    assert [f.angle_deg[1] for f in frames] == vector["expect"]["angle_y_deg"]
    assert stream.skipped_frames == 1
    assert stream.discarded_bytes == 20 + 2  # the 55 71 frame and two stray bytes


def cut_stream(frames: list[bytes], cuts: list[int]) -> list[bytes]:
    """Cut the concatenation of ``frames`` at the byte offsets ``cuts`` into notifications."""
    blob = b"".join(frames)
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(blob)), len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- round trips -----------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)


@st.composite
def heart_rates(draw: st.DrawFn) -> HeartRateMeasurement:
    wide = draw(st.booleans())
    rr = draw(st.lists(u16, max_size=7))
    return HeartRateMeasurement(
        bpm=draw(u16 if wide else st.integers(0, 255)),
        contact=draw(st.sampled_from(Contact)),
        energy_kj=draw(st.none() | u16),
        rr_s=tuple(r / 1024 for r in rr),
        wide=wide,
        rr_present=bool(rr) or draw(st.booleans()),
    )


@given(heart_rates())
def test_heart_rate_round_trip(m: HeartRateMeasurement) -> None:
    assert heart_rate.decode(heart_rate.encode(m)) == m


@st.composite
def tilts(draw: st.DrawFn) -> TiltMeasurement:
    i16 = st.integers(-32768, 32767)

    def vec(scale: float) -> tuple[float, float, float] | None:
        if not draw(st.booleans()):
            return None
        return (draw(i16) / scale, draw(i16) / scale, draw(i16) / scale)

    return TiltMeasurement(
        seq=draw(u16),
        sensor_ms=draw(u16),
        pitch_deg=draw(st.integers(-18000, 18000)) / 100,
        accel_g=vec(1000),
        gyro_dps=vec(10),
        lock=draw(st.none() | st.sampled_from(AnkleLock)),
    )


@given(tilts())
def test_tilt_round_trip_fits_20_bytes(m: TiltMeasurement) -> None:
    data = spotter_tilt.encode(m)
    assert len(data) <= spotter_tilt.MAX_PAYLOAD
    assert spotter_tilt.decode(data) == m


@given(st.sampled_from(ControlOp), st.integers(1, 200))
def test_control_round_trip(op: ControlOp, rate: int) -> None:
    cmd = ControlCommand(op, rate if op is ControlOp.SET_RATE else None)
    assert spotter_tilt.decode_control(spotter_tilt.encode_control(cmd)) == cmd


@given(st.integers(0, 100))
def test_battery_round_trip(percent: int) -> None:
    level = battery.BatteryLevel(percent)
    assert battery.decode(battery.encode(level)) == level


@given(st.lists(st.integers(-32768, 32767), min_size=9, max_size=9))
def test_witmotion_frame_round_trip(raw: list[int]) -> None:
    frame = witmotion.WitMotionFrame(
        tuple(r * witmotion.ACCEL_G_PER_LSB for r in raw[0:3]),  # type: ignore[arg-type]
        tuple(r * witmotion.GYRO_DPS_PER_LSB for r in raw[3:6]),  # type: ignore[arg-type]
        tuple(r * witmotion.ANGLE_DEG_PER_LSB for r in raw[6:9]),  # type: ignore[arg-type]
    )
    assert witmotion.decode_frame(witmotion.encode_frame(frame)) == frame


@given(
    st.lists(st.integers(-32768, 32767), min_size=9, max_size=9),
    st.integers(1, 6),
    st.lists(st.integers(1, 200), max_size=8),
)
def test_witmotion_stream_survives_any_split(raw: list[int], copies: int, cuts: list[int]) -> None:
    frame = witmotion.encode_frame(
        witmotion.WitMotionFrame(
            tuple(r * witmotion.ACCEL_G_PER_LSB for r in raw[0:3]),  # type: ignore[arg-type]
            tuple(r * witmotion.GYRO_DPS_PER_LSB for r in raw[3:6]),  # type: ignore[arg-type]
            tuple(r * witmotion.ANGLE_DEG_PER_LSB for r in raw[6:9]),  # type: ignore[arg-type]
        )
    )
    stream = witmotion.WitMotionStream()
    out = []
    for chunk in cut_stream([frame] * copies, cuts):
        out += stream.feed(chunk)
    # Frame bodies may contain 55 61 themselves, but a stream of whole frames never loses sync.
    assert [witmotion.encode_frame(f) for f in out] == [frame] * copies
    assert stream.discarded_bytes == 0


# -- fuzz: any bytes give a reading or the codec's own error -----------------------------------

DECODERS = [
    (heart_rate.decode, heart_rate.HeartRateError),
    (battery.decode, battery.BatteryError),
    (spotter_tilt.decode, spotter_tilt.TiltError),
    (spotter_tilt.decode_control, spotter_tilt.ControlPointError),
    (spotter_tilt.decode_info, spotter_tilt.SensorInfoError),
    (witmotion.decode_frame, witmotion.WitMotionError),
]


@pytest.mark.parametrize(("decode", "error"), DECODERS, ids=lambda x: getattr(x, "__module__", ""))
@given(data=st.binary(max_size=40))
def test_any_bytes_decode_or_raise_the_codecs_own_error(
    decode: Any, error: type[CodecError], data: bytes
) -> None:
    problem: CodecError | None = None
    try:
        decode(data)
    except error as exc:
        problem = exc
    if problem is not None:
        assert problem.data == data
        assert problem.field


@given(st.lists(st.binary(max_size=45), max_size=12))
def test_witmotion_stream_never_raises_and_accounts_for_every_byte(chunks: list[bytes]) -> None:
    stream = witmotion.WitMotionStream()
    frames = 0
    for chunk in chunks:
        frames += len(stream.feed(chunk))
    stream.reset()
    total = sum(len(c) for c in chunks)
    assert frames * witmotion.FRAME_SIZE + stream.discarded_bytes == total
