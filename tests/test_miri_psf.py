"""The cruciform model on a point: each arm is the kernel A exp(-|x| / 25 px), rescaled so
the stamp keeps its flux; nothing off the arms; no change where A = 0."""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments import miri
from simval.kit.miri_psf import with_cruciform

OS = 3  # samples per native pixel
N = 101  # native pixels


def point() -> np.ndarray:
    stamp = np.zeros((N * OS, N * OS))
    stamp[N * OS // 2, N * OS // 2] = OS * OS  # all the flux (units of native pixels) at the centre
    return stamp


def test_a_point_gets_two_exponential_arms():
    a = miri.CRUCIFORM_AMPLITUDE["F770W"]
    out = with_cruciform(point(), a, OS)
    c = N * OS // 2
    k = np.arange(1, c + 1)  # samples along an arm
    kernel = a * np.exp(-(k / OS) / miri.CRUCIFORM_EFOLD_PIX) / OS
    scale = 1.0 / (1.0 + 2.0 * (a / OS + 2.0 * kernel.sum()))
    assert out.sum() == pytest.approx(OS * OS)  # the stamp keeps its flux
    for arm in (out[c, c + 1:], out[c, :c][::-1], out[c + 1:, c], out[:c, c][::-1]):
        np.testing.assert_allclose(arm, OS * OS * kernel * scale, rtol=1e-6, atol=1e-12)
    off = out.copy()
    off[c, :] = 0.0
    off[:, c] = 0.0
    assert np.abs(off).max() < 1e-12  # nothing off the row and column
    # e-folding: 24 native pixels further along, e^(-24/25) of it
    assert out[c, c + 25 * OS] / out[c, c + OS] == pytest.approx(np.exp(-24 / 25), rel=1e-9)


def test_no_amplitude_no_change():
    stamp = point()
    assert with_cruciform(stamp, 0.0, OS) is stamp
    assert miri.CRUCIFORM_AMPLITUDE.get("F1500W", 0.0) == 0.0
