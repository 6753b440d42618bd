"""A disk image through the coronagraph (simval.simulate.coron_disk): surface brightness
kept where the mask passes everything, the mask's transmission applied, the roll turning
it, the kernel centred; and a coronagraphy scenario accepts the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from simval import offline
from simval.instruments.nircam_coron import LW_SCALE_ARCSEC, get_mask
from simval.pointing import attitude_at_pa_v3
from simval.simulate.coron_disk import KERNEL_HALF_PIX, KERNEL_OFFSET_PIX, disk_rate, offaxis_kernel
from simval.simulate.coron_scene import OVERSAMPLE, grid_pixels, mask_centre, source_pixels
from simval.simulate.miri_extended import read_emission_image
from tests.test_miri_extended import write_image

ROOT = Path(__file__).resolve().parents[1]
MASK = get_mask("MASKA335R")
RA, DEC = 150.0, 2.0
PHOTMJSR, LYOT = 0.5, 0.54


def _attitude(pa_v3: float) -> np.ndarray:
    ap = offline.nircam_siaf()[MASK.aperture]
    return attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, RA, DEC, pa_v3)


def _delta() -> np.ndarray:
    k = np.zeros((2 * KERNEL_HALF_PIX + 1,) * 2)
    k[KERNEL_HALF_PIX, KERNEL_HALF_PIX] = 1.0
    return k


def test_a_uniform_disk_keeps_its_surface_brightness_through_the_mask(tmp_path):
    """3 MJy/sr everywhere: 3 / PHOTMJSR x Lyot x T(r) DN/s, T = 1 far out and ~0 on the
    mask (as the simulator's uniform sky)."""
    image = read_emission_image(write_image(tmp_path / "flat.fits", np.full((401, 401), 3.0),
                                            RA, DEC, 0.063))
    rate = disk_rate(image, 1.0, MASK, _attitude(250.0), _delta(), photmjsr_clear=PHOTMJSR,
                     lyot_throughput=LYOT)
    xc, yc = mask_centre(MASK)
    yy, xx = np.mgrid[0:MASK.size, 0:MASK.size]
    r = np.hypot(xx - xc, yy - yc) * LW_SCALE_ARCSEC
    far = (r > 3.0) & (r < 6.0)
    assert np.median(rate[far]) == pytest.approx(3.0 / PHOTMJSR * LYOT, rel=0.01)
    assert rate[round(yc), round(xc)] < 1e-3 * 3.0 / PHOTMJSR * LYOT
    expected = 3.0 / PHOTMJSR * LYOT * MASK.intensity(r)
    ring = (r > 0.6) & (r < 1.0)
    assert np.median(rate[ring] / expected[ring]) == pytest.approx(1.0, rel=0.02)


def test_a_compact_blob_lands_where_a_star_would_and_turns_with_the_roll(tmp_path):
    """A resolved blob (Gaussian, sigma 0.105") 2" East of the target: its centroid on the
    pixel source_pixels gives a point source there (0.05 px), at both rolls; its light x
    T(2")."""
    east = 2.0 / 3600.0 / np.cos(np.radians(DEC))
    yy, xx = np.mgrid[0:201, 0:201]
    data = np.exp(-((xx - 100) ** 2 + (yy - 100) ** 2) / (2 * 5.0**2))
    data *= 1000.0 / data.sum()
    image = read_emission_image(write_image(tmp_path / "blob.fits", data, RA + east, DEC,
                                            0.021))
    ap = offline.nircam_siaf()[MASK.aperture]
    pixel_sr = ap.XSciScale * ap.YSciScale / 206264.806**2
    total_mjy = 1000.0 * (0.021 / 206264.806) ** 2  # MJy/sr x sr
    for pa in (250.0, 260.0):
        att = _attitude(pa)
        rate = disk_rate(image, 1.0, MASK, att, _delta(), photmjsr_clear=PHOTMJSR,
                         lyot_throughput=LYOT)
        x, y = source_pixels(MASK, att, np.array([RA + east]), np.array([DEC]))
        yy, xx = np.mgrid[0:MASK.size, 0:MASK.size]
        near = np.hypot(xx - x[0], yy - y[0]) < 8
        cx = np.sum(rate[near] * xx[near]) / rate[near].sum()
        cy = np.sum(rate[near] * yy[near]) / rate[near].sum()
        assert (cx, cy) == pytest.approx((x[0], y[0]), abs=0.05)
        expected = total_mjy / pixel_sr / PHOTMJSR * LYOT * MASK.intensity(2.0)
        assert rate[near].sum() == pytest.approx(expected, rel=0.03)


def test_the_offaxis_kernel_is_centred_and_normalised():
    """A PSF on the optics' grid at the kernel's offset (a Gaussian there) gives a kernel
    whose centroid is its central pixel."""
    fov = grid_pixels(MASK)
    n = fov * OVERSAMPLE
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n]
    y0 = c + KERNEL_OFFSET_PIX * OVERSAMPLE
    grid = np.exp(-((xx - c) ** 2 + (yy - y0) ** 2) / (2 * 3.0**2))
    kernel = offaxis_kernel(lambda offset: grid, MASK)
    h = KERNEL_HALF_PIX
    assert kernel.shape == (2 * h + 1, 2 * h + 1) and kernel.sum() == pytest.approx(1.0)
    ky, kx = np.mgrid[0:2 * h + 1, 0:2 * h + 1]
    assert np.sum(kernel * kx) == pytest.approx(h, abs=0.01)
    assert np.sum(kernel * ky) == pytest.approx(h, abs=0.01)


