"""The coronagraphic optics on known answers: MASKA335R's 50 % radius is JDox's inner
working angle, the Lyot stop passes the light it is sized for, an off-axis source lands
where its offset says with the light the stop and the mask pass, the star on the mask is
suppressed, and a second call with the same optics reads the cache."""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments.nircam_coron import get_mask
from simval.kit.coron_psf import (
    LW_SCALE_ARCSEC,
    CoronOptics,
    cached_psf,
    coron_psf,
    lyot_throughput,
)

MASK = get_mask("MASKA335R")
OPTICS = CoronOptics.for_mask(MASK, [3.33, 3.40], [1.0, 1.0], fov_pixels=141)


def test_mask_inner_working_angle_is_jdox():
    """JDox "NIRCam Coronagraphic Occulting Masks and Lyot Stops": MASK335R's inner working
    angle (50 % transmission) is 0.63"."""
    assert MASK.inner_working_angle_arcsec == pytest.approx(0.63, abs=0.015)


def test_lyot_stop_passes_54_percent():
    assert lyot_throughput() == pytest.approx(0.54, abs=0.01)


@pytest.mark.parametrize("offset", [(3.0, 0.0), (0.0, -2.0), (-1.5, 1.5)])
def test_off_axis_source_lands_at_its_offset_with_the_stops_light(offset):
    image = coron_psf(OPTICS, offset)
    c = (image.shape[0] - 1) / 2.0
    iy, ix = np.unravel_index(np.argmax(image), image.shape)
    assert (ix - c) * LW_SCALE_ARCSEC == pytest.approx(offset[0], abs=LW_SCALE_ARCSEC)
    assert (iy - c) * LW_SCALE_ARCSEC == pytest.approx(offset[1], abs=LW_SCALE_ARCSEC)
    mask = float(MASK.intensity(np.hypot(*offset)))
    assert mask > 0.9
    # beyond 2" the PSF's light mostly clears the mask: the stop's share, less what
    # falls outside the 8.9" stamp
    assert image.sum() == pytest.approx(lyot_throughput() * mask, rel=0.06)


def test_star_on_the_mask_is_suppressed_and_cached(tmp_path):
    star, hit = cached_psf(OPTICS, (0.0, 0.0), tmp_path)
    assert not hit
    companion = coron_psf(OPTICS, (2.0, 0.0))
    assert star.max() < 2e-3 * companion.max()
    again, hit = cached_psf(OPTICS, (0.0, 0.0), tmp_path)
    assert hit and np.array_equal(again, star)  # computed or cached: the same numbers
    other, hit = cached_psf(OPTICS, (0.02, 0.0), tmp_path)  # a dither: another file
    assert not hit and len(list(tmp_path.glob("coron_psf_*.fits"))) == 2
    # 20 mas off the mask lets through more of the star
    assert other.sum() > star.sum()


def test_wavefront_error_and_its_drift_change_the_residual():
    """~50 nm RMS of the kit's wavefront model lets more starlight through the stop than a
    perfect telescope; 10 % more of it (a drift between target and reference) changes the
    residual by a little, not by all of it."""
    from dataclasses import replace

    perfect = coron_psf(OPTICS, (0.0, 0.0))
    target = coron_psf(replace(OPTICS, wfe_seed=3, wfe_scale=1.0), (0.0, 0.0))
    drifted = coron_psf(replace(OPTICS, wfe_seed=3, wfe_scale=1.1), (0.0, 0.0))
    assert target.sum() > 1.1 * perfect.sum()  # measured 1.20
    change = np.abs(drifted - target).sum() / target.sum()
    assert 0.01 < change < 0.5


def test_mask_geometry_agrees_with_the_siaf():
    """The subarray is the SIAF aperture's size; NRCA5 reads x-flipped (DetSciParity -1),
    so the DMS corner is the SIAF's detector corner mirrored: 2048 - 1238 - 320 + 2 = 492."""
    from simval import offline

    ap = offline.nircam_siaf()[MASK.aperture]
    assert (int(ap.XSciSize), int(ap.YSciSize)) == (MASK.size, MASK.size)
    x, y = (int(v) for v in ap.dms_corner())
    assert int(ap.DetSciParity) == -1 and MASK.fastaxis == -1
    assert MASK.substrt == (2048 - x - MASK.size + 2, y)
