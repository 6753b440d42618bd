"""simval.evaluate: the full path from a run directory to metrics.json and verdicts.

Synthetic runs (tests/test_truth.py's :func:`make_run`): 30 stars and 15 galaxies on a
1.24-arcsec grid, all inside the mosaic and on both exposures. The "pipeline catalog" is
the truth shifted 20 mas north, with every flux x 1.05 and every third source missing, so
the evaluation must read an astrometric RMS of 20 mas, a photometric bias of
-2.5 log10(1.05) = -0.0530 mag and a completeness of 30/45. The mosaic is sky x 1.01 plus
white noise (sigma = ERR = 0.01 MJy/sr) with a 10-pixel NaN stripe.

One end-to-end test (marked slow) runs a reduced quickstart with MIRAGE and the pipeline
and evaluates it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from simval.evaluate import CATALOG_METRICS
from simval.layout import RunLayout
from simval.match_table import read_match_table
from simval.metrics_schema import CORONAGRAPHY_GROUPS, REGISTRY, read_metrics
from simval.run import EvaluationError, evaluate_run
from simval.testing import record_finished_run
from simval.truth import read_truth
from tests.test_truth import (
    MOSAIC_SHAPE,
    exposure_coverage,
    make_plan,
    make_run,
    write_i2d,
)

#: What an imaging run measures: every registry metric but coronagraphy's.
IMAGING = {n for n, s in REGISTRY.items() if s.group not in CORONAGRAPHY_GROUPS}

SKY = 0.22
SIGMA = 0.01
SHIFT_MAS = 20.0
FLUX_SCALE = 1.05
N_STARS, N_GALAXIES = 30, 15
STRIPE = (400, 410, 30, 390)  # mosaic columns x0:x1, rows y0:y1 of NaN data (weight kept)
THRESHOLDS = {
    "astrom_rms_mas": {"max": 10.0},
    "phot_bias_star_mag": {"abs_max": 0.06},
    "completeness": {"min": 0.95},
    "err_ratio_nmad": {"F115W": {"max": 1.1}},
}


def _grid_sources():
    pos = [(40.0 + 40.0 * (k % 9), 40.0 + 40.0 * (k // 9)) for k in range(N_STARS + N_GALAXIES)]
    mags = 18.0 + 6.0 * np.arange(len(pos)) / (len(pos) - 1)
    stars = [(k + 1, "star", float(mags[k]), pos[k]) for k in range(N_STARS)]
    gals = [(k + 1, float(mags[k]), pos[k], 0.2, 0.3, 30.0, 1.0)
            for k in range(N_STARS, N_STARS + N_GALAXIES)]
    return stars, gals


def _mosaic(rng: np.random.Generator, *, err: bool = True, con: bool = True):
    ny, nx = MOSAIC_SHAPE
    data = SKY * 1.01 + rng.normal(0.0, SIGMA, (ny, nx))
    data[STRIPE[2]:STRIPE[3], STRIPE[0]:STRIPE[1]] = np.nan
    cov = [exposure_coverage(k) for k in range(2)]
    context = (cov[0] * 1 + cov[1] * 2)[None] if con else None
    return data, (np.full((ny, nx), SIGMA) if err else None), context


def _pipeline_catalog(truth: Table, *, drop_stars: bool = False) -> Table:
    """Truth shifted by SHIFT_MAS north, fluxes x FLUX_SCALE, every third source missing."""
    keep = np.arange(len(truth)) % 3 != 2
    if drop_stars:
        keep &= np.asarray(truth["type"]) != "star"
    t = truth[keep]
    sc = SkyCoord(np.asarray(t["ra"]), np.asarray(t["dec"]), unit="deg")
    sc = sc.spherical_offsets_by(0 * sc.ra, np.full(len(t), SHIFT_MAS / 3.6e6) * sc.dec.unit)
    flux = FLUX_SCALE * np.asarray(t["flux_true_jy"])
    mag = -2.5 * np.log10(flux / 3631.0)
    out = Table()
    out["label"] = np.arange(1, len(t) + 1, dtype=np.int32)
    out["sky_centroid"] = sc
    for kind in ("aper_total", "isophotal"):
        out[f"{kind}_flux"] = flux
        out[f"{kind}_flux_err"] = flux / np.maximum(np.asarray(t["snr_expected"]), 1.0)
        out[f"{kind}_abmag"] = mag
    out.meta["aperture_params"] = {"aperture_radii": [1.0, 1.5, 2.0],
                                   "aperture_corrections": [3.0, 2.0, 1.25]}
    return out


def _synthetic_run(tmp: Path, *, levels=(0.0, 0.011), err=True, con=True, drop_stars=False,
                   bright_stars: dict | None = None):
    from simval.truth import build_truth

    stars, gals = _grid_sources()
    plan = make_plan(tmp, thresholds=THRESHOLDS, bright_stars=bright_stars)
    layout, plan = make_run(tmp, sources=stars, galaxies=gals, plan=plan, not_simulated=(),
                            record_levels=list(levels) if levels is not None else None)
    product = plan.products[0]
    pdir = layout.product_dir(product.name)
    data, e, c = _mosaic(np.random.default_rng(7), err=err, con=con)
    write_i2d(pdir / product.i2d_name, data=data, err=e, con=c)
    truth = build_truth(layout, plan, "F115W", write=False)
    _pipeline_catalog(truth, drop_stars=drop_stars).write(pdir / product.catalog_name,
                                                          format="ascii.ecsv")
    record_finished_run(layout, plan)  # as if MIRAGE and the pipeline had made them
    return layout, plan


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    layout, plan = _synthetic_run(tmp_path_factory.mktemp("eval"))
    return layout, plan, evaluate_run(layout.root)


def _m(result, name):
    return result.document.filters["F115W"][name]


def test_known_answers_through_the_full_path(evaluated):
    _, _, res = evaluated
    assert _m(res, "astrom_rms_mas").value == pytest.approx(SHIFT_MAS, abs=1e-3)
    assert _m(res, "astrom_ddec_mas").value == pytest.approx(SHIFT_MAS, abs=1e-3)
    assert _m(res, "astrom_dra_mas").value == pytest.approx(0.0, abs=1e-3)
    dmag = -2.5 * math.log10(FLUX_SCALE)
    assert dmag == pytest.approx(-0.0530, abs=5e-5)
    for sample in ("star", "galaxy", "bright_star"):
        m = _m(res, f"phot_bias_{sample}_mag")
        assert m.value == pytest.approx(dmag, abs=1e-9), sample
    assert _m(res, "phot_bias_star_mag").n == 20
    assert _m(res, "phot_bias_galaxy_mag").n == 10
    assert _m(res, "completeness").value == pytest.approx(30 / 45)
    assert round(_m(res, "completeness").value, 3) == 0.667
    assert _m(res, "completeness").n == 45
    assert _m(res, "purity").value == 1.0
    layout, plan, _ = evaluated
    table = read_match_table(layout.match_table(plan.products[0].name))
    assert table.match.n_pairs == 30
    assert np.allclose(table.match.separation_mas, SHIFT_MAS, atol=1e-3)
    assert np.allclose(table.table["ddec_mas"][table.table["matched"]], SHIFT_MAS, atol=1e-3)
    assert int(np.sum(table.table["truth_row"] < 0)) == 0  # no spurious detection


def test_mosaic_metrics_through_the_full_path(evaluated):
    _, _, res = evaluated
    # skymatch "match" keeps the injected sky; the mosaic has 1% too much of it
    bkg = _m(res, "bkg_residual_frac")
    assert bkg.value == pytest.approx(0.01, abs=0.001)
    assert _m(res, "bkg_residual_mjysr").details["expected_mjysr"] == pytest.approx(SKY)
    assert _m(res, "bkg_residual_mjysr").value == pytest.approx(0.01 * SKY, abs=2e-4)
    # footprint = the exposures' union (420 x 400 pixels); holes = NaN stripe + WHT patch
    assert _m(res, "hole_frac").value == pytest.approx((10 * 360 + 7 * 7) / (420 * 400))
    assert _m(res, "black_line_count").value == 1
    assert _m(res, "black_line_frac").value == pytest.approx(10 * 360 / (420 * 400))
    assert _m(res, "err_ratio_nmad").value == pytest.approx(1.0, abs=0.02)
    assert _m(res, "skymatch_error_max_mjysr").value == pytest.approx(0.011)
    assert _m(res, "skymatch_error_max_frac").value == pytest.approx(0.011 / SKY)
    depth = _m(res, "depth_5sigma_mag")
    assert depth.details["radius_pix"] == 2.0 and depth.details["apcorr"] == 1.25
    assert np.isfinite(depth.value)
    seam = _m(res, "seam_step_max_mjysr")
    assert seam.n >= 1 and abs(seam.value) < 0.003  # a flat sky has no seams


def test_metrics_json_round_trips_with_the_schema(evaluated):
    layout, plan, res = evaluated
    path = layout.root / "metrics.json"
    assert res.metrics_path == path
    on_disk = json.loads(path.read_text())
    assert on_disk["schema"] == "simval.metrics" and on_disk["schema_version"] == 1
    assert on_disk["scenario"] == {"name": plan.scenario_name, "hash": plan.scenario_hash}
    assert set(on_disk["filters"]["F115W"]) == IMAGING
    back = read_metrics(path)
    assert back.to_json() == on_disk
    assert on_disk["provenance"]["filters"]["F115W"]["n_matched"] == 30
    assert (layout.root / on_disk["provenance"]["filters"]["F115W"]["truth"]).is_file()


def test_thresholds_give_verdicts(evaluated):
    _, _, res = evaluated
    got = {(v.metric, v.filter): v for v in res.verdicts}
    assert set(got) == {("astrom_rms_mas", "F115W"), ("phot_bias_star_mag", "F115W"),
                        ("completeness", "F115W"), ("err_ratio_nmad", "F115W")}
    assert not got["astrom_rms_mas", "F115W"].passed
    assert got["astrom_rms_mas", "F115W"].value == pytest.approx(20.0, abs=1e-3)
    assert got["phot_bias_star_mag", "F115W"].passed
    assert not got["completeness", "F115W"].passed
    assert got["err_ratio_nmad", "F115W"].passed
    assert not res.passed


def test_baseline_comparison(evaluated, tmp_path):
    from simval.metrics_schema import Measurement, MetricsDocument

    layout, _, res = evaluated
    again = evaluate_run(layout.root, baseline=layout.root)
    base = [v for v in again.verdicts if v.kind == "baseline"]
    assert len(base) == len(IMAGING) and all(v.passed for v in base)
    doc = MetricsDocument(res.document.scenario_name, res.document.scenario_hash,
                          {"F115W": {"astrom_rms_mas": Measurement.of("astrom_rms_mas", 14.0,
                                                                      None, 20)}})
    again = evaluate_run(layout.root, baseline=doc)
    (v,) = [v for v in again.verdicts if v.kind == "baseline"]
    assert not v.passed and v.baseline == 14.0


def test_uncomputable_metrics_are_recorded_with_a_reason(tmp_path):
    layout, _ = _synthetic_run(tmp_path, levels=None, err=False, con=False, drop_stars=True)
    res = evaluate_run(layout.root)
    doc = read_metrics(layout.root / "metrics.json")
    f = doc.filters["F115W"]
    assert set(f) == IMAGING
    for name, reason in (("err_ratio_nmad", "no ERR"), ("seam_step_max_mjysr", "no CON"),
                         ("skymatch_error_max_mjysr", "no skymatch levels"),
                         ("phot_bias_star_mag", "no matched star"),
                         ("astrom_rms_mas", "no matched star"),
                         ("phot_bias_bright_star_mag", "no matched bright")):
        assert f[name].value is None and f[name].n == 0, name
        assert reason in f[name].details["not_computed"], name
    assert f["phot_bias_galaxy_mag"].value == pytest.approx(-2.5 * math.log10(FLUX_SCALE))
    reasons = res.document.provenance["filters"]["F115W"]["not_computed"]
    assert reasons["err_ratio_nmad"].startswith("the i2d has no ERR")
    verdict = {v.metric: v for v in res.verdicts}["err_ratio_nmad"]
    assert not verdict.passed and "not measured" in verdict.message
    assert set(CATALOG_METRICS) <= set(REGISTRY)


def test_catalog_options_reach_the_metrics(evaluated):
    layout, _, _ = evaluated
    res = evaluate_run(layout.root, catalog_options={"bright_snr_min": 1e9})
    m = res.document.filters["F115W"]["phot_bias_bright_star_mag"]
    assert m.value is None and m.n == 0
    assert "no matched bright" in m.details["not_computed"]
    # the scenario's comparison.bright_stars fills what the caller did not give
    assert res.document.provenance["catalog_options"] == {"bright_snr_min": 1e9,
                                                          "min_exposures": None}
    assert next(o for s, o in res.outcomes.items() if s.startswith("evaluate.")
                ).status == "complete"  # a new option is a new evaluation
    assert next(o for s, o in res.outcomes.items() if s.startswith("truth.")
                ).status == "cached"  # ... on the same truth
    res = evaluate_run(layout.root)  # back to the scenario's options
    assert res.document.filters["F115W"]["phot_bias_bright_star_mag"].value is not None


def test_the_report_rings_the_metrics_bright_star_sample(tmp_path, monkeypatch):
    """With comparison.bright_stars set, the stars ringed in the report's delta-mag plot
    are exactly the sample behind phot_bias_bright_star_mag (read from the match table)."""
    import simval.report.html as report_html
    from simval.report import write_report

    snr_min = 400.0
    layout, plan = _synthetic_run(tmp_path, bright_stars={"snr_min": snr_min})
    res = evaluate_run(layout.root)
    metric = res.document.filters["F115W"]["phot_bias_bright_star_mag"]
    truth = read_truth(layout.truth_table(plan.products[0].name))
    table = read_match_table(layout.match_table(plan.products[0].name))
    stars = np.asarray(truth["type"]) == "star"
    expected = stars & table.match.matched & (np.asarray(truth["snr_expected"]) >= snr_min)
    default = stars & table.match.matched & (np.asarray(truth["snr_expected"]) >= 100.0)
    assert 0 < metric.n == int(expected.sum()) < int(default.sum())  # the option matters
    seen = {}
    real = report_html.delta_mag_figure

    def spy(*args, **kwargs):
        seen["bright"] = np.asarray(kwargs["bright"], bool)
        return real(*args, **kwargs)

    monkeypatch.setattr(report_html, "delta_mag_figure", spy)
    write_report(layout.root)
    assert int(seen["bright"].sum()) == metric.n


def test_new_thresholds_rejoin_only_and_a_new_mosaic_is_evaluated_again(tmp_path):
    """Thresholds are not an input of truth or evaluation: changing them re-runs only the
    metrics join. A remade mosaic (new bytes, new image3 record) re-runs truth and
    evaluation; a mosaic changed behind its record's back is refused, naming the stage."""
    from astropy.io import fits

    from simval.run import ensure_evaluated

    layout, plan = _synthetic_run(tmp_path)
    first = ensure_evaluated(layout.root)
    assert {o.status for o in first.values()} == {"complete"}
    data = json.loads(layout.plan.read_text())
    data["scenario"]["comparison"]["thresholds"]["astrom_rms_mas"] = {"max": 30.0}
    data["scenario_hash"] = "f" * 16
    layout.plan.write_text(json.dumps(data))
    second = ensure_evaluated(layout.root)
    assert {s.partition(".")[0]: o.status for s, o in second.items()} == {
        "truth": "cached", "evaluate": "cached", "metrics": "complete"}
    res = evaluate_run(layout.root)
    assert {v.metric: v.passed for v in res.verdicts}["astrom_rms_mas"]  # 20 mas <= 30
    assert res.document.scenario_hash == "f" * 16

    name = plan.products[0].name
    with fits.open(layout.product_file(name, "_i2d.fits"), mode="update") as hdul:
        hdul[0].header["HISTORY"] = "made again"
    with pytest.raises(EvaluationError, match=f"image3.{name}"):
        ensure_evaluated(layout.root)
    record_finished_run(layout, plan)  # image3 ran again and recorded its new mosaic
    third = ensure_evaluated(layout.root)
    assert third[f"truth.{name}"].status == "complete"
    assert third[f"evaluate.{name}"].status == "complete"


