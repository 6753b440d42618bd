"""Pointing errors, tweakreg and the alignment and smearing metrics, on known answers.

Unit cases: the alignment summary and the smearing ratios on synthetic Gaussian stars
(analytic FWHM and encircled energy), the reference catalog's bias, the recorded-pointing
offset and its undoing on a real rate file. End to end (slow): one reduced quickstart
simulated once and calibrated four times, with and without a 60 mas pointing error, with and
without tweakreg, and with an ``abs_refcat`` from the truth; the metrics must read the errors
drawn into the plan.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from astropy.coordinates import SkyCoord
from astropy.table import Table

from simval.catalogs.refcat import reference_catalog
from simval.metrics import alignment_residuals, psf_smearing
from simval.metrics.smearing import EE_RADII_PIX

# --- alignment summary ----------------------------------------------------------------------

def test_alignment_summary_reads_relative_and_absolute_offsets():
    res = alignment_residuals(["a", "b", "c"], [(10.0, 0.0), (-10.0, 0.0), (0.0, 30.0)],
                              [(1, 2), (3, 4), (5, 6)], "tweakreg")
    m = res.measurements()
    # median (0, 0): relative offsets 10, 10, 30
    assert m["align_rel_max_mas"].value == pytest.approx(30.0)
    assert m["align_rel_rms_mas"].value == pytest.approx(math.sqrt((100 + 100 + 900) / 3))
    assert m["align_abs_mas"].value == pytest.approx(0.0)
    shifted = alignment_residuals(["a", "b"], [(20.0, -20.0), (20.0, -20.0)],
                                  [(0, 0), (0, 0)], "cal").measurements()
    assert shifted["align_rel_max_mas"].value == pytest.approx(0.0)
    assert shifted["align_abs_mas"].value == pytest.approx(math.hypot(20, 20))
    assert shifted["align_abs_mas"].details["per_exposure"]["b"]["residual_mas"] == [20, -20]
    with pytest.raises(ValueError, match="2 exposures, 1 residuals"):
        alignment_residuals(["a", "b"], [(0, 0)], [(0, 0), (0, 0)], "x")


# --- smearing -----------------------------------------------------------------------------

def _gaussian_field(sigma: float, positions, shape=(120, 120)) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(float)
    img = np.full(shape, 0.3)  # a sky the annulus removes
    for x, y in positions:
        img += 50.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return img


def _ee(sigma: float) -> float:
    r_in, r_out = EE_RADII_PIX
    return (1 - math.exp(-r_in ** 2 / (2 * sigma ** 2))) / \
        (1 - math.exp(-r_out ** 2 / (2 * sigma ** 2)))


def _prf_sigma(sigma: float) -> float:
    return math.sqrt(sigma ** 2 - 1.0 / 12.0)


def test_smearing_is_one_on_identical_images_and_reads_a_broader_psf():
    pos = [(30.3, 30.6), (80.1, 40.2), (50.7, 90.4)]
    truth = _gaussian_field(1.3, pos)
    same = psf_smearing(truth, truth, *zip(*pos, strict=True)).measurements()
    assert same["smear_fwhm_ratio"].value == pytest.approx(1.0, abs=1e-6)
    assert same["smear_ee_ratio"].value == pytest.approx(1.0, abs=1e-6)
    assert same["smear_fwhm_ratio"].n == 3
    broad = psf_smearing(_gaussian_field(1.6, pos), truth, *zip(*pos, strict=True))
    m = broad.measurements()
    # fit_fwhm fits a pixel-integrated Gaussian: a point-sampled one of sigma s reads
    # sqrt(s**2 - 1/12) (a pixel's variance)
    assert m["smear_fwhm_ratio"].value == pytest.approx(_prf_sigma(1.6) / _prf_sigma(1.3),
                                                        rel=0.002)
    # EE analytic for a circular Gaussian (pixel sampling: 1 %)
    assert m["smear_ee_ratio"].value == pytest.approx(_ee(1.6) / _ee(1.3), rel=0.01)
    assert m["smear_fwhm_ratio"].details["fwhm_truth_pix_median"] == \
        pytest.approx(2.35482 * _prf_sigma(1.3), rel=0.002)


def test_a_mosaic_offset_as_a_whole_is_not_smearing_but_doubled_stars_are():
    pos = [(30.3, 30.6), (80.1, 40.2), (50.7, 90.4)]
    truth = _gaussian_field(1.3, pos)
    shifted = _gaussian_field(1.3, [(x + 6.5, y - 5.2) for x, y in pos])  # 8.3 px off
    m = psf_smearing(shifted, truth, *zip(*pos, strict=True)).measurements()
    assert m["smear_fwhm_ratio"].value == pytest.approx(1.0, abs=0.01)
    assert m["smear_ee_ratio"].value == pytest.approx(1.0, abs=0.01)
    doubled = 0.5 * (_gaussian_field(1.3, [(x - 1.0, y) for x, y in pos]) +
                     _gaussian_field(1.3, [(x + 1.0, y) for x, y in pos]))
    m = psf_smearing(doubled, truth, *zip(*pos, strict=True)).measurements()
    assert m["smear_fwhm_ratio"].value > 1.1 and m["smear_ee_ratio"].value < 0.9


def test_smearing_leaves_out_stars_at_the_edge_or_on_nan():
    pos = [(5.0, 60.0), (60.0, 60.0)]
    truth = _gaussian_field(1.3, pos)
    img = truth.copy()
    res = psf_smearing(img, truth, *zip(*pos, strict=True))
    assert res.n == 1  # the first stamp leaves the image
    img[58, 60] = np.nan
    assert psf_smearing(img, truth, [60.0], [60.0]).n == 0
    with pytest.raises(ValueError, match="differ in shape"):
        psf_smearing(img[:50], truth, [60.0], [60.0])


# --- reference catalog --------------------------------------------------------------------

def test_reference_catalog_cuts_by_magnitude_and_carries_its_bias():
    stars = Table({"index": [1, 2, 3, 4], "ra": [53.16, 53.161, 53.162, 53.163],
                   "dec": [-27.79] * 4, "mag_f150w": [13.0, 18.0, 21.5, 23.0]})
    ref = reference_catalog(stars, "F150W", min_mag=14.0, max_mag=22.0,
                            bias_mas=(30.0, -40.0))
    assert list(ref["index"]) == [2, 3]
    true = SkyCoord(stars["ra"][1:3], stars["dec"][1:3], unit="deg")
    moved = SkyCoord(ref["RA"], ref["DEC"], unit="deg")
    d_ra, d_dec = true.spherical_offsets_to(moved)
    np.testing.assert_allclose(d_ra.to_value("mas"), 30.0, atol=1e-3)
    np.testing.assert_allclose(d_dec.to_value("mas"), -40.0, atol=1e-3)
    noisy = reference_catalog(stars, "F150W", min_mag=14.0, max_mag=22.0, noise_mas=5.0,
                              rng=np.random.default_rng(1))
    sep = true.separation(SkyCoord(noisy["RA"], noisy["DEC"], unit="deg")).to_value("mas")
    assert (sep > 0.1).all() and (sep < 30.0).all()
    with pytest.raises(ValueError, match="'mag_f444w'"):
        reference_catalog(stars, "F444W", min_mag=14.0, max_mag=22.0)


# --- the recorded pointing, offset and undone ----------------------------------------------

@pytest.mark.slow
def test_offset_recorded_pointing_moves_the_wcs_by_minus_the_error(mini_run, tmp_path):
    """image2's WCS of a rate whose recorded pointing is off by -e sits -e from the true
    one; true_wcs moves it back."""
    from stdatamodels.jwst import datamodels

    from simval import calibrate
    from simval.layout import RunLayout
    from simval.pointing_errors import offset_recorded_pointing, true_wcs, wcs_offsets_mas

    layout = RunLayout(mini_run["tmp"] / "run")
    rate = sorted(layout.detector1.glob("*_rate.fits"))[0]
    cal = layout.image2 / rate.name.replace("_rate", "_cal")
    record = json.loads((layout.root / "stages" /
                         f"image2.{rate.name.removesuffix('_rate.fits')}.json").read_text())
    env = record["parameters"]["crds_env"]
    error = (30.0, -40.0)
    moved = offset_recorded_pointing(rate, tmp_path / "in" / rate.name, error)
    out = calibrate.image2(moved, tmp_path, calibrate.CrdsSetup(env), tmp_path / "log.txt",
                           {"resample": {"skip": True}})
    with datamodels.open(str(cal)) as a, datamodels.open(str(out)) as b:
        shape = a.data.shape
        off = wcs_offsets_mas(a.meta.wcs, b.meta.wcs, shape)
        back = wcs_offsets_mas(a.meta.wcs, true_wcs(b.meta.wcs, error), shape)
    assert off.mean_mas == pytest.approx((-30.0, 40.0), abs=0.05)
    assert off.rms_about_mean_mas < 0.05
    assert back.mean_mas == pytest.approx((0.0, 0.0), abs=0.05)


# --- end to end ---------------------------------------------------------------------------

VARIANTS = [  # (alignment, tweakreg skip)
    ({"pointing_error_mas": 0.0}, True),
    ({"pointing_error_mas": 60.0}, True),
    ({"pointing_error_mas": 60.0}, False),
    ({"pointing_error_mas": 60.0, "abs_refcat": {"max_mag": 23.0, "min_mag": 16.0}}, False),
]


@pytest.fixture(scope="module")
def tweakreg_sweep(tmp_path_factory):
    from simval.run import run_scenario
    from tests.scenario_data import quickstart_data

    tmp = tmp_path_factory.mktemp("tweakreg_sweep")
    data = quickstart_data()
    data.update(name="twk", filters=["F150W"], background_mjysr=0.25,
                dither={"offsets": [[0.0, 0.0], [1.03, 0.97], [-0.95, 1.07]]},
                comparison={"match_radius_mas": 150})
    data["readout"]["ngroups"] = 6
    # a 400 x 400 field: 10-12 sources per exposure, fewer than the default minobj 15
    data["pipeline"]["image3"]["tweakreg"] = {"skip": True, "minobj": 5, "abs_minobj": 5}
    runs = {}
    base = None
    for i, (align, skip) in enumerate(VARIANTS):
        d = json.loads(json.dumps(data))
        d["alignment"] = align
        d["pipeline"]["image3"]["tweakreg"]["skip"] = skip
        path = tmp / f"twk{i}.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        result = run_scenario(path, tmp / f"run{i}", workers=2, kit_dir=tmp / "kits",
                              reuse_simulation=base)
        assert result.ok, [(o.stage_id, o.error) for o in result.failed]
        base = base or tmp / "run0"
        runs[i] = tmp / f"run{i}"
    return runs


def _values(run) -> dict:
    doc = json.loads((run / "metrics.json").read_text())
    return {k: v["value"] for k, v in doc["filters"]["F150W"].items()}


def _plan_errors(run) -> np.ndarray:
    plan = json.loads((run / "plan.json").read_text())
    return np.array([[e["pointing_error_ra_mas"], e["pointing_error_dec_mas"]]
                     for e in plan["exposures"]])


@pytest.mark.slow
def test_without_error_or_tweakreg_the_alignment_is_exact(tweakreg_sweep):
    m = _values(tweakreg_sweep[0])
    assert not _plan_errors(tweakreg_sweep[0]).any()
    assert m["align_rel_max_mas"] < 0.5 and m["align_abs_mas"] < 0.5
    assert m["smear_fwhm_ratio"] == pytest.approx(1.0, abs=0.03)


@pytest.mark.slow
def test_an_uncorrected_pointing_error_reads_as_drawn_and_smears(tweakreg_sweep):
    e = _plan_errors(tweakreg_sweep[1])
    assert e.shape == (3, 2) and np.abs(e).max() > 1.0
    med = np.median(-e, axis=0)  # tweakreg skipped: residual = recorded - true = -e
    rel = np.hypot(*(-e - med).T)
    m = _values(tweakreg_sweep[1])
    assert m["align_rel_max_mas"] == pytest.approx(rel.max(), abs=0.5)
    assert m["align_abs_mas"] == pytest.approx(np.hypot(*med), abs=0.5)
    m0 = _values(tweakreg_sweep[0])
    if rel.max() > 31.0:  # more than one SW pixel between exposures: visibly broader
        assert m["smear_fwhm_ratio"] > m0["smear_fwhm_ratio"] + 0.05


@pytest.mark.slow
def test_tweakreg_realigns_the_exposures_and_abs_refcat_the_mosaic(tweakreg_sweep):
    before = _values(tweakreg_sweep[1])
    after = _values(tweakreg_sweep[2])
    assert after["align_rel_max_mas"] < 10.0 < before["align_rel_max_mas"]
    assert after["smear_fwhm_ratio"] == pytest.approx(1.0, abs=0.05)
    absolute = _values(tweakreg_sweep[3])
    assert absolute["align_abs_mas"] < 5.0
    assert absolute["align_rel_max_mas"] < 10.0
    assert (tweakreg_sweep[3] / "image3").rglob("*_abs_refcat.ecsv")


# --- scenario and plan ----------------------------------------------------------------------

def _scenario(**alignment):
    from simval.scenario import validate_scenario
    from tests.scenario_data import QUICKSTART, quickstart_data

    data = quickstart_data()
    data["detectors"] = ["NRCB1", "NRCB2"]
    data["subarray"] = "SUB160"
    data["mosaic"] = {"rows": 1, "cols": 2}
    if alignment:
        data["alignment"] = alignment
    return validate_scenario(data, "twk.yaml", QUICKSTART.parent)


def test_pointing_errors_are_seeded_shared_by_detectors_and_scale_with_sigma():
    from simval.plan import make_plan

    plain = make_plan(_scenario())
    assert not any(e.pointing_error_ra_mas or e.pointing_error_dec_mas for e in plain.exposures)
    p20 = make_plan(_scenario(pointing_error_mas=20.0))
    p100 = make_plan(_scenario(pointing_error_mas=100.0))
    e20 = np.array([(e.pointing_error_ra_mas, e.pointing_error_dec_mas) for e in p20.exposures])
    e100 = np.array([(e.pointing_error_ra_mas, e.pointing_error_dec_mas)
                     for e in p100.exposures])
    np.testing.assert_allclose(e100, 5.0 * e20, atol=1e-5)
    assert e20.std() == pytest.approx(20.0, rel=0.5)   # 2 visits x 2 filters x 4 dithers
    by_exposure: dict[tuple, set] = {}
    for e, err in zip(p20.exposures, map(tuple, e20), strict=True):
        by_exposure.setdefault((e.visit, e.activity, e.exposure), set()).add(err)
    assert all(len(v) == 1 for v in by_exposure.values())  # both detectors share it
    assert len({next(iter(v)) for v in by_exposure.values()}) == len(by_exposure)
    per_visit = make_plan(_scenario(pointing_error_mas=20.0, pointing_error_per="visit"))
    visits: dict[int, set] = {}
    for e in per_visit.exposures:
        visits.setdefault(e.visit, set()).add((e.pointing_error_ra_mas,
                                               e.pointing_error_dec_mas))
    assert len(visits) == 2 and all(len(v) == 1 for v in visits.values())
    again = make_plan(_scenario(pointing_error_mas=20.0))
    assert again.to_json() == p20.to_json()


def test_alignment_block_errors_name_the_field_and_the_hash_of_a_plain_scenario_holds():
    from simval.scenario import ScenarioError, scenario_hash

    with pytest.raises(ScenarioError, match=r"alignment\.pointing_error_mas"):
        _scenario(pointing_error_mas=-5.0)
    with pytest.raises(ScenarioError, match=r"alignment\.abs_refcat\.noise_mas"):
        _scenario(abs_refcat={"noise_mas": -1.0})
    with pytest.raises(ScenarioError, match=r"alignment\.pointing_error_per"):
        _scenario(pointing_error_per="dither")
    # an unset block is absent from the normalised scenario, so existing hashes held
    assert "alignment" not in _scenario().model_dump(mode="json")
    assert scenario_hash(_scenario()) != scenario_hash(_scenario(pointing_error_mas=1.0))


@pytest.mark.slow
def test_variants_reuse_the_base_runs_ramp_fits(tweakreg_sweep):
    """Pointing errors and tweakreg change image2 and image3 only: every variant adopts
    the base run's simulations and detector1 stages (same uncal, context and steps)."""
    for i in (1, 2, 3):
        doc = json.loads((tweakreg_sweep[i] / "manifest.json").read_text())
        reused = doc["simulation_reused_from"]
        kinds = sorted(s.split(".")[0] for s in reused["reused"])
        assert kinds.count("detector1") == 3 and kinds.count("simulate") == 3
        assert reused["rerun"] == []
        assert doc["stages"]["detector1." + next(
            s.split(".", 1)[1] for s in reused["reused"] if s.startswith("detector1."))][
            "status"] == "cached"
