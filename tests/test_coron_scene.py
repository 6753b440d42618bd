"""The coronagraphic scene on known answers: the SIAF inversion is exact, a companion lands
on the pixel its sky position maps to with the light the Lyot stop and the mask pass, a
roll turns it about the mask centre by the roll, and the sky far from the mask is the
stop's share of the CLEAR sky."""

from __future__ import annotations

import numpy as np
import pytest

from simval import offline
from simval.instruments.nircam_coron import get_mask
from simval.kit.coron_psf import CoronOptics, cached_psf, lyot_throughput
from simval.kit.photometry import zeropoint_row
from simval.pointing import attitude_at_pa_v3
from simval.simulate.coron_scene import (
    OVERSAMPLE,
    Source,
    grid_pixels,
    ideal_to_sci,
    render_scene,
    source_pixels,
)

MASK = get_mask("MASKA335R")
AP = offline.nircam_siaf()[MASK.aperture]
RA0, DEC0 = 150.0, 2.0
PHOTFNU = float(zeropoint_row("NRCA5", "F335M", "CLEAR").photfnu)
PHOTMJSR = 1.0  # (MJy/sr) / (DN/s): only the sky uses it here


def attitude(pa_v3: float):
    return attitude_at_pa_v3(AP.V2Ref, AP.V3Ref, RA0, DEC0, pa_v3)


def companion(sep: float, pa_deg: float, flux_jy: float) -> Source:
    a = np.radians(pa_deg)
    return Source(RA0 + sep * np.sin(a) / 3600.0 / np.cos(np.radians(DEC0)),
                  DEC0 + sep * np.cos(a) / 3600.0, flux_jy)


@pytest.fixture(scope="module")
def psf_for(tmp_path_factory):
    grid = CoronOptics.for_mask(MASK, [3.33, 3.40], [1.0, 1.0],
                                fov_pixels=grid_pixels(MASK), oversample=OVERSAMPLE)
    cache = tmp_path_factory.mktemp("coron_psf")
    return lambda offset: cached_psf(grid, offset, cache)[0]


def test_ideal_to_sci_inverts_the_siaf():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(1, 320, 50), rng.uniform(1, 320, 50)
    xi, yi = AP.sci_to_idl(x, y)
    bx, by = ideal_to_sci(AP, xi, yi)
    assert np.max(np.hypot(bx - x, by - y)) < 1e-6
    # the star at the reference point sits on the mask centre
    sx, sy = source_pixels(MASK, attitude(250.0), np.array([RA0]), np.array([DEC0]))
    assert (sx[0] + 1, sy[0] + 1) == pytest.approx((AP.XSciRef, AP.YSciRef), abs=1e-6)


def scene(psf_for, sources, pa_v3=250.0, sky=0.0):
    return render_scene(MASK, psf_for, sources, attitude(pa_v3), photfnu=PHOTFNU,
                        photmjsr_clear=PHOTMJSR, lyot_throughput=lyot_throughput(),
                        sky_mjysr=sky)


def test_companion_lands_on_its_pixel_with_the_passed_light(psf_for):
    flux = 1e-3  # Jy
    comp = companion(2.0, 30.0, flux)
    s = scene(psf_for, [comp])
    x, y = s.x[0], s.y[0]
    ix, iy = round(x), round(y)
    box = s.rate[iy - 12:iy + 13, ix - 12:ix + 13]
    yy, xx = np.mgrid[iy - 12:iy + 13, ix - 12:ix + 13]
    assert (box * xx).sum() / box.sum() == pytest.approx(x, abs=0.05)
    assert (box * yy).sum() / box.sum() == pytest.approx(y, abs=0.05)
    r = np.hypot(*s.offsets[0])
    assert r == pytest.approx(2.0, abs=0.05)
    expected = flux * 1e-23 / PHOTFNU * lyot_throughput() * MASK.intensity(r)
    assert s.rate.sum() == pytest.approx(expected, rel=0.06)  # the stamp keeps ~all of it


def test_a_roll_turns_the_companion_about_the_mask(psf_for):
    comp = companion(1.5, 120.0, 1e-3)
    xc, yc = AP.XSciRef - 1, AP.YSciRef - 1
    a = scene(psf_for, [comp], pa_v3=250.0)
    b = scene(psf_for, [comp], pa_v3=260.0)
    scale = np.array([AP.XSciScale, AP.YSciScale])  # arcsec per pixel: 1.3 % apart
    va = np.array([a.x[0] - xc, a.y[0] - yc]) * scale
    vb = np.array([b.x[0] - xc, b.y[0] - yc]) * scale
    turn = np.degrees(np.arctan2(va[0] * vb[1] - va[1] * vb[0], va @ vb))
    assert abs(turn) == pytest.approx(10.0, abs=0.1)
    assert np.hypot(*va) == pytest.approx(np.hypot(*vb), rel=2e-3)
    assert np.hypot(*va) == pytest.approx(1.5, rel=0.01)


def test_the_sky_is_the_stops_share_away_from_the_mask(psf_for):
    s = scene(psf_for, [], sky=0.2)
    corner = s.rate[:20, -20:]  # > 9" from the mask centre
    assert np.median(corner) == pytest.approx(0.2 / PHOTMJSR * lyot_throughput(), rel=1e-3)
    centre = s.rate[round(AP.YSciRef - 1), round(AP.XSciRef - 1)]
    assert centre < 0.01 * np.median(corner)
