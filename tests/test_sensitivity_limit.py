"""The 10-sigma point-source limit (metrics/sensitivity.py) on a case with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from simval.metrics.sensitivity import aperture_radius_arcsec, sensitivity_limit

PIXAR_SR = (0.031 / 206264.806) ** 2


def test_radius_follows_the_tables_rule():
    assert aperture_radius_arcsec(1.5, 0.031) == pytest.approx(2.5 * 0.031)  # 2.5 pixels
    assert aperture_radius_arcsec(4.4, 0.063) == pytest.approx(
        1.2 * 4.4e-6 / 6.5 * 206264.806, rel=1e-6)                          # 1.2 lambda/D


def test_limit_is_ten_sigma_of_the_aperture_sum_over_the_encircled_energy():
    rng = np.random.default_rng(5)
    shape, sigma_pix, s = (400, 400), 0.01, 1.2      # MJy/sr white noise; PSF sigma in px
    y, x = np.mgrid[:shape[0], :shape[1]]
    stars = [(100.3, 120.6), (300.1, 280.4), (250.7, 90.2)]
    flux_jy = np.array([2e-6, 3e-6, 1e-6])
    truth = np.full(shape, 0.2)
    for (sx, sy), f in zip(stars, flux_jy, strict=True):
        truth += f / (1e6 * PIXAR_SR) * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * s * s)) \
            / (2 * np.pi * s * s)
    img = 0.2 + rng.normal(0.0, sigma_pix, shape)
    mask = np.zeros(shape, bool)
    for sx, sy in stars:
        mask |= (x - sx) ** 2 + (y - sy) ** 2 < 15 ** 2
    r_pix = 2.5
    got = sensitivity_limit(img, truth, x=[p[0] for p in stars], y=[p[1] for p in stars],
                            flux_jy=flux_jy, radius_arcsec=r_pix * 0.031, pixar_sr=PIXAR_SR,
                            sky_mjysr=0.2, rng=np.random.default_rng(1), mask=mask)
    ee = 1 - np.exp(-r_pix ** 2 / (2 * s * s))                   # a Gaussian's EE
    sigma_ap_njy = sigma_pix * np.sqrt(np.pi * r_pix ** 2) * 1e6 * PIXAR_SR * 1e9
    assert got.radius_pix == pytest.approx(r_pix, rel=1e-3)
    assert got.ee == pytest.approx(ee, abs=0.02)
    assert got.sigma_ap_njy == pytest.approx(sigma_ap_njy, rel=0.08)
    assert got.limit_njy == pytest.approx(10 * sigma_ap_njy / ee, rel=0.1)
    m = got.measurements()["limit_10sigma_njy"]
    assert m.unit == "nJy" and m.details["stars"] == 3
