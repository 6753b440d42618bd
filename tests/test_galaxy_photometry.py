"""simval.metrics.galaxy_photometry: the pipeline's footprints and apertures on the truth.

Known answers (an exact scene: Gaussian sources integrated over each pixel with erf, so a
box of pixels holds a known fraction of each source):

* a mosaic that is the truth's sources x 1.03 on another sky reads a calibration bias of
  -2.5 log10(1.03) = -0.0321 mag in every footprint and in the catalog's aperture, whatever
  the segment's size and the sky levels;
* the isophotal loss of a source whose segment is a box of half-width m pixels around it is
  -2.5 log10(f_x f_y), f the Gaussian's fraction inside the box along each axis;
* a catalog background too high by eps MJy/sr reads -2.5 log10(1 - A eps / F_mosaic);
* the three terms add up to the catalog's isophotal - true magnitude, source by source;
* sources below the S/N cut or without a segment are left out.

Then the evaluation path (simval.evaluate.mosaic_measurements) on a run made by
simval.testing: a mosaic scaled by 1.03 reads -0.032 mag for stars and galaxies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from simval.evaluate import EvaluationSettings, mosaic_measurements, read_mosaic
from simval.match import match_catalogs
from simval.match_table import build_match_table
from simval.metrics import (
    FootprintSources,
    catalog_aperture,
    footprint_photometry,
    source_mask,
)
from simval.metrics_schema import group_metrics, read_metrics, write_metrics
from simval.report.html import render_report
from simval.testing import (
    make_catalog,
    make_fake_run,
    make_i2d,
    make_segmentation,
    make_truth,
    make_truth_mosaic,
    product_name,
)
from tests.test_report import parse_html

GAIN = 1.03
DMAG = -2.5 * math.log10(GAIN)
PIXAR_SR = 2.27e-14
TO_JY = 1e6 * PIXAR_SR
SKY_TRUTH, SKY_MOSAIC, EPS = 0.2, 0.03, 0.01
APERTURE = {"aperture_radii": [1.0, 1.6, 2.5], "aperture_ee": [30, 50, 70],
            "aperture_corrections": [3.0, 2.0, 1.4], "bkg_aperture_inner_radius": 8.0,
            "bkg_aperture_outer_radius": 13.0}


def _scene(seed: int = 4, shape=(400, 400), spacing: int = 40):
    """Sources on a grid (stars first), pixel-integrated Gaussians; box segments."""
    rng = np.random.default_rng(seed)
    centres = [(spacing // 2 + spacing * i, spacing // 2 + spacing * j)
               for j in range(shape[0] // spacing) for i in range(shape[1] // spacing)]
    n = len(centres)
    x0 = np.array([c[0] for c in centres]) + rng.uniform(-0.5, 0.5, n)
    y0 = np.array([c[1] for c in centres]) + rng.uniform(-0.5, 0.5, n)
    kind = np.array(["star"] * 30 + ["galaxy"] * (n - 30))
    sigma = np.where(kind == "star", 1.0, rng.uniform(1.5, 4.0, n))
    flux = 10 ** rng.uniform(1.5, 3.5, n)  # MJy/sr x pixel
    half = np.round(sigma * rng.uniform(1.5, 3.0, n)).astype(int)
    src = np.zeros(shape)
    seg = np.zeros(shape, np.int32)
    frac = np.zeros(n)
    edges_y = np.arange(shape[0] + 1) - 0.5
    edges_x = np.arange(shape[1] + 1) - 0.5
    for k in range(n):
        px = np.diff(ndtr((edges_x - x0[k]) / sigma[k]))
        py = np.diff(ndtr((edges_y - y0[k]) / sigma[k]))
        src += flux[k] * np.outer(py, px)
        ix, iy = round(x0[k]), round(y0[k])
        m = half[k]
        seg[iy - m:iy + m + 1, ix - m:ix + m + 1] = k + 1
        frac[k] = px[ix - m:ix + m + 1].sum() * py[iy - m:iy + m + 1].sum()
    area = (2 * half + 1) ** 2
    return dict(src=src, seg=seg, x0=x0, y0=y0, kind=kind, flux=flux, frac=frac, area=area)


def _catalog_aperture_flux(image: np.ndarray, x, y) -> np.ndarray:
    """jwst source_catalog's largest-aperture flux on ``image`` (MJy/sr) in Jy."""
    from astropy.stats import SigmaClip
    from photutils.aperture import (
        ApertureStats,
        CircularAnnulus,
        CircularAperture,
        aperture_photometry,
    )

    xy = np.column_stack([x, y])
    ap = CircularAperture(xy, APERTURE["aperture_radii"][-1])
    ann = CircularAnnulus(xy, APERTURE["bkg_aperture_inner_radius"],
                          APERTURE["bkg_aperture_outer_radius"])
    jy = image * TO_JY
    bkg = ApertureStats(jy, ann, sigma_clip=SigmaClip(sigma=3.0)).median
    return np.asarray(aperture_photometry(jy, ap)["aperture_sum"]) - bkg * ap.area