def test_missing_product_names_the_file(tmp_path):
    layout, plan = _synthetic_run(tmp_path)
    product = plan.products[0]
    cat = layout.product_dir(product.name) / product.catalog_name
    cat.unlink()
    with pytest.raises(EvaluationError, match=product.catalog_name):
        evaluate_run(layout.root)
    shutil.rmtree(layout.product_dir(product.name))
    with pytest.raises(EvaluationError, match=product.i2d_name):
        evaluate_run(layout.root)
    assert not (layout.root / "metrics.json").exists()


# ---------------------------------------------------------------------------------------
# End to end: a reduced quickstart through MIRAGE and the pipeline, then evaluated
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_e2e_evaluation_of_a_real_run(mini_run):
    run = mini_run["result"]
    res = evaluate_run(run.run_dir)
    assert all(o.status == "cached" for o in res.outcomes.values())  # the run evaluated it
    doc = read_metrics(run.run_dir / "metrics.json")
    assert doc.to_json() == json.loads((run.run_dir / "metrics.json").read_text())
    layout = RunLayout(run.run_dir)
    name = run.products["F115W"].name
    truth = read_truth(layout.truth_table(name))
    match = read_match_table(layout.match_table(name)).match
    measured_all = Table.read(layout.product_file(name, "_cat.ecsv"), format="ascii.ecsv")
    assert 20 <= len(truth) <= 25 and int(np.sum(truth["in_footprint"])) >= 15
    assert match.n_pairs >= 8
    f = doc.filters["F115W"]
    # a perfect instrument: positions within a few mas, star fluxes within a few percent
    # (the RMS over all stars is not asserted: one blend of two faint stars reads ~50 mas)
    assert f["astrom_offset_mas"].value < 5.0
    assert abs(f["phot_bias_star_mag"].value) < 0.05
    # ERR against the noise: drizzle's pixel correlation corrected (the raw pixel ratio
    # reads ~0.67 for a right ERR)
    assert 0.8 < f["err_ratio_nmad_drizzle"].value < 1.3
    assert f["err_ratio_nmad"].value < f["err_ratio_nmad_drizzle"].value
    snr = np.asarray(truth["snr_expected"])[match.truth_index]
    measured = measured_all[match.measured_index]
    stars = np.asarray(truth["type"])[match.truth_index] == "star"
    ratio = (np.asarray(measured["aper_total_flux"]) / np.asarray(measured["aper_total_flux_err"])
             / snr)[stars & (snr > 30)]
    assert 0.7 < np.median(ratio) < 1.4  # the rough S/N model is within tens of percent
    bkg = Table.read(layout.backgrounds(name), format="ascii.ecsv")
    assert np.allclose(bkg["conversion_ratio"], 1.0, atol=1e-6)
    assert np.isfinite(bkg["skymatch_level_mjysr"]).all()
    # each exposure's gwcs and DQ were read: per-detector offsets and explained holes
    groups = f["astrom_offset_detector_worst_mas"].details["groups"]
    assert list(groups) == ["NRCB1"] and groups["NRCB1"]["offset_mas"] < 5.0
    defects = Table.read(layout.defects_table(name), format="ascii.ecsv")
    assert set(defects["cause"]) <= {"no_coverage", "do_not_use", "resample_nan"}
    assert f["hole_resample_frac"].value < 1e-3
    (v,) = res.verdicts
    assert v.metric == "astrom_offset_mas" and v.passed