def test_a_coronagraphy_scenario_takes_a_disk_image(tmp_path):
    from simval.scenario import load_scenario, scenario_hash

    write_image(tmp_path / "disk.fits", np.ones((50, 50)), RA, DEC, 0.05)
    data = yaml.safe_load((ROOT / "scenarios" / "coron_quickstart.yaml").read_text())
    data["extended_emission"] = {"file": "disk.fits", "scale": 2.0}
    path = tmp_path / "disk.yaml"
    path.write_text(yaml.safe_dump(data))
    s = load_scenario(path)
    assert s.extended_emission.scale_for("F335M") == 2.0
    h = scenario_hash(s)
    (tmp_path / "disk.fits").unlink()
    write_image(tmp_path / "disk.fits", np.full((50, 50), 2.0), RA, DEC, 0.05)
    assert scenario_hash(load_scenario(path)) != h  # the image enters by content


def test_the_disk_metric_reads_a_known_over_subtraction(tmp_path):
    """A psfsub holding 0.8 of the disk (MJy/sr = DN/s x PHOTMJSR), plus a companion that
    must be left out: disk_flux_ratio reads 0.8."""
    from astropy.io import fits

    from simval.metrics.coron_evaluate import _disk_row

    n = 120
    yy, xx = np.mgrid[0:n, 0:n]
    centre = (60.0, 60.0)
    ring = np.exp(-((np.hypot(xx - 60, yy - 60) - 30) ** 2) / (2 * 2.0**2))  # DN/s
    photmjsr = 1.7
    psfsub = 0.8 * ring * photmjsr
    psfsub[88:93, 58:63] += 50.0  # a companion on the ring at (60, 90)
    sub = tmp_path / "a_psfsub.fits"
    hdu = fits.ImageHDU(np.array([psfsub, psfsub], np.float32), name="SCI")
    hdu.header["PHOTMJSR"] = photmjsr
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(sub)
    disk = tmp_path / "a_disk_rate.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(ring.astype(np.float32), name="SCI")]
                 ).writeto(disk)
    row = _disk_row({"psfsub:a": sub, "disk:a": disk}, "a", np.mean([psfsub, psfsub], axis=0),
                    centre, [(60.0, 90.0)])
    assert row["disk_flux_ratio"] == pytest.approx(0.8, rel=1e-4)
    assert 0 < row["pixels"] < int(np.sum(ring > 0.2))  # the companion's pixels left out
