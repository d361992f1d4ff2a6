"""The estimator: calibration, outliers, rate, |a|, heart-rate cleaning."""

from __future__ import annotations

import pytest

from monitor.core.estimator import HeartRateCleaner, TiltEstimator, Verdict
from monitor.core.sensors import Calibration


def test_theta_through_the_calibration_needs_three_samples() -> None:
    est = TiltEstimator(Calibration(offset_deg=2.0, sign=-1, axis="x"))
    assert est.axis == 0
    assert not est.update(0.00, -22.0, None, None)
    assert not est.update(0.01, -22.0, None, None)
    assert est.update(0.02, -22.0, None, None)
    assert est.theta_deg == pytest.approx(24.0)


def test_an_isolated_outlier_never_reaches_theta() -> None:
    est = TiltEstimator(Calibration())
    seen = []
    for i, angle in enumerate([20.0, 20.0, 20.0, 90.0, 20.0, 20.0, -40.0, 20.0]):
        est.update(i * 0.01, angle, None, None)
        seen.append(est.theta_deg)
    assert set(seen[2:]) == {20.0}


def test_rate_from_the_gyro_follows_the_sign() -> None:
    est = TiltEstimator(Calibration(sign=-1))
    for i in range(5):
        est.update(i * 0.01, 0.0, 12.0, None)
    assert est.rate_dps == pytest.approx(-12.0)


def test_rate_without_a_gyro_from_smoothed_theta() -> None:
    est = TiltEstimator(Calibration())
    for i in range(100):
        est.update(i * 0.01, 10.0 + 20.0 * i * 0.01, None, None)
    assert est.rate_dps == pytest.approx(20.0, rel=0.01)


def test_acceleration_magnitude_is_median_filtered() -> None:
    est = TiltEstimator(Calibration())
    for i, a in enumerate([1.0, 1.0, 1.0, 5.0, 1.0]):
        est.update(i * 0.01, 0.0, None, (0.6 * a, 0.0, 0.8 * a))
        assert est.accel_g == (None if i < 2 else pytest.approx(1.0))


def test_reset_forgets_history() -> None:
    est = TiltEstimator(Calibration())
    for i in range(3):
        est.update(i * 0.01, 30.0, None, None)
    est.reset()
    assert est.theta_deg is None


def test_hr_cleaning_range_and_no_reading() -> None:
    c = HeartRateCleaner()
    assert c.update(0, 29, True).verdict is Verdict.REJECTED
    assert c.update(1, 221, True).verdict is Verdict.REJECTED
    assert c.update(2, 0, False).verdict is Verdict.NO_READING
    assert c.update(3, 70, True).accepted == ((3, 70),)


def test_hr_jump_is_suspect_until_confirmed_within_3_s_and_10_bpm() -> None:
    c = HeartRateCleaner()
    c.update(0, 70, True)
    assert c.update(1, 120, True).verdict is Verdict.SUSPECT
    out = c.update(2, 126, True)
    assert out.verdict is Verdict.ACCEPTED
    assert out.accepted == ((1, 120), (2, 126))


def test_hr_unconfirmed_jump_is_rejected() -> None:
    c = HeartRateCleaner()
    c.update(0, 70, True)
    c.update(1, 120, True)
    out = c.update(2, 72, True)
    assert out.rejected == (1,)
    assert out.accepted == ((2, 72),)
    c.update(3, 130, True)
    assert c.expire(6.5) is not None  # no confirming reading within 3 s
    assert c.last_bpm == 72
