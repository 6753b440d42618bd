"""The coronagraphy block of a scenario and its plan: defaults from the mask, one-line
errors naming the field, and exposures whose pointing, rolls, dithers and DMS names are
what the block asks for."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from simval.scenario import ScenarioError, load_scenario, scenario_hash
from simval.scenario.coronagraphy import SMALL_GRIDS

ROOT = Path(__file__).resolve().parents[1]
CORON = ROOT / "scenarios" / "coron_quickstart.yaml"


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(CORON.read_text())


def load(tmp_path: Path, data: dict):
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_scenario(path)


def error(tmp_path: Path, base: dict, mutate) -> str:
    data = copy.deepcopy(base)
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, data)
    return str(info.value)


def test_the_mask_decides_detector_subarray_filter_and_simulator():
    s = load_scenario(CORON)
    assert s.detectors == ["NRCALONG"] and s.subarray == "SUB320A335R"
    assert [f.name for f in s.filters] == ["F335M"]
    assert s.simulator.backend == "simval-coron"
    assert s.catalog is None and s.coronagraphy.mask == "MASKA335R"


def test_the_hash_ignores_formatting_and_follows_the_block(tmp_path, base):
    h = scenario_hash(load_scenario(CORON))
    same = copy.deepcopy(base)
    same["coronagraphy"]["mask"] = "maska335r"
    same["detectors"], same["subarray"] = ["NRCA5"], "SUB320A335R"  # what the defaults give
    assert scenario_hash(load(tmp_path, same)) == h
    other = copy.deepcopy(base)
    other["coronagraphy"]["companions"][0]["contrast"] = 2e-4
    assert scenario_hash(load(tmp_path, other)) != h


@pytest.mark.parametrize("mutate, parts", [
    (lambda d: d["coronagraphy"].update(mask="MASK999R"),
     ["coronagraphy.mask", "MASK999R", "MASKA335R"]),
    (lambda d: d.update(catalog={"generator": {"kind": "simple"}}),
     ["catalog", "star and companions"]),
    (lambda d: d.update(subarray="SUB400P"), ["subarray", "SUB320A335R"]),
    (lambda d: d.update(detectors=["NRCB1"]), ["detectors", "NRCALONG"]),
    (lambda d: d.update(filters=["F444W"]), ["filters", "F335M"]),
    (lambda d: d["coronagraphy"]["companions"].append(
        {"separation_arcsec": 9.5, "pa_deg": 0.0, "contrast": 1e-3}),
     ["coronagraphy.companions", "separation_arcsec"]),
    (lambda d: d["coronagraphy"]["reference"].update(dither="7-POINT-STAR"),
     ["coronagraphy.reference.dither", "5-POINT-BOX"]),
    (lambda d: d.update(simulator={"backend": "mirage"}),
     ["simulator.backend", "simval-coron"]),
    (lambda d: d.update(dither={"offsets": [[0.0, 0.0], [1.0, 0.0]]}),
     ["dither", "small grid"]),
    (lambda d: d["coronagraphy"].update(rolls_deg=[0.0, 0.0]), ["rolls_deg", "distinct"]),
])
def test_bad_blocks_name_the_field_and_what_is_allowed(tmp_path, base, mutate, parts):
    text = error(tmp_path, base, mutate)
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"


def test_an_imaging_scenario_still_needs_its_catalog(tmp_path):
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data.pop("catalog")
    text = error(tmp_path, data, lambda d: None)
    assert "catalog" in text and "missing" in text


@pytest.mark.parametrize("name, radius_mas", [("5-POINT-BOX", 21.213),
                                              ("5-POINT-DIAMOND", 20.0),
                                              ("9-POINT-CIRCLE", 20.0)])
def test_small_grids_start_at_the_centre_and_step_as_published(name, radius_mas):
    offsets = np.array(SMALL_GRIDS[name])
    assert tuple(offsets[0]) == (0.0, 0.0)
    r = np.hypot(offsets[1:, 0], offsets[1:, 1]) * 1000.0
    assert r == pytest.approx(radius_mas, abs=0.01)
    assert len({tuple(o) for o in offsets}) == len(offsets)


def test_the_plan_observes_the_target_at_each_roll_and_the_reference_on_its_grid():
    from simval import offline
    from simval.plan import make_plan
    from simval.plan_coron import coron_roles
    from simval.simulate.coron_scene import source_pixels

    s = load_scenario(CORON)
    plan = make_plan(s)
    roles = coron_roles(plan)
    science = [e for e in plan.exposures if roles[e.base_name] == "science"]
    refs = [e for e in plan.exposures if roles[e.base_name] == "psf"]
    assert [e.base_name for e in science] == ["jw00001001001_01101_00001_nrcalong",
                                              "jw00001001001_01102_00001_nrcalong"]
    assert [e.base_name for e in refs] == [f"jw00001002001_01101_0000{k}_nrcalong"
                                           for k in range(1, 6)]
    assert {e.pupil for e in plan.exposures} == {"MASKRND"}
    assert plan.kit_spec().masks == ("MASKA335R",)
    # the rolls: PA_V3 = pointing.pa_v3 + roll
    assert [round(e.pa_v3_deg, 6) for e in science] == [250.0, 260.0]
    assert refs[0].pa_v3_deg == pytest.approx(255.0, abs=1e-6)
    # the target sits on the mask centre (the aperture's reference pixel) at each roll
    from simval.instruments.nircam_coron import get_mask

    mask = get_mask("MASKA335R")
    ap = offline.nircam_siaf()[mask.aperture]
    for e in science:
        x, y = source_pixels(mask, e.attitude_matrix(), np.array([s.pointing.ra]),
                             np.array([s.pointing.dec]))
        assert (x[0], y[0]) == pytest.approx((ap.XSciRef - 1, ap.YSciRef - 1), abs=1e-4)
    # the reference star moves by minus each dither offset: 15 mas ~ 0.24 px
    ref_ra = s.pointing.ra + 600.0 / 3600.0 / math.cos(math.radians(s.pointing.dec))
    ref_dec = s.pointing.dec + 300.0 / 3600.0
    px = np.array([source_pixels(mask, e.attitude_matrix(), np.array([ref_ra]),
                                 np.array([ref_dec])) for e in refs])[:, :, 0]
    moved = (px - px[0]) * 0.063
    want = -np.array(SMALL_GRIDS["5-POINT-BOX"])
    assert np.hypot(*(moved - want).T).max() < 0.0015  # arcsec: the SIAF's scale and parity
    # exposures follow each other in time
    starts = [e.start_utc for e in plan.exposures]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_plan_cost_counts_the_coronagraphy_stages_and_its_psfs(tmp_path, base):
    """`simval plan --cost`: one simulate and image2 per exposure, one coron3 and evaluate;
    a third companion costs one more occulted PSF at each of the two rolls."""
    from simval.cost import CORON_TIME_MODEL, estimate
    from simval.plan import make_plan

    cost = estimate(make_plan(load_scenario(CORON)))
    assert {k: v.count for k, v in cost.kinds.items()} == {
        "simulate": 7, "image2": 7, "coron3": 1, "evaluate": 1}
    more = copy.deepcopy(base)
    more["coronagraphy"]["companions"].append(
        {"separation_arcsec": 3.0, "pa_deg": 10.0, "contrast": 1e-5})
    extra = estimate(make_plan(load(tmp_path, more))).kinds["simulate"].cpu_s
    assert extra - cost.kinds["simulate"].cpu_s == pytest.approx(
        2 * 4 * CORON_TIME_MODEL["psf_per_wavelength"])
    assert cost.peak_mb < 2048  # SUB320A335R stages are small


@pytest.mark.parametrize("change, words", [
    ({"environment": "jwst-1.20.2"}, "environment"),
    ({"crds": {"path": "/tmp", "context": "jwst_0001.pmap"}}, "crds.path"),
])
def test_simval_run_refuses_what_coronagraphy_cannot_use(tmp_path, base, change, words):
    """A one-line setup error before anything runs (no run directory made)."""
    from simval.run import RunSetupError, run_scenario
    from simval.scenario import validate_scenario

    data = {**copy.deepcopy(base), **change}
    try:
        scenario = validate_scenario(data, "case", ROOT / "scenarios")
    except ScenarioError as exc:  # an unknown environment is refused even earlier
        assert words in str(exc)
        return
    with pytest.raises(RunSetupError, match=words):
        run_scenario(scenario, tmp_path / "run", kit_dir=tmp_path / "kits")
    assert not (tmp_path / "run").exists()
