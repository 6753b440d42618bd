"""MIRI ramps from a rate image: each effect has a known answer on the ramps it makes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simval.instruments import miri
from simval.instruments.miri_detector import (
    MiriDetectorModel,
    MiriEffects,
    Readout,
    additive_signature,
)
from simval.simulate.miri_ramps import miri_ramps as _miri_ramps

DETECTOR = MiriDetectorModel(seed=20221)


def miri_ramps(rate, readout, effects, seed):
    return _miri_ramps(rate, readout, effects, seed, DETECTOR)

READOUT = Readout("SUB64", "FASTR1", ngroups=10, nints=2)
NY, NX = READOUT.shape


def _flat(rate: float) -> np.ndarray:
    return np.full((NY, NX), rate)


def test_an_effect_free_readout_accumulates_the_rate_frame_by_frame():
    ramps = miri_ramps(_flat(50.0), READOUT, MiriEffects().off(), seed=1)
    assert ramps.shape == (2, 10, 64, 72) and ramps.dtype == np.uint16
    t = READOUT.tframe_s * np.arange(1, 11)
    # SUB64 starts at full-frame column 1: columns 1-4 are reference columns, dark
    np.testing.assert_array_equal(ramps[1, :, 10, 20], np.rint(50.0 * t))
    assert not ramps[:, :, :, :4].any() and ramps[:, :, :, 4:].all()


def _slopes(ramps: np.ndarray, tframe: float) -> np.ndarray:
    """Ordinary least-squares slope of every ramp (DN/s), equal weights."""
    g = ramps.shape[1]
    x = (np.arange(g) - (g - 1) / 2.0) * tframe
    return np.tensordot(x, ramps.astype(np.float64), axes=([0], [1])) / np.sum(x**2)


def test_poisson_and_read_noise_have_the_detectors_gain_and_noise():
    det, n = miri.DETECTOR, READOUT.ngroups
    rate = 200.0
    eff = MiriEffects().off()
    eff = replace(eff, poisson=True, read_noise=True)
    slopes = _slopes(miri_ramps(_flat(rate), READOUT, eff, seed=2)[:, :, :, 4:],
                     READOUT.tframe_s)
    assert slopes.mean() == pytest.approx(rate, rel=2e-3)
    # equal-weight OLS on a ramp of n reads: Poisson (correlated increments) + white reads
    t = READOUT.tframe_s
    x = np.arange(n) - (n - 1) / 2.0
    cum = np.minimum.outer(np.arange(1, n + 1), np.arange(1, n + 1))  # cov of cumulative sums
    var_poisson = (x @ cum @ x) / np.sum(x**2) ** 2 * rate / (det.gain_e_per_dn * t)
    var_read = det.readnoise_frame_dn**2 / (np.sum(x**2) * t**2)
    assert slopes.var() == pytest.approx(var_poisson + var_read, rel=0.05)


def test_each_effect_adds_exactly_its_model():
    base = MiriEffects().off()
    base = replace(base, pedestal=True)  # nothing clips at 0
    plain = miri_ramps(_flat(30.0), READOUT, base, seed=3).astype(float)

    emi = replace(base, emi=((218.3, 4.0, 0.4),))
    group_start, offset = miri.read_clocks("SUB64", "FASTR1", 10, 2)
    t = (group_start[:, :, None, None] + offset[None, None]) * miri.PIXEL_TIME_S
    wave = 4.0 * np.sin(2 * np.pi * 218.3 * t + 0.4)
    got = miri_ramps(_flat(30.0), READOUT, emi, seed=3).astype(float) - plain
    assert np.abs(got - wave).max() <= 1.0  # rounding to whole DN, each side

    sig = replace(base, reset_amp_dn=60.0, first_frame_dn=15.0, last_frame_dn=12.0,
                  rscd_amp_dn=20.0)
    got = miri_ramps(_flat(30.0), READOUT, sig, seed=3).astype(float) - plain
    model = additive_signature(READOUT, sig)
    assert np.abs(got - model).max() <= 1.0
    g = np.arange(10)
    np.testing.assert_allclose(model[0, :, 0, 0], 60.0 * np.exp(-g / 2.0)
                               + np.r_[15.0, np.zeros(8), 12.0])
    np.testing.assert_allclose(model[1, :, 0, 0] - model[0, :, 0, 0], 20.0 * np.exp(-g / 1.5))


def test_nonlinearity_and_saturation():
    base = MiriEffects().off()
    eff = replace(base, nonlinearity=True, saturation=True)
    rate = np.full((NY, NX), 100.0)
    rate[:, 40:] = 1e5  # saturates within a frame or two
    ramps = miri_ramps(rate, READOUT, eff, seed=4).astype(float)
    beta = DETECTOR.cut(DETECTOR.beta_per_dn, "SUB64")
    s = 100.0 * READOUT.tframe_s * np.arange(1, 11)
    np.testing.assert_allclose(ramps[0, :, 5, 20], np.rint(s - beta[5, 20] * s**2))
    well = miri.DETECTOR.full_well_dn
    assert ramps[0, -1, 5, 50] == pytest.approx(well - beta[5, 50] * well**2, abs=1)


def test_same_seed_same_bytes_and_effects_draw_independently():
    a = miri_ramps(_flat(80.0), READOUT, MiriEffects(), seed=5)
    assert a.tobytes() == miri_ramps(_flat(80.0), READOUT, MiriEffects(), seed=5).tobytes()
    assert a.tobytes() != miri_ramps(_flat(80.0), READOUT, MiriEffects(), seed=6).tobytes()
    no_cr = MiriEffects(cosmic_rays_per_cm2_s=0.0)
    b = miri_ramps(_flat(80.0), READOUT, no_cr, seed=5).astype(int) - a.astype(int)
    # only pixels a cosmic ray hit differ: switching it off moved no other draw
    assert 0 < np.count_nonzero(b.any(axis=(0, 1))) < 0.05 * NY * NX


def test_a_rate_image_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"rate image is \(10, 10\), the SUB64 subarray is "
                                         r"\(64, 72\)"):
        miri_ramps(np.zeros((10, 10)), READOUT, MiriEffects(), seed=1)
    with pytest.raises(ValueError, match="SLOWR1 cannot read SUB64"):
        Readout("SUB64", "SLOWR1")