def _measure(scene, *, noise: float = 0.0, snr=None, drop_segment=()):
    shape = scene["src"].shape
    truth = SKY_TRUTH + scene["src"]
    mosaic = SKY_MOSAIC + GAIN * scene["src"]
    if noise:
        mosaic = mosaic + np.random.default_rng(9).normal(0.0, noise, shape)
    seg = scene["seg"].copy()
    labels = np.arange(1, scene["x0"].size + 1)
    iso = np.array([np.sum(mosaic[seg == k] - (SKY_MOSAIC + EPS)) for k in labels]) * TO_JY
    n = labels.size
    snr = np.full(n, 100.0) if snr is None else snr
    for k in drop_segment:
        seg[seg == k] = 0
    sources = FootprintSources(
        label=labels, kind=scene["kind"], flux_true_jy=scene["flux"] * TO_JY,
        isolated=np.ones(n, bool), flux_jy=iso, flux_err_jy=np.abs(iso) / snr,
        x=scene["x0"], y=scene["y0"],
        aper_flux_jy=_catalog_aperture_flux(mosaic, scene["x0"], scene["y0"]),
        truth_row=labels - 1)
    mask = source_mask(truth, segmentation=seg, dilate_radius_pix=6)
    res = footprint_photometry(mosaic, truth, seg, sources, truth_sky_mjysr=SKY_TRUTH,
                               pixar_sr=PIXAR_SR, sky_mask=mask,
                               aperture=catalog_aperture({"aperture_params": APERTURE}))
    return res, iso


def test_exact_scene_splits_the_isophotal_magnitude():
    scene = _scene()
    res, iso = _measure(scene)
    assert res.in_sample.all()
    assert res.delta_mjysr == pytest.approx(SKY_MOSAIC - SKY_TRUTH, abs=1e-6)
    # calibration: the flux scale, in every footprint and aperture; box segments are not
    # drawn on the noise, so their edge adds nothing
    assert np.allclose(res.calib, DMAG, atol=2e-5)
    assert np.allclose(res.edge, 0.0, atol=2e-5)
    assert np.allclose(res.calib_aper, DMAG, atol=2e-5)
    # isophotal loss: the Gaussian outside the box
    loss = -2.5 * np.log10(scene["frac"])
    assert np.allclose(res.iso_loss, loss, atol=1e-6)
    assert loss.max() > 0.1  # the test has boxes that lose a tenth of a magnitude
    # the catalog's background is EPS too high over the segment's area
    sky = -2.5 * np.log10(1 - scene["area"] * EPS / (GAIN * scene["flux"] * scene["frac"]))
    assert np.allclose(res.catalog_sky, sky, atol=2e-5)
    # the three terms are the catalog's isophotal - true magnitude
    total = -2.5 * np.log10(iso / (scene["flux"] * TO_JY))
    assert np.allclose(res.calib + res.edge + res.catalog_sky + res.iso_loss, total,
                       atol=1e-9)

    m = res.measurements()
    assert set(m) == set(group_metrics("footprint_photometry"))
    gal = scene["kind"] == "galaxy"
    assert m["phot_calib_bias_galaxy_mag"].value == pytest.approx(DMAG, abs=2e-5)
    assert m["phot_calib_bias_star_mag"].value == pytest.approx(DMAG, abs=2e-5)
    assert m["phot_calib_bias_aper_galaxy_mag"].value == pytest.approx(DMAG, abs=2e-5)
    assert m["phot_calib_bias_aper_star_mag"].value == pytest.approx(DMAG, abs=2e-5)
    assert m["phot_calib_nmad_galaxy_mag"].value == pytest.approx(0.0, abs=2e-5)
    assert m["phot_iso_loss_galaxy_mag"].value == pytest.approx(np.median(loss[gal]))
    assert m["phot_catalog_sky_galaxy_mag"].value == pytest.approx(np.median(sky[gal]),
                                                                   abs=2e-5)
    assert m["phot_calib_bias_galaxy_mag"].n == int(gal.sum()) == 70
    assert m["phot_calib_bias_star_mag"].n == 30
    dec = m["phot_iso_loss_galaxy_mag"].details["decomposition"]
    assert dec["total_mag"] == pytest.approx(np.median(total[gal]))


