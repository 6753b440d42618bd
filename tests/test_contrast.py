"""The contrast curve on known answers: on white noise the threshold is Student's t times
the aperture-sum scatter (Mawet et al. 2014), which exceeds the Gaussian 5 sigma most at
small separations; the contrast scales as 1 / (star flux x EE x transmission); a masked
companion does not enter the noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t

from simval.metrics.contrast import FPF_5SIGMA, contrast_curve, threshold


def test_threshold_is_students_t():
    sums = np.array([1.0, -0.5, 0.3, 0.8, -1.1, 0.2])
    s = np.std(sums, ddof=1)
    assert threshold(sums) == pytest.approx(t.ppf(1 - FPF_5SIGMA, 5) * s * np.sqrt(1 + 1 / 6))
    assert t.ppf(1 - FPF_5SIGMA, 1000) == pytest.approx(5.0, rel=0.01)  # the Gaussian limit


def test_white_noise_curve_and_its_scaling():
    rng = np.random.default_rng(3)
    sigma, fwhm = 2.0, 2.0
    img = rng.normal(0.0, sigma, (401, 401))
    seps = np.array([2.0, 4.0, 10.0, 40.0, 120.0])

    def curve(star, ee, trans):
        return contrast_curve(img, (200.0, 200.0), fwhm, star_flux=star, ee=ee,
                              transmission=lambda r: np.full_like(r, trans),
                              separations_px=seps)

    c = curve(1e4, 0.5, 1.0)
    # aperture sums of white noise: sigma sqrt(sum of w^2), w photutils' exact pixel overlap
    from photutils.aperture import CircularAperture

    n = np.floor(2 * np.pi * seps / fwhm)
    a = 2 * np.pi * np.arange(n[-1]) / n[-1]
    masks = CircularAperture(np.c_[200 + 120 * np.cos(a), 200 + 120 * np.sin(a)],
                             r=fwhm / 2).to_mask(method="exact")
    sum_sigma = sigma * np.sqrt(np.mean([np.sum(m.data**2) for m in masks]))
    assert list(c.n_apertures) == list(n.astype(int))
    gaussian = 5 * sum_sigma / (1e4 * 0.5)
    assert c.contrast_gaussian[-1] == pytest.approx(gaussian, rel=0.1)  # 376 apertures
    corr = t.ppf(1 - FPF_5SIGMA, n - 1) * np.sqrt(1 + 1 / n) / 5.0
    assert corr[0] > 2.0 and corr[-1] < 1.05  # Mawet: 2x at 1 lambda/D, ~1 far out
    ratio = c.contrast / c.contrast_gaussian
    np.testing.assert_allclose(ratio[1:], corr[1:], rtol=0.35)  # up to the sample's mean
    c2 = curve(2e4, 0.25, 0.5)  # star x2, EE /2, T /2: x 2 in contrast
    np.testing.assert_allclose(c2.contrast, 2 * c.contrast, rtol=1e-9)
    assert c.at(40.0) == pytest.approx(c.contrast[3], rel=1e-9)


def test_a_masked_companion_stays_out_of_the_noise():
    rng = np.random.default_rng(4)
    img = rng.normal(0.0, 1.0, (201, 201))
    yy, xx = np.mgrid[0:201, 0:201]
    img += 500.0 * np.exp(-((xx - 130) ** 2 + (yy - 100) ** 2) / 2.0)  # 30 px east
    mask = np.hypot(xx - 130, yy - 100) < 4

    def at30(m):
        return contrast_curve(img, (100.0, 100.0), 2.0, star_flux=1.0, ee=1.0,
                              transmission=lambda r: np.ones_like(r), separations_px=[30.0],
                              mask=m)

    with_companion, masked = at30(None), at30(mask)
    assert with_companion.contrast[0] > 3 * masked.contrast[0]
    assert masked.n_apertures[0] < with_companion.n_apertures[0]
