"""The synthetic MIRI detector's maps, and the linearity correction that inverts its
non-linearity about each pixel's pedestal."""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments import miri
from simval.instruments.miri_detector import MiriDetectorModel, linearity_coefficients


def test_maps_are_full_frame_seeded_and_dark_where_no_light_falls():
    a, b = MiriDetectorModel(1), MiriDetectorModel(2)
    assert a.pedestal_dn.shape == (1024, 1032)
    np.testing.assert_array_equal(a.pedestal_dn, MiriDetectorModel(1).pedestal_dn)
    assert not np.array_equal(a.pedestal_dn, b.pedestal_dn)
    assert a.pedestal_dn.mean() == pytest.approx(10_000.0, abs=5.0)
    assert not a.lit[:, :4].any() and a.lit[:, 4:1028].all() and not a.lit[:, 1028:].any()
    assert (a.dark_dn_s[:, :4] == 0).all() and a.dark_dn_s[:, 500].mean() == pytest.approx(
        0.05, rel=0.02)
    sub = a.cut(a.pedestal_dn, "BRIGHTSKY")
    np.testing.assert_array_equal(sub, a.pedestal_dn[50:562, 456:968])


def test_linearity_coefficients_undo_the_nonlinearity_about_the_pedestal():
    det = MiriDetectorModel(3)
    p, beta = det.pedestal_dn[:8, 400:408], det.beta_per_dn[:8, 400:408]
    coeffs = linearity_coefficients(p, beta).astype(np.float32)  # as LINEARITY stores them
    for v in (0.0, 1_000.0, 20_000.0, 50_000.0):
        m = (p + v - beta * v**2).astype(np.float32)
        # evaluated like stcal: Horner in float32
        got = np.zeros_like(m)
        for c in coeffs[::-1]:
            got = got * m + c
        assert np.abs(got - v).max() < 0.5, v  # 0.001 % at full well
    assert miri.DETECTOR.full_well_dn == 52_500.0
