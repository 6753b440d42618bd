"""A user's extended-emission image on MIRI pixels: a uniform image reads back its surface
brightness, a compact blob lands where its RA/Dec says with its integrated flux, the seed
image of a simulated exposure holds it, and bad images get one-line scenario errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.wcs import WCS

from simval.simulate.miri_extended import emission_rate, read_emission_image
from simval.simulate.miri_scene import MiriCalibration, distortion_model, star_pixels
from simval.simulate.miri_uncal import miri_aperture

ROOT = Path(__file__).resolve().parents[1]
SUBARRAY = "SUB256"


def write_image(path: Path, data: np.ndarray, ra: float, dec: float, scale_arcsec: float,
                bunit: str = "MJy/sr") -> Path:
    """A TAN image centred on (ra, dec) with square pixels of ``scale_arcsec``."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(data.shape[1] + 1) / 2.0, (data.shape[0] + 1) / 2.0]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    header = w.to_header()
    header["BUNIT"] = bunit
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(path)
    read_emission_image.cache_clear()
    return path


@pytest.fixture(scope="module")
def field():
    from simval import offline
    from simval.pointing import attitude_at_pa_v3

    ap = miri_aperture(SUBARRAY)
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 150.1, 2.2, 70.0)
    ra0, dec0 = (float(v) for v in offline.siaf_rotations().pointing(att, ap.V2Ref,
                                                                      ap.V3Ref))
    return att, ra0, dec0


def test_a_uniform_image_reads_back_its_surface_brightness(miri_kit, field, tmp_path):
    att, ra0, dec0 = field
    cal = MiriCalibration.from_kit(miri_kit, "F770W")
    path = write_image(tmp_path / "flat.fits", np.full((300, 300), 3.0), ra0, dec0, 0.2)
    rate = emission_rate(read_emission_image(str(path)), 2.0, att, SUBARRAY,
                         distortion_model(cal.distortion_path), cal.psf_path, cal.photmjsr)
    assert rate.shape == (256, 256)
    inner = rate[40:-40, 40:-40] * cal.photmjsr  # MJy/sr: 2 x 3.0 everywhere
    assert np.median(inner) == pytest.approx(6.0, rel=2e-3)
    assert np.ptp(inner) < 0.02 * 6.0


def test_a_compact_blob_lands_at_its_position_with_its_flux(miri_kit, field, tmp_path):
    """A Gaussian of sigma 0.3" on 0.05" pixels (finer than MIRI's: box-averaged first), 8"
    from the centre: its centroid is at the pixel its RA/Dec maps to, its integral is kept."""
    att, ra0, dec0 = field
    cal = MiriCalibration.from_kit(miri_kit, "F1500W")
    n, scale, sigma = 801, 0.05, 0.3
    dx, dy = 8.0, -5.0  # arcsec east, north of the centre
    yy, xx = (np.mgrid[0:n, 0:n] - (n - 1) / 2.0) * scale
    blob = 50.0 * np.exp(-((xx + dx) ** 2 + (yy - dy) ** 2) / (2 * sigma ** 2))  # x: -RA
    path = write_image(tmp_path / "blob.fits", blob, ra0, dec0, scale)
    image = read_emission_image(str(path))
    rate = emission_rate(image, 1.0, att, SUBARRAY, distortion_model(cal.distortion_path),
                         cal.psf_path, cal.photmjsr)
    ra, dec = image.wcs.pixel_to_world_values((n - 1) / 2.0 - dx / scale,
                                              (n - 1) / 2.0 + dy / scale)
    x, y = star_pixels(np.array([ra]), np.array([dec]), att, SUBARRAY, cal.distortion_path)
    py, px = np.mgrid[0:256, 0:256]
    total = rate.sum()
    assert (px * rate).sum() / total == pytest.approx(x[0], abs=0.05)
    assert (py * rate).sum() / total == pytest.approx(y[0], abs=0.05)
    integral_sr = blob.sum() * (scale / 206264.806) ** 2  # MJy
    assert total * cal.photmjsr * cal.pixar_sr == pytest.approx(integral_sr, rel=0.02)


