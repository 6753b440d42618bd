"""Known-answer tests of simval.metrics: every metric on a case whose answer is known."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from simval.match import match_catalogs, match_sky
from simval.metrics import (
    astrometric_offsets,
    background_residual,
    catalog_metrics,
    completeness_curve,
    error_ratio,
    expected_mosaic_level,
    footprint_from_polygons,
    footprint_from_weight,
    hole_statistics,
    magnitude_at_completeness,
    masks_from_context,
    masks_from_polygons,
    nmad,
    photometric_bias,
    purity_curve,
    random_aperture_depth,
    seam_steps,
    select_bright_isolated_stars,
    skymatch_comparison,
    source_mask,
)
from simval.metrics_schema import CORONAGRAPHY_GROUPS, REGISTRY, Measurement

AB_JY = 3631.0


def make_field(rng, n=300, *, flux_scale=1.0, shift_mas=(0.0, 0.0), drop_every=None,
               n_spurious=0, snr=200.0):
    """Truth (stars and galaxies) and a jwst-like measured catalog derived from it."""
    dec0 = -27.79
    # a jittered 3" grid: no two sources closer than 1" (no ambiguous matches)
    side = int(np.ceil(np.sqrt(n)))
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    x = (gx.ravel()[:n] - side / 2) * 3.0 + rng.uniform(-1, 1, n)
    y = (gy.ravel()[:n] - side / 2) * 3.0 + rng.uniform(-1, 1, n)
    dec = dec0 + y / 3600.0
    ra = 53.16 + x / 3600.0 / np.cos(np.radians(dec0))
    mag = rng.uniform(18.0, 26.0, n)
    kind = np.where(np.arange(n) % 2 == 0, "star", "galaxy")
    truth = Table({"id": np.arange(1, n + 1), "ra": ra, "dec": dec, "mag_true_ab": mag,
                   "type": kind, "in_footprint": np.ones(n, bool),
                   "n_exposures": np.full(n, 4)})
    keep = np.ones(n, bool) if drop_every is None else (np.arange(n) % drop_every != 0)
    c = SkyCoord(ra[keep] * u.deg, dec[keep] * u.deg).spherical_offsets_by(
        shift_mas[0] * u.mas, shift_mas[1] * u.mas)
    flux = AB_JY * 10 ** (-0.4 * mag[keep]) * flux_scale
    mra, mdec = c.ra.deg, c.dec.deg
    if n_spurious:
        # spurious detections half-way between grid points: > 0.4" from any truth
        sx = (rng.integers(0, side - 1, n_spurious) - side / 2 + 0.5) * 3.0
        sy = (rng.integers(0, side - 1, n_spurious) - side / 2 + 0.5) * 3.0
        sra = 53.16 + sx / 3600 / np.cos(np.radians(dec0))
        sdec = dec0 + sy / 3600
        mra, mdec = np.concatenate([mra, sra]), np.concatenate([mdec, sdec])
        flux = np.concatenate([flux, AB_JY * 10 ** (-0.4 * rng.uniform(24, 27, n_spurious))])
    abmag = -2.5 * np.log10(flux / AB_JY)
    measured = Table({"label": np.arange(1, flux.size + 1),
                      "sky_centroid": SkyCoord(mra * u.deg, mdec * u.deg),
                      "aper_total_flux": flux, "aper_total_flux_err": flux / snr,
                      "aper_total_abmag": abmag, "isophotal_flux": flux,
                      "isophotal_flux_err": flux / snr, "isophotal_abmag": abmag})
    return truth, measured


# --- photometry ----------------------------------------------------------------------------

def test_flux_scaled_by_1_05_reads_minus_0_053_mag(rng):
    truth, measured = make_field(rng, flux_scale=1.05)
    res = catalog_metrics(truth, measured, match_catalogs(measured, truth, 50.0),
                          bright_mag_max=22.0, bright_snr_min=None)
    m = res.measurements()
    expected = -2.5 * np.log10(1.05)  # -0.05297: measured brighter -> negative
    for name in ("phot_bias_star_mag", "phot_bias_galaxy_mag", "phot_bias_bright_star_mag"):
        assert m[name].value == pytest.approx(expected, abs=1e-6), name
        assert m[name].unit == "mag"
    assert m["phot_bias_star_mag"].n == 150
    assert m["phot_nmad_star_mag"].value == pytest.approx(0.0, abs=1e-9)
    assert round(m["phot_bias_star_mag"].value, 3) == -0.053
    assert 0 < m["phot_bias_bright_star_mag"].n < 150


def test_nmad_of_gaussian_is_sigma(rng):
    x = rng.normal(3.0, 0.25, 200_000)
    assert nmad(x) == pytest.approx(0.25, rel=0.01)
    res = photometric_bias(x, np.zeros_like(x), bins=1.0)
    assert res.bias_mag == pytest.approx(3.0, abs=0.002)
    assert res.nmad_mag == pytest.approx(0.25, rel=0.01)
    assert res.bias_err_mag == pytest.approx(np.sqrt(np.pi / 2) * 0.25 / np.sqrt(2e5),
                                             rel=0.02)
    assert np.isnan(nmad([]))


def test_bright_star_outliers_show_clipped_cores(rng):
    true = rng.uniform(18, 21, 30)
    meas = true + 0.002 + rng.normal(0, 0.005, 30)
    meas[[3, 7, 11]] += [0.12, 0.2, 0.32]  # outlier_detection ate their cores
    res = photometric_bias(meas, true, sample="bright_star")
    assert abs(res.bias_mag) < 0.01
    assert res.outlier_frac == pytest.approx(0.1)
    assert sorted(o["index"] for o in res.outliers) == [3, 7, 11]
    assert all(o["dmag"] > 0.1 for o in res.outliers)  # positive: measured too faint
    assert "phot_outlier_frac_bright_star" in res.measurements()


def test_bright_isolated_selection():
    truth = Table({"ra": [0.0, 0.2 / 3600, 10 / 3600, 20 / 3600, 30 / 3600, 40 / 3600],
                   "dec": np.zeros(6), "mag_true_ab": [18.0, 19.0, 19.5, 20.0, 25.0, 19.0],
                   "type": ["star", "star", "star", "galaxy", "star", "star"],
                   "in_footprint": [True, True, True, True, True, False],
                   "n_exposures": [4, 4, 2, 4, 4, 4]})
    sel = select_bright_isolated_stars(truth, mag_max=22.0)
    # 0: ok; 1: brighter neighbour 0.2" away; 2: partial coverage; 3: galaxy; 4: faint;
    # 5: outside the footprint
    assert sel.tolist() == [True, False, False, False, False, False]
    with pytest.raises(ValueError, match="mag_max and/or snr_min"):
        select_bright_isolated_stars(truth)


# --- completeness and purity ------------------------------------------------------------------

def test_missing_every_third_source_reads_two_thirds(rng):
    truth, measured = make_field(rng, n=300, drop_every=3)
    res = catalog_metrics(truth, measured, match_catalogs(measured, truth, 50.0),
                          bright_mag_max=22.0)
    m = res.measurements()
    assert m["completeness"].value == pytest.approx(2 / 3)
    assert round(100 * m["completeness"].value, 1) == 66.7
    assert m["completeness"].n == 300
    lo, hi = m["completeness"].details["lower"], m["completeness"].details["upper"]
    assert lo < 2 / 3 < hi and hi - lo < 0.06
    assert m["purity"].value == 1.0 and m["spurious_fraction"].value == 0.0


def test_completeness_counts_only_sources_in_the_footprint(rng):
    truth, measured = make_field(rng, n=90)
    truth["in_footprint"][:30] = False
    measured = measured[30:]  # the outside ones were not detected
    res = catalog_metrics(truth, measured, match_catalogs(measured, truth, 50.0),
                          bright_mag_max=22.0)
    assert res.completeness.overall.value == 1.0 and res.completeness.overall.n == 60


def test_logistic_completeness_gives_mag50_and_mag90(rng):
    m50, width = 25.0, 0.3
    mag = rng.uniform(20.0, 29.0, 40_000)
    p = 1.0 / (1.0 + np.exp((mag - m50) / width))
    detected = rng.random(mag.size) < p
    curve = completeness_curve(mag, detected, bins=0.2)
    assert curve.mag50 == pytest.approx(m50, abs=0.05)
    assert curve.mag90 == pytest.approx(m50 + width * np.log(1 / 9), abs=0.05)  # 24.341
    assert 0 < curve.mag50_err < 0.1
    lo, hi = curve.lower, curve.upper
    ok = np.isfinite(curve.fraction)
    assert np.all(lo[ok] <= curve.fraction[ok] + 1e-12)
    assert np.all(curve.fraction[ok] <= hi[ok] + 1e-12)
    ms = curve.measurements()
    assert ms["completeness_50_mag"].unit == "AB mag"


def test_magnitude_at_completeness_edge_cases():
    c = np.array([20.0, 21.0, 22.0, 23.0])
    # a dip at the bright end (a saturated star) does not count: faintest crossing wins
    assert magnitude_at_completeness(c, [0.4, 1.0, 0.8, 0.2], 0.5) == pytest.approx(22.5)
    assert np.isnan(magnitude_at_completeness(c, [1.0, 1.0, 0.9, 0.8], 0.5))  # never below
    assert np.isnan(magnitude_at_completeness(c, [0.1, 0.1, 0.1, 0.0], 0.5))  # never above
    # empty bins are skipped
    assert magnitude_at_completeness(c, [1.0, np.nan, 0.0, np.nan], 0.5) == pytest.approx(21.0)


def test_purity_with_injected_spurious_sources(rng):
    truth, measured = make_field(rng, n=200, n_spurious=50)
    match = match_catalogs(measured, truth, 50.0)
    pur = purity_curve(measured["isophotal_abmag"], match.measured_matched, bins=0.5)
    assert pur.overall.value == pytest.approx(200 / 250)
    m = pur.measurements()
    assert m["spurious_fraction"].value == pytest.approx(0.2)
    assert m["spurious_fraction"].details["n_spurious"] == 50
    # spurious ones were injected at 24-27 mag: purity is 1 brighter than 24
    edges = pur.bin_edges
    bright = edges[1:] <= 24.0
    assert np.all(pur.purity[bright & (pur.n_measured > 0)] == 1.0)
    assert np.nanmin(pur.purity) < 0.8


def test_completeness_above_snr20_from_estimated_snr(rng):
    truth, measured = make_field(rng, n=400)
    # S/N falls with magnitude: 20 at 24 mag; every source fainter than 25 is missed
    mags = measured["aper_total_abmag"]
    snr = 20 * 10 ** (-0.4 * (mags - 24.0))
    for col in ("aper_total_flux_err", "isophotal_flux_err"):
        measured[col] = measured["aper_total_flux"] / snr
    keep = mags < 25.0
    measured = measured[keep]
    res = catalog_metrics(truth, measured, match_catalogs(measured, truth, 50.0),
                          bright_mag_max=22.0)
    assert res.completeness_snr.value == 1.0
    n_bright = int((truth["mag_true_ab"] < 24.0).sum())
    assert abs(res.completeness_snr.n - n_bright) <= 2
    truth["snr_expected"] = 20 * 10 ** (-0.4 * (truth["mag_true_ab"] - 26.0))
    res = catalog_metrics(truth, measured, match_catalogs(measured, truth, 50.0),
                          bright_mag_max=22.0)
    frac_expected = (truth["mag_true_ab"] < 25).sum() / (truth["mag_true_ab"] < 26).sum()
    assert res.completeness_snr.value == pytest.approx(frac_expected)


# --- astrometry -------------------------------------------------------------------------------

@pytest.mark.parametrize(("east", "north"), [(20.0, 0.0), (0.0, 20.0), (-20.0, 0.0),
                                             (0.0, -20.0)])
def test_truth_shifted_by_20_mas(rng, east, north):
    truth, measured = make_field(rng, n=200, shift_mas=(east, north))
    res = catalog_metrics(truth, measured, match_catalogs(measured, truth, 100.0),
                          bright_mag_max=22.0)
    m = res.measurements()
    assert m["astrom_dra_mas"].value == pytest.approx(east, abs=1e-3)
    assert m["astrom_ddec_mas"].value == pytest.approx(north, abs=1e-3)
    assert m["astrom_offset_mas"].value == pytest.approx(20.0, abs=1e-3)
    assert m["astrom_rms_mas"].value == pytest.approx(20.0, abs=1e-3)
    assert m["astrom_rms_mas"].n == 100  # stars only


def test_astrometric_scatter(rng):
    ra = np.full(20_000, 10.0)
    dec = np.full(20_000, 40.0)
    dx, dy = rng.normal(3.0, 5.0, ra.size), rng.normal(-1.0, 5.0, ra.size)
    c = SkyCoord(ra * u.deg, dec * u.deg).spherical_offsets_by(dx * u.mas, dy * u.mas)
    res = astrometric_offsets(c.ra.deg, c.dec.deg, ra, dec)
    assert res.dra_mas == pytest.approx(3.0, abs=0.15)
    assert res.ddec_mas == pytest.approx(-1.0, abs=0.15)
    assert res.nmad_ra_mas == pytest.approx(5.0, rel=0.03)
    assert res.rms_mas == pytest.approx(np.sqrt(9 + 1 + 50), rel=0.02)
    assert astrometric_offsets([], [], [], []).n == 0


# --- background -------------------------------------------------------------------------------

def _gauss_sources(shape, rng, n, flux=50.0, sigma=2.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape)
    for x, y in zip(rng.uniform(10, shape[1] - 10, n), rng.uniform(10, shape[0] - 10, n),
                    strict=True):
        img += flux / (2 * np.pi * sigma**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2)
                                                     / (2 * sigma**2))
    return img


def test_background_residual_of_constant_plus_sources(rng):
    shape = (256, 256)
    sky_left, noise = 0.01, 0.02  # the pipeline left 0.01 MJy/sr of a 0.25 MJy/sr sky
    img = sky_left + rng.normal(0, noise, shape) + _gauss_sources(shape, rng, 60)
    mask = source_mask(img)
    assert 0.02 < mask.mean() < 0.5
    res = background_residual(img, mask=mask, expected_mjysr=0.0, injected_sky_mjysr=0.25)
    assert res.residual_mjysr == pytest.approx(sky_left, abs=0.001)
    assert res.residual_frac == pytest.approx(0.04, abs=0.004)
    assert 0 < res.residual_err_mjysr < 0.001
    naive = np.median(img)  # sources bias an unmasked median upwards
    assert naive > res.level_mjysr
    m = res.measurements()
    assert m["bkg_residual_frac"].unit == "fraction" and m["bkg_residual_mjysr"].n > 30_000


def test_background_residual_against_a_truth_mosaic_counts_faint_light_as_signal(rng):
    """A faint-galaxy pedestal in "sky" pixels (4% of the sky) that the pipeline kept is no
    sky error against the truth mosaic; the same mosaic read against the injected sky
    alone shows it (and the unmasked wings of the sources) as more than +4%. A real 1%
    over-subtraction is found in both cases."""
    shape, sky, noise = (256, 256), 0.25, 0.05
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    faint = 0.02 * (1 + np.sin(xx / 17.0) * np.cos(yy / 23.0))  # mean 0.01 = 4% of the sky
    truth = sky + faint + _gauss_sources(shape, rng, 40)
    for error in (0.0, -0.0025):
        img = truth + error + rng.normal(0, noise, shape)
        mask = source_mask(img)
        with_truth = background_residual(img, mask=mask, expected_mjysr=sky,
                                         injected_sky_mjysr=sky, truth=truth)
        alone = background_residual(img, mask=mask, expected_mjysr=sky, injected_sky_mjysr=sky)
        assert with_truth.residual_frac == pytest.approx(error / sky, abs=0.002)
        assert alone.residual_frac > 0.04 + error / sky - 0.005  # pedestal + source wings
        assert with_truth.expected_mjysr == pytest.approx(with_truth.level_mjysr -
                                                          with_truth.residual_mjysr)
    # a subtracted sky (expected 0): the mosaic is truth - sky, and reads 0
    img = truth - sky + rng.normal(0, noise, shape)
    res = background_residual(img, mask=source_mask(img), expected_mjysr=0.0,
                              injected_sky_mjysr=sky, truth=truth)
    assert res.residual_mjysr == pytest.approx(0.0, abs=0.0005)
    with pytest.raises(ValueError, match="injected_sky_mjysr"):
        background_residual(img, truth=truth)


def test_expected_mosaic_level():
    assert expected_mosaic_level(0.22, background_recipe="median_masked") == 0.0
    assert expected_mosaic_level(0.22, skymethod="global+match") == 0.0
    assert expected_mosaic_level([0.22, 0.25], skymethod="match") == 0.22
    assert expected_mosaic_level([0.22, 0.25], skymethod="match", match_down=False) == 0.25
    with pytest.raises(ValueError, match="user"):
        expected_mosaic_level(0.22, skymethod="user")


def test_skymatch_levels_against_injected():
    # 'match' (relative levels): identical exposures, spurious offsets up to 0.29 MJy/sr
    rel = skymatch_comparison([0.0, 0.29, 0.10, 0.05], 0.22, skymethod="match",
                              names=["a", "b", "c", "d"])
    assert rel.relative and rel.ratio is None
    assert rel.error_max_mjysr == pytest.approx(0.29)
    assert rel.error_max_frac == pytest.approx(0.29 / 0.22)
    np.testing.assert_allclose(rel.error_mjysr, [0.0, 0.29, 0.10, 0.05])
    # absolute levels: difference and ratio
    ab = skymatch_comparison([0.22, 0.231, 0.209], [0.22, 0.22, 0.22], skymethod="local")
    assert ab.error_max_mjysr == pytest.approx(0.011)
    np.testing.assert_allclose(ab.ratio, [1.0, 1.05, 0.95])
    assert ab.measurements()["skymatch_error_max_frac"].value == pytest.approx(0.05)


# --- noise ------------------------------------------------------------------------------------

def test_err_ratio_right_and_wrong_err(rng):
    sigma = 0.1
    img = 0.3 + rng.normal(0, sigma, (300, 300))
    right = error_ratio(img, np.full(img.shape, sigma))
    wrong = error_ratio(img, np.full(img.shape, sigma / 2))  # ERR underestimated 2x
    assert right.nmad == pytest.approx(1.0, abs=0.02)
    assert wrong.nmad == pytest.approx(2.0, abs=0.04)
    assert abs(right.median) < 0.02
    assert right.sky_mjysr == pytest.approx(0.3, abs=0.002)
    assert right.n == img.size


def test_depth_of_white_noise(rng):
    from photutils.aperture import CircularAperture

    sigma_pix, pixar, r = 0.05, 2.29e-14, 3.0
    img = rng.normal(0.0, sigma_pix, (1000, 1000))
    res = random_aperture_depth(img, radius_pix=r, pixar_sr=pixar, rng=rng, n_apertures=4000,
                                apcorr=1.25)
    # exact-overlap weights w of a circular aperture: sigma_ap = sigma_pix sqrt(sum w^2)
    # (= sqrt(N_pix) for whole pixels); averaged over aperture phases
    w2 = np.mean([np.sum(CircularAperture((500 + dx, 500 + dy), r=r)
                         .to_mask(method="exact").data ** 2)
                  for dx, dy in rng.uniform(-0.5, 0.5, (200, 2))])
    assert 25 < w2 < np.pi * r**2  # fewer than 28.3 whole pixels' worth
    sigma_ap = sigma_pix * np.sqrt(w2) * 1e6 * pixar  # Jy
    analytic = -2.5 * np.log10(5 * sigma_ap * 1.25 / AB_JY)
    assert res.depth_mag == pytest.approx(analytic, abs=3 * res.depth_err_mag)
    assert abs(res.depth_mag - analytic) < 0.03
    assert res.n_apertures == 4000
    assert res.measurements()["depth_5sigma_mag"].unit == "AB mag"


def test_depth_avoids_sources_and_invalid_pixels(rng):
    img = rng.normal(0.0, 0.05, (200, 200))
    img[:, :100] = np.nan
    res = random_aperture_depth(img, radius_pix=3, pixar_sr=1e-14, rng=rng, n_apertures=500)
    assert np.all(res.positions[:, 0] >= 102.5)  # the aperture stays off x <= 99.5
    assert np.isfinite(res.depth_mag)


# --- mosaic integrity ---------------------------------------------------------------------------

def test_ten_pixel_nan_stripe_hole_fraction(rng):
    ny, nx = 200, 300
    img = rng.normal(0.2, 0.01, (ny, nx))
    img[:, 100:110] = np.nan  # a black line 10 pixels wide, full height
    expected = 10 * ny / (ny * nx)  # = 1/30
    full = np.ones((ny, nx), bool)
    res = hole_statistics(img, footprint=full)
    assert res.hole_frac == pytest.approx(expected, rel=1e-12)
    assert res.n_holes == 2000 and res.n_footprint == 60_000
    assert res.black_line_count == 1
    assert res.black_line_frac == pytest.approx(expected)
    line = res.lines[0]
    assert line["length_pix"] == pytest.approx(200, abs=0.5)
    assert line["width_pix"] == pytest.approx(10, abs=0.1)
    assert abs(abs(line["angle_deg"]) - 90) < 1e-6
    # footprint from two abutting exposure polygons (pixel edges at -0.5 and 299.5)
    polys = [[(-0.5, -0.5), (149.5, -0.5), (149.5, 199.5), (-0.5, 199.5)],
             [(149.5, -0.5), (299.5, -0.5), (299.5, 199.5), (149.5, 199.5)]]
    assert footprint_from_polygons(polys, (ny, nx)).all()
    assert hole_statistics(img, polygons=polys).hole_frac == pytest.approx(expected)
    # from the weights (closing): the stripe is filled except near the outer edges
    wht = np.where(np.isfinite(img), 1.0, 0.0)
    fp = footprint_from_weight(wht, close_radius_pix=10)
    assert fp[20:180].all()
    res_w = hole_statistics(img, wht=wht)
    assert 0.9 * expected < res_w.hole_frac <= expected
    assert res_w.black_line_count == 1


def test_compact_holes_are_not_lines(rng):
    img = np.ones((100, 100))
    img[40:46, 40:46] = np.nan
    res = hole_statistics(img, footprint=np.ones(img.shape, bool))
    assert res.hole_frac == pytest.approx(36 / 1e4)
    assert res.black_line_count == 0


def test_seam_step_of_two_offset_halves(rng):
    ny, nx, step = 200, 300, 0.03
    img = 0.2 + rng.normal(0, 0.01, (ny, nx))
    img[:, 150:] += step  # exposure B's sky is 0.03 MJy/sr higher
    polys = [[(-0.5, -0.5), (149.5, -0.5), (149.5, 199.5), (-0.5, 199.5)],
             [(149.5, -0.5), (299.5, -0.5), (299.5, 199.5), (149.5, 199.5)]]
    res = seam_steps(img, masks_from_polygons(polys, (ny, nx)), names=["A", "B"],
                     injected_sky_mjysr=0.2)
    assert [s.name for s in res.steps] == ["A", "B"]
    assert res.steps[0].step_mjysr == pytest.approx(-step, abs=0.002)  # A darker inside
    assert res.steps[1].step_mjysr == pytest.approx(+step, abs=0.002)
    assert res.max_step_mjysr == pytest.approx(step, abs=0.002)
    assert res.max_step_frac == pytest.approx(step / 0.2, abs=0.01)
    flat = seam_steps(img - np.where(np.arange(nx) >= 150, step, 0.0),
                      masks_from_polygons(polys, (ny, nx)))
    assert flat.max_step_mjysr < 0.002


def test_context_image_decoding():
    con = np.zeros((2, 4, 4), np.int32)
    con[0, :, :2] |= 1 << 0
    con[0, :, 2:] |= 1 << 3
    con[0, 0, 0] |= np.int32(-2**31)  # bit 31 (input 31) is the sign bit of int32
    con[1, 1, 1] |= 1 << 2  # input 34
    masks = list(masks_from_context(con))
    assert len(masks) == 4
    assert masks[0][:, :2].all() and not masks[0][:, 2:].any()
    assert masks[1][:, 2:].all()
    assert masks[2].sum() == 1 and masks[2][0, 0]
    assert masks[3].sum() == 1 and masks[3][1, 1]


def test_mosaic_measurements_end_to_end(rng):
    """The production path of the mosaic metrics (simval.evaluate.mosaic_measurements) on a
    two-exposure mosaic with a 3 x 180-pixel hole between the exposures and known levels
    (the footprint is the WHT > 0 area with its holes filled: the whole 200 x 300 image)."""
    from simval.evaluate import PRODUCT_GROUPS, EvaluationSettings, Mosaic, mosaic_measurements

    ny, nx = 200, 300
    img = 0.22 + rng.normal(0, 0.01, (ny, nx)) + _gauss_sources((ny, nx), rng, 20)
    img[10:190, 148:151] = np.nan
    err = np.full(img.shape, 0.01)
    wht = np.where(np.isfinite(img), 1.0, 0.0)
    con = np.zeros((1, ny, nx), np.int32)
    con[0, :, :150] |= 1
    con[0, :, 150:] |= 2
    settings = EvaluationSettings(match_radius_mas=None, background_recipe="skymatch",
                                  skymethod="match", match_down=True, seed=0,
                                  catalog_options={})
    m = mosaic_measurements(Mosaic(img, err, wht, con, 2.3e-14), segm=None,
                            injected=np.array([0.22, 0.22]), levels=np.array([0.0, 0.01]),
                            names=["a", "b"], member_names=["a", "b"], settings=settings,
                            aperture=(3.0, 1.0, "test"), rng=rng)
    assert set(m) == {n for n, s in REGISTRY.items()
                      if s.group not in PRODUCT_GROUPS + CORONAGRAPHY_GROUPS}
    assert m["jump_frac"].value is None  # no cal files given
    assert abs(m["bkg_residual_frac"].value) < 0.005
    assert m["bkg_residual_mjysr"].details["expected_mjysr"] == pytest.approx(0.22)
    assert m["err_ratio_nmad"].value == pytest.approx(1.0, abs=0.05)
    assert m["hole_frac"].value == pytest.approx(3 * 180 / (200 * 300))
    assert m["black_line_count"].value == 1
    assert m["black_line_frac"].value == pytest.approx(3 * 180 / (200 * 300))
    assert m["seam_step_max_mjysr"].value < 0.005
    assert m["skymatch_error_max_mjysr"].value == pytest.approx(0.01)
    assert np.isfinite(m["depth_5sigma_mag"].value)
    assert all(isinstance(v, Measurement) for v in m.values())


def test_every_catalog_metric_is_registered(rng):
    truth, measured = make_field(rng, n=100)
    m = catalog_metrics(truth, measured, match_sky(*_radec(measured), truth["ra"],
                                                   truth["dec"], 50.0),
                        bright_mag_max=22.0).measurements()
    assert set(m) <= set(REGISTRY)
    assert {"completeness", "completeness_snr20", "completeness_50_mag", "purity",
            "phot_bias_bright_star_mag", "astrom_rms_mas"} <= set(m)
    for name, meas in m.items():
        assert meas.unit == REGISTRY[name].unit


def _radec(measured):
    return measured["sky_centroid"].ra.deg, measured["sky_centroid"].dec.deg


def test_full_coverage_is_one_visits_dithers_where_visits_overlap():
    """On a mosaic of 4-point visits that overlap, most stars have 4 exposures and the
    overlaps 8 (3 in a chip gap): the sample keeps every star with >= 4, not only the
    overlaps'."""
    nexp = [4] * 6 + [8] * 2 + [3] * 2
    n = len(nexp)
    truth = Table({"ra": np.arange(n) * 10 / 3600, "dec": np.zeros(n),
                   "mag_true_ab": np.full(n, 19.0), "type": ["star"] * n,
                   "in_footprint": [True] * n, "n_exposures": nexp})
    sel = select_bright_isolated_stars(truth, mag_max=22.0)
    assert sel.tolist() == [True] * 8 + [False] * 2
    assert select_bright_isolated_stars(truth, mag_max=22.0, min_exposures=8).sum() == 2