def test_noise_sample_cut_and_missing_segments():
    scene = _scene()
    n = scene["x0"].size
    snr = np.where(np.arange(n) % 4 == 0, 10.0, 50.0)  # every fourth below the cut
    res, _ = _measure(scene, noise=0.01, snr=snr, drop_segment=(31, 32))
    keep = (np.arange(n) % 4 != 0) & ~np.isin(np.arange(1, n + 1), (31, 32))
    assert np.array_equal(res.in_sample, keep)
    assert np.isnan(res.calib[~keep]).all()
    m = res.measurements()
    gal = scene["kind"] == "galaxy"
    assert m["phot_calib_bias_galaxy_mag"].n == int((keep & gal).sum())
    # noise of 0.01 MJy/sr on sources of 30-3000 MJy/sr x pixel: a few mmag
    assert m["phot_calib_bias_galaxy_mag"].value == pytest.approx(DMAG, abs=0.004)
    assert m["phot_calib_bias_aper_star_mag"].value == pytest.approx(DMAG, abs=0.004)
    assert 0 < m["phot_calib_nmad_galaxy_mag"].value < 0.02
    assert m["phot_calib_bias_galaxy_mag"].details["snr_min"] == 20.0


def test_segments_drawn_on_the_noise_bias_their_edge_not_their_interior():
    """Segments thresholded on the noisy mosaic (as source_catalog draws them: 2-pixel
    FWHM smoothing, 2 sigma) take in the edge pixels where the noise was high: the whole
    segment reads brighter than the flux scale, its interior reads the scale."""
    from astropy.convolution import convolve
    from photutils.segmentation import detect_sources, make_2dgaussian_kernel

    scene = _scene()
    noise = 0.2
    truth = SKY_TRUTH + scene["src"]
    mosaic = SKY_MOSAIC + GAIN * scene["src"] + \
        np.random.default_rng(9).normal(0.0, noise, truth.shape)
    kernel = make_2dgaussian_kernel(2.0, size=5)
    smooth = convolve(mosaic - SKY_MOSAIC, kernel)
    seg = detect_sources(smooth, 2.0 * noise * np.sqrt(np.sum(kernel.array ** 2)),
                         n_pixels=10).data
    labels = seg[np.round(scene["y0"]).astype(int), np.round(scene["x0"]).astype(int)]
    n = labels.size
    iso = np.array([np.sum(mosaic[seg == k] - SKY_MOSAIC) if k else np.nan
                    for k in labels]) * TO_JY
    err = np.array([noise * np.sqrt(np.sum(seg == k)) if k else np.nan
                    for k in labels]) * TO_JY
    sources = FootprintSources(labels.astype(np.int64), scene["kind"], scene["flux"] * TO_JY,
                               np.ones(n, bool), iso, err, scene["x0"], scene["y0"],
                               np.full(n, np.nan), np.arange(n))
    res = footprint_photometry(mosaic, truth, seg, sources, truth_sky_mjysr=SKY_TRUTH,
                               pixar_sr=PIXAR_SR,
                               sky_mask=source_mask(truth, segmentation=seg,
                                                    dilate_radius_pix=6))
    m = res.measurements()
    assert m["phot_calib_bias_galaxy_mag"].n > 50
    assert m["phot_calib_bias_galaxy_mag"].value == pytest.approx(DMAG, abs=0.003)
    edge = m["phot_segment_edge_galaxy_mag"]
    assert edge.value < -0.005 and edge.value < -5 * edge.uncertainty
    dec = m["phot_calib_bias_galaxy_mag"].details["decomposition"]
    assert dec["segment_edge_mag"] == pytest.approx(edge.value)


