"""One MIRI exposure simulated file to file: the seed image holds exactly the catalog's
fluxes, galaxies lie along their catalog position angle, and simval's MIRAGE truth-list
readers read the lists back."""

from __future__ import annotations

import numpy as np
import pytest

from simval.instruments.miri_detector import MiriEffects, Readout
from simval.simulate.miri_exposure import MiriSources, simulate_miri_exposure
from simval.simulate.miri_scene import MiriCalibration, ab_to_ujy, star_pixels
from simval.simulate.miri_uncal import MiriExposure, miri_aperture

READOUT = Readout("SUB256", "FASTR1", ngroups=5, nints=1)
SKY = 2.0  # MJy/sr


@pytest.fixture(scope="module")
def exposure(miri_kit, tmp_path_factory):
    from simval import offline
    from simval.pointing import attitude_at_pa_v3

    ap = miri_aperture(READOUT.subarray)
    att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 150.1, 2.2, 70.0)
    ra0, dec0 = (float(v) for v in offline.siaf_rotations().pointing(att, ap.V2Ref,
                                                                      ap.V3Ref))
    arcsec = 1.0 / 3600.0
    cosd = np.cos(np.radians(dec0))
    sources = MiriSources(
        star_ra=np.array([ra0 - 6 * arcsec / cosd, ra0 + 60 * arcsec / cosd]),
        star_dec=np.array([dec0 - 6 * arcsec, dec0]), star_mag=np.array([18.0, 18.0]),
        star_index=np.array([1, 2]),
        gal_ra=np.array([ra0 + 6 * arcsec / cosd]), gal_dec=np.array([dec0 + 6 * arcsec]),
        gal_mag=np.array([17.5]), gal_radius=np.array([0.8]),
        gal_ellipticity=np.array([0.5]), gal_pos_angle=np.array([30.0]),
        gal_sersic=np.array([1.0]), gal_index=np.array([101]))
    products = simulate_miri_exposure(
        tmp_path_factory.mktemp("miri_exp"), "jw00001001001_01101_00001_mirimage",
        cal=MiriCalibration.from_kit(miri_kit, "F770W"), detector_seed=miri_kit.spec.seed,
        exposure=MiriExposure("F770W", 60000.5), readout=READOUT,
        attitude=att, sources=sources, sky_mjy_sr=SKY, seed=3,
        effects=MiriEffects(cosmic_rays_per_cm2_s=0.0))
    return products, sources, att, MiriCalibration.from_kit(miri_kit, "F770W")


def test_seed_image_holds_the_catalog_fluxes(exposure):
    from astropy.io import fits

    products, sources, att, cal = exposure
    seed = fits.getdata(products.seed_image, 1).astype(float)
    sky = SKY / cal.photmjsr
    x, y = star_pixels(sources.star_ra, sources.star_dec, att, READOUT.subarray,
                       cal.distortion_path)
    box = 50
    ix, iy = round(x[0]), round(y[0])
    star = seed[iy - box:iy + box + 1, ix - box:ix + box + 1] - sky
    # the star is 100 px from the galaxy; its stamp is 101 px: all of it in the box
    assert star.sum() == pytest.approx(ab_to_ujy(18.0) * cal.rate_per_ujy(), rel=2e-3)
    gx, gy = star_pixels(sources.gal_ra, sources.gal_dec, att, READOUT.subarray,
                         cal.distortion_path)
    half = 30
    jx, jy = round(gx[0]), round(gy[0])
    gal = seed[jy - half:jy + half + 1, jx - half:jx + half + 1] - sky
    assert gal.sum() == pytest.approx(ab_to_ujy(17.5) * cal.rate_per_ujy(), rel=0.02)
    # the second star is off the array (60" east): not in the truth list
    assert not (0 <= x[1] < 256 and 0 <= y[1] < 256)


def test_galaxy_major_axis_follows_its_position_angle(exposure):
    """The galaxy's second moments in the seed image point along PA 30 deg E of N, with
    North and East taken from two sky offsets of the star positions' own mapping."""
    from astropy.io import fits

    products, sources, att, cal = exposure
    seed = fits.getdata(products.seed_image, 1).astype(float) - SKY / cal.photmjsr
    ra, dec = float(sources.gal_ra[0]), float(sources.gal_dec[0])
    step = 1.0 / 3600.0
    px, py = star_pixels(np.array([ra, ra, ra + step / np.cos(np.radians(dec))]),
                         np.array([dec, dec + step, dec]), att, READOUT.subarray,
                         cal.distortion_path)
    north = np.array([px[1] - px[0], py[1] - py[0]])
    east = np.array([px[2] - px[0], py[2] - py[0]])
    pa = np.radians(30.0)
    want = np.cos(pa) * north / np.linalg.norm(north) + np.sin(pa) * east / np.linalg.norm(east)
    half = 25
    jx, jy = round(px[0]), round(py[0])
    cut = seed[jy - half:jy + half + 1, jx - half:jx + half + 1]
    yy, xx = np.mgrid[jy - half:jy + half + 1, jx - half:jx + half + 1].astype(float)
    w = cut / cut.sum()
    mx, my = (w * xx).sum(), (w * yy).sum()
    cxx = (w * (xx - mx) ** 2).sum()
    cyy = (w * (yy - my) ** 2).sum()
    cxy = (w * (xx - mx) * (yy - my)).sum()
    vals, vecs = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    major = vecs[:, np.argmax(vals)]
    want /= np.linalg.norm(want)
    angle = np.degrees(np.arccos(min(1.0, abs(float(major @ want)))))
    assert angle < 2.0
    assert np.hypot(mx - px[0], my - py[0]) < 0.05  # centred where the catalog puts it


def test_truth_lists_read_back_with_the_mirage_readers(exposure):
    from simval.simulate.mirage_catalogs import read_galaxy_list, read_point_source_list

    products, _, _, cal = exposure
    stars = read_point_source_list(products.point_sources)
    assert list(stars["index"]) == [1]
    assert stars["magnitude"][0] == pytest.approx(18.0)
    assert stars["countrate_adu_s"][0] == pytest.approx(
        ab_to_ujy(18.0) * cal.rate_per_ujy(), rel=1e-5)
    gals = read_galaxy_list(products.galaxies)
    assert list(gals["index"]) == [101]
    assert gals["radius"][0] == pytest.approx(0.8 / 0.11092, rel=1e-3)


def test_same_seed_same_files(exposure, miri_kit, tmp_path):
    """Deterministic: the same inputs and seed write the same uncal data."""
    from astropy.io import fits

    products, sources, att, _ = exposure
    again = simulate_miri_exposure(
        tmp_path, "jw00001001001_01101_00001_mirimage",
        cal=MiriCalibration.from_kit(miri_kit, "F770W"), detector_seed=miri_kit.spec.seed,
        exposure=MiriExposure("F770W", 60000.5), readout=READOUT, attitude=att,
        sources=sources, sky_mjy_sr=SKY, seed=3,
        effects=MiriEffects(cosmic_rays_per_cm2_s=0.0))
    assert np.array_equal(fits.getdata(again.uncal, "SCI"),
                          fits.getdata(products.uncal, "SCI"))
    assert again.point_sources.read_text() == products.point_sources.read_text()
