"""simval.testing's fake-run builders: their own known answers.

A run made with ``scale=1.05`` has catalog fluxes and mosaic pixels 1.05 times the
truth's; ``shift_mas=20`` reads 20 mas through the real matching and metrics; a mosaic
source holds its truth flux; the manifest is one :func:`simval.manifest_schema.read_manifest`
accepts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from simval.layout import RunLayout
from simval.manifest_schema import read_manifest
from simval.match import MEASURED_COLUMNS, TRUTH_COLUMNS
from simval.metrics_schema import read_metrics
from simval.testing import (
    FIELD_CENTRE_DEG,
    PIXEL_SCALE_ARCSEC,
    make_catalog,
    make_fake_run,
    make_i2d,
    make_truth,
    product_name,
    tan_wcs,
)

F115W = product_name("F115W")


def test_truth_and_catalog_follow_the_column_contract():
    truth = make_truth(3, n_stars=40, n_galaxies=10)
    assert set(TRUTH_COLUMNS) <= set(truth.colnames) and len(truth) == 50
    assert list(truth["type"]).count("star") == 40
    assert np.allclose(truth["flux_true_jy"], 3631.0 * 10 ** (-0.4 * truth["mag_true_ab"]))
    x, y = tan_wcs((180, 200), FIELD_CENTRE_DEG, PIXEL_SCALE_ARCSEC).all_world2pix(
        truth["ra"], truth["dec"], 0)
    assert np.allclose(x, truth["mosaic_x"], atol=1e-6)
    assert np.allclose(y, truth["mosaic_y"], atol=1e-6)
    cat = make_catalog(truth, scale=1.05, sigma_mag=0.0, mag_limit=None, missing_every=5,
                       n_spurious=2)
    assert set(MEASURED_COLUMNS) <= set(cat.colnames)
    assert len(cat) == 40 + 2  # every fifth missed, two spurious
    found = truth[np.arange(50) % 5 != 0]
    stars = found["type"] == "star"
    assert cat["aper_total_flux"].unit == "Jy"
    flux = np.asarray(cat["aper_total_flux"][:40])
    assert np.allclose(flux / found["flux_true_jy"], 1.05, rtol=1e-12, atol=0)
    assert np.allclose(cat["aper_total_abmag"][:40][stars],
                       found["mag_true_ab"][stars] - 2.5 * math.log10(1.05))
    assert make_catalog(truth, seed=4).pformat() == make_catalog(truth, seed=4).pformat()


def test_a_mosaic_source_holds_its_truth_flux(tmp_path: Path):
    wcs = tan_wcs((60, 60), FIELD_CENTRE_DEG, PIXEL_SCALE_ARCSEC)
    ra, dec = wcs.all_pix2world([30.3], [29.6], 0)
    truth = Table({"ra": ra, "dec": dec, "mag_true_ab": [21.0], "type": ["star"]})
    sci = make_i2d(tmp_path / "x_i2d.fits", truth, shape=(60, 60), wcs=wcs, sky_mjysr=0.3,
                   noise_mjysr=1e-9, scale=1.05, hole=None)
    with fits.open(tmp_path / "x_i2d.fits") as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "CON", "WHT"]
        hdr = hdul["SCI"].header
        assert hdr["BUNIT"] == "MJy/sr"
        assert np.allclose(hdul["SCI"].data, sci, rtol=1e-6)
    flux_jy = np.sum(sci - 0.3 * 1.05) * hdr["PIXAR_SR"] * 1e6
    assert flux_jy == pytest.approx(1.05 * 3631.0 * 10 ** (-8.4), rel=1e-4)
    assert hdr["PIXAR_A2"] == pytest.approx(PIXEL_SCALE_ARCSEC ** 2, rel=1e-6)


def test_scale_and_shift_read_back_through_the_real_evaluation(tmp_path: Path):
    options = {"bands": ("F115W",), "truth_options": {"n_stars": 150, "n_galaxies": 20}}
    base = make_fake_run(tmp_path / "base", **options)
    moved = make_fake_run(tmp_path / "moved", scale=1.05, shift_mas=20.0, **options)
    a, b = (Table.read(RunLayout(r).product_file(F115W, "_cat.ecsv")) for r in (base, moved))
    assert np.allclose(b["aper_total_flux"] / a["aper_total_flux"], 1.05, rtol=1e-12)
    with fits.open(RunLayout(base).product_file(F115W, "_i2d.fits")) as ha, \
            fits.open(RunLayout(moved).product_file(F115W, "_i2d.fits")) as hb:
        ok = np.isfinite(ha["SCI"].data)
        assert np.allclose(hb["SCI"].data[ok] / ha["SCI"].data[ok], 1.05, rtol=1e-6)
    ma, mb = (read_metrics(r / "metrics.json") for r in (base, moved))
    dra, ddec = mb.get("F115W", "astrom_dra_mas"), mb.get("F115W", "astrom_ddec_mas")
    assert dra.value == pytest.approx(20.0, abs=max(3 * dra.uncertainty, 0.5))
    assert abs(ddec.value) < max(3 * ddec.uncertainty, 0.5)
    assert abs(ma.get("F115W", "astrom_dra_mas").value) < 1.5
    bias_a, bias_b = (m.get("F115W", "phot_bias_star_mag").value for m in (ma, mb))
    assert bias_b - bias_a == pytest.approx(-2.5 * math.log10(1.05), abs=1e-9)


def test_completeness_of_every_third_missed_is_two_thirds(tmp_path: Path):
    run = make_fake_run(tmp_path / "run", truth_options={"n_stars": 30, "n_galaxies": 30},
                        catalog_options={"missing_every": 3, "mag_limit": None})
    completeness = read_metrics(run / "metrics.json").get("F115W", "completeness")
    assert completeness.value == pytest.approx(40 / 60) and completeness.n == 60


def test_the_manifest_validates_and_points_at_the_files(tmp_path: Path):
    run = make_fake_run(tmp_path / "run", bands=("F115W", "F150W"),
                        truth_options={"n_stars": 20, "n_galaxies": 5},
                        thresholds={"completeness": {"min": 0.9}})
    doc = read_manifest(run / "manifest.json")
    assert doc.status == "complete" and doc.failed_stages == []
    assert doc.scenario.name == "synthetic" and doc.crds.context == "jwst_0001.pmap"
    assert set(doc.products) == {"F115W", "F150W"}
    for info in doc.products.values():
        assert (run / info.i2d).is_file() and (run / info.catalog).is_file()
    assert {sid: s.status for sid, s in doc.stages.items()} == {
        "kit": "cached", **{f"{k}.{product_name(b)}": "complete" for b in ("F115W", "F150W")
                            for k in ("image3", "truth", "evaluate")}}
    plan = json.loads((run / "plan.json").read_text())
    assert plan["scenario"]["comparison"]["thresholds"] == {"completeness": {"min": 0.9}}
    assert set(read_metrics(run / "metrics.json").filters) == {"F115W", "F150W"}

    failed = make_fake_run(tmp_path / "failed", status="failed", error="RuntimeError: x")
    doc = read_manifest(failed / "manifest.json")
    assert doc.status == "failed" and doc.failed_stages == [f"image3.{F115W}"]
    assert doc.stages[f"image3.{F115W}"].error == "RuntimeError: x"
    assert doc.blocked_stages == [f"truth.{F115W}", f"evaluate.{F115W}"]
    assert not (failed / "image3").exists() and not (failed / "metrics.json").exists()
    with pytest.raises(ValueError, match="status"):
        make_fake_run(tmp_path / "odd", status="interrupted")