def _settings() -> EvaluationSettings:
    return EvaluationSettings(match_radius_mas=None, background_recipe="skymatch",
                              skymethod="match", match_down=True, seed=0, catalog_options={})


def test_evaluation_path_on_a_synthetic_run(tmp_path):
    """make_truth / make_catalog / make_i2d (x 1.03) / make_truth_mosaic /
    make_segmentation through mosaic_measurements."""
    shape = (300, 300)
    name = product_name("F150W")
    truth = make_truth(2, n_stars=20, n_galaxies=20, shape=shape, mag_range=(19.0, 23.0),
                       margin_pix=20.0)
    catalog = make_catalog(truth, scale=GAIN, shape=shape, n_spurious=0, sigma_mas=1.0,
                           sigma_mag=0.0, mag_limit=None)
    make_i2d(tmp_path / f"{name}_i2d.fits", truth, scale=GAIN, shape=shape, sky_mjysr=0.2)
    tru = make_truth_mosaic(tmp_path / f"{name}_truth_i2d.fits", truth, sky_mjysr=0.2,
                            shape=shape)
    seg = make_segmentation(tmp_path / f"{name}_segm.fits", catalog, radius_pix=5.0,
                            shape=shape)
    table = build_match_table(truth, catalog, match_catalogs(catalog, truth, radius_mas=50.0),
                              None, band="F150W", product=name)
    mosaic = read_mosaic(tmp_path / f"{name}_i2d.fits")
    m = mosaic_measurements(mosaic, segm=seg, injected=np.array([0.2]),
                            levels=np.array([np.nan]), names=["a"], member_names=["a"],
                            settings=_settings(), aperture=(3.0, 1.0, "test"),
                            rng=np.random.default_rng(0), truth=(tru, "test truth"),
                            match=table, catalog=catalog)
    for kind in ("star", "galaxy"):
        got = m[f"phot_calib_bias_{kind}_mag"]
        assert got.value == pytest.approx(DMAG, abs=0.003), kind
        assert got.n >= 15 and got.details["truth"] == "test truth"
    # a 5-pixel disk holds all but exp(-25 / (2 x 1.2**2)) of a Gaussian of sigma 1.2
    loss = m["phot_iso_loss_galaxy_mag"]
    assert loss.value == pytest.approx(-2.5 * math.log10(1 - math.exp(-25 / 2.88)), abs=0.003)
    # make_catalog's isophotal fluxes are the truth's x 1.03 x 10**(-0.4 x 0.4), not pixel
    # sums: the 0.4 mag shows as the catalog's own term
    assert m["phot_catalog_sky_galaxy_mag"].value == pytest.approx(0.4, abs=0.005)
    # no aperture columns in make_catalog's table: the aperture terms say so
    assert m["phot_calib_bias_aper_star_mag"].value is None
    # without a truth mosaic the whole group is not computed, with the reason
    m = mosaic_measurements(mosaic, segm=seg, injected=np.array([0.2]),
                            levels=np.array([np.nan]), names=["a"], member_names=["a"],
                            settings=_settings(), aperture=(3.0, 1.0, "test"),
                            rng=np.random.default_rng(0), match=table, catalog=catalog)
    assert m["phot_calib_bias_galaxy_mag"].value is None
    assert "no truth mosaic" in m["phot_calib_bias_galaxy_mag"].details["not_computed"]


def test_the_report_shows_the_split(tmp_path):
    """report.html gets the table of the split: the calibration column reads the scale."""

    root = make_fake_run(tmp_path / "run", bands=("F150W",))
    res, _ = _measure(_scene())
    doc = read_metrics(root / "metrics.json")
    doc.add("F150W", res.measurements())
    write_metrics(root / "metrics.json", doc)
    table = parse_html(render_report(root)).find("table", cls="photometry-split")
    rows = {tr.find_all("td")[0].text: [td.text for td in tr.find_all("td")]
            for tr in table.find("tbody").find_all("tr")}
    assert set(rows) == {"galaxies", "stars"}
    gal = rows["galaxies"]
    assert gal[1] == "70" and gal[4].startswith(f"{DMAG:+.4f}")
    assert gal[5].startswith("+0.0000") or gal[5].startswith("-0.0000")  # box segments
    assert rows["stars"][8].startswith(f"{DMAG:+.4f}")