def test_the_seed_image_holds_the_emission(miri_kit, field, tmp_path):
    from simval.instruments.miri_detector import MiriEffects, Readout
    from simval.simulate.miri_exposure import MiriSources, simulate_miri_exposure
    from simval.simulate.miri_uncal import MiriExposure

    att, ra0, dec0 = field
    cal = MiriCalibration.from_kit(miri_kit, "F770W")
    xx = np.mgrid[0:200, 0:200][1]
    image = read_emission_image(str(write_image(tmp_path / "ramp.fits", 0.01 * xx + 0.5,
                                                ra0, dec0, 0.25)))
    empty = MiriSources()  # no stars, no galaxies
    seeds = []
    for extended in (None, (image, 1.5)):
        products = simulate_miri_exposure(
            tmp_path / ("with" if extended else "without"),
            "jw00001001001_01101_00001_mirimage", cal=cal, detector_seed=miri_kit.spec.seed,
            exposure=MiriExposure("F770W", 60000.5),
            readout=Readout(SUBARRAY, "FASTR1", ngroups=5, nints=1), attitude=att,
            sources=empty, sky_mjy_sr=1.0, seed=3,
            effects=MiriEffects(cosmic_rays_per_cm2_s=0.0), extended=extended)
        seeds.append(fits.getdata(products.seed_image, 1).astype(float))
    expected = emission_rate(image, 1.5, att, SUBARRAY, distortion_model(cal.distortion_path),
                             cal.psf_path, cal.photmjsr)
    np.testing.assert_allclose(seeds[1] - seeds[0], expected, rtol=1e-4, atol=1e-6)
    assert expected.mean() * cal.photmjsr > 0.5  # it is there: >= 1.5 x 0.5 MJy/sr


MIRI_QUICKSTART = ROOT / "scenarios" / "miri_quickstart.yaml"


def _load(tmp_path: Path, data: dict):
    from simval.scenario import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


def _error(tmp_path: Path, data: dict) -> str:
    from simval.scenario import ScenarioError

    with pytest.raises(ScenarioError) as err:
        _load(tmp_path, data)
    return str(err.value)


def test_scenario_takes_an_image_and_refuses_bad_ones(tmp_path):
    data = yaml.safe_load(MIRI_QUICKSTART.read_text())
    write_image(tmp_path / "good.fits", np.ones((20, 20)), 339.0, 33.96, 0.5)
    data["extended_emission"] = {"file": "good.fits", "scale": {"F1500W": 3.0}}
    s = _load(tmp_path, data)
    assert s.extended_emission.scale_for("F1500W") == 3.0
    assert s.extended_emission.scale_for("F770W") == 1.0

    write_image(tmp_path / "jy.fits", np.ones((20, 20)), 339.0, 33.96, 0.5, bunit="Jy")
    data["extended_emission"] = {"file": "jy.fits"}
    msg = _error(tmp_path, data)
    assert "extended_emission.file" in msg and "jy.fits" in msg and "MJy/sr" in msg
    assert msg.count("\n") == 1

    data["extended_emission"] = {"file": "good.fits", "scale": {"F1000W": 2.0}}
    msg = _error(tmp_path, data)
    assert "extended_emission.scale.F1000W" in msg and "F770W, F1500W" in msg

    data["extended_emission"] = {"file": "missing.fits"}
    assert "extended-emission image not found" in _error(tmp_path, data)


def test_nircam_scenario_refuses_an_extended_emission_image(tmp_path):
    from tests.scenario_data import quickstart_data

    data = quickstart_data()
    write_image(tmp_path / "good.fits", np.ones((20, 20)), 53.16, -27.79, 0.5)
    data["extended_emission"] = {"file": "good.fits"}
    msg = _error(tmp_path, data)
    assert "simulated for MIRI imaging and NIRCam coronagraphy" in msg
    assert "instrument: MIRI" in msg
