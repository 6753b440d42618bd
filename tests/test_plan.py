"""The plan: exposures, names, pointings, times, kit needs and serialisation."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from simval.kit.spec import DarkNeed
from simval.offline import import_pysiaf
from simval.plan import Plan, make_plan, plan_table
from simval.scenario import load_scenario, validate_scenario
from tests.scenario_data import quickstart_data, quickstart_text

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
UNCAL = re.compile(r"^jw(\d{5})(\d{3})(\d{3})_(\d{2})(\d)([0-9a-z]{2})_(\d{5})_"
                   r"(nrca[1-4]|nrcb[1-4]|nrcalong|nrcblong)_uncal\.fits$")
MAS = 1e-3  # arcsec


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(QUICKSTART)


@pytest.fixture(scope="module")
def plan(scenario):
    return make_plan(scenario)


@pytest.fixture(scope="module")
def siaf():
    return import_pysiaf().Siaf("NIRCam")


@pytest.fixture(scope="module")
def rotations():
    import_pysiaf()
    from pysiaf.utils import rotations

    return rotations


def variant(mutate) -> Plan:
    data = quickstart_data()
    mutate(data)
    return make_plan(validate_scenario(data, base_dir=QUICKSTART.parent))


def test_quickstart_has_eight_conformant_unique_files(plan):
    names = [e.uncal_name for e in plan.exposures]
    assert len(names) == 8 and len(set(names)) == 8
    for name in names:
        assert UNCAL.match(name), name
    assert names[0] == "jw00001001001_01101_00001_nrcb1_uncal.fits"
    assert names[7] == "jw00001001001_01102_00004_nrcb1_uncal.fits"
    assert [e.filter_name for e in plan.exposures] == ["F115W"] * 4 + ["F150W"] * 4
    assert [e.dither_position for e in plan.exposures] == [1, 2, 3, 4] * 2


def test_products_one_mosaic_per_filter(plan):
    assert [p.name for p in plan.products] == ["jw00001-o001_t001_nircam_clear-f115w",
                                               "jw00001-o001_t001_nircam_clear-f150w"]
    assert plan.products[0].members == tuple(e.base_name for e in plan.exposures[:4])
    assert plan.products[1].i2d_name == "jw00001-o001_t001_nircam_clear-f150w_i2d.fits"


def test_readout_timing_sub400p_bright2(plan):
    e = plan.exposures[0]
    # (400/1 + 12) * (400 + 2) * 10 us; BRIGHT2 = 2 frames per group, no gap
    assert e.tframe_s == pytest.approx(1.65624, abs=1e-9)
    assert e.tgroup_s == pytest.approx(3.31248, abs=1e-9)
    assert e.frames_read == 20  # 10 groups x 2 frames
    assert e.exposure_time_s == pytest.approx(20 * 1.65624, abs=1e-9)
    assert e.measurement_time_s == pytest.approx(9 * 3.31248, abs=1e-9)
    assert e.duration_s == pytest.approx(21 * 1.65624, abs=1e-9)  # + one reset frame
    assert (e.xsize, e.ysize, e.namps) == (400, 400, 1)


def test_full_frame_timing_and_groupgap():
    from simval.instruments import nircam as nrc

    assert nrc.frame_time(2048, 2048, 4) == pytest.approx(10.73677, abs=1e-9)
    t = nrc.exposure_timing(nrc.read_patterns()["DEEP8"], 5, 2, 2048, 2048, 4)
    assert t.tgroup_s == pytest.approx(20 * 10.73677, abs=1e-9)
    assert t.integration_time_s == pytest.approx((5 * 8 + 4 * 12) * 10.73677, abs=1e-9)
    assert t.frames_read == 100
    assert t.duration_s == pytest.approx(2 * t.integration_time_s + 10.73677, abs=1e-9)


def test_exposure_times_follow_each_other(plan):
    starts = [e.start_utc for e in plan.exposures]
    assert starts[0] == "2023-01-01T00:00:00.000"
    assert starts[1] == "2023-01-01T00:00:34.781"  # 21 frames of 1.65624 s
    assert starts[7] == "2023-01-01T00:04:03.467"  # 7 x 34.78104 s = 243.467 s
    assert plan.exposures[0].end_utc == starts[1]
    assert plan.exposures[0].date_obs == "2023-01-01"
    assert plan.exposures[1].time_obs == "00:00:34.781"


def test_zero_offset_pointing_is_the_field_centre(plan, scenario, siaf, rotations):
    tile = plan.tiles[0]
    assert (tile.ra_deg, tile.dec_deg) == pytest.approx(
        (scenario.pointing.ra, scenario.pointing.dec), abs=1e-12)
    ap = siaf[plan.pointing_aperture]
    att = rotations.attitude(ap.V2Ref, ap.V3Ref, tile.ra_deg, tile.dec_deg, tile.roll_ref_deg)
    # pa_v3 is the position angle of V3 at V1, not at the aperture
    assert rotations.posangle(att, 0.0, 0.0) == pytest.approx(scenario.pointing.pa_v3,
                                                              abs=1e-9)
    assert abs(tile.roll_ref_deg - scenario.pointing.pa_v3) > 1e-3


def test_dither_offsets_land_in_the_ideal_frame(plan, siaf, rotations):
    ap = siaf[plan.pointing_aperture]
    tile = plan.tiles[0]
    ap.set_attitude_matrix(rotations.attitude(ap.V2Ref, ap.V3Ref, tile.ra_deg, tile.dec_deg,
                                              tile.roll_ref_deg))
    offsets = [(-0.335, -0.335), (0.335, 0.335), (-0.295, 0.295), (0.295, -0.295)] * 2
    for e, (dx, dy) in zip(plan.exposures, offsets, strict=True):
        assert (e.x_offset_arcsec, e.y_offset_arcsec) == (dx, dy)
        x, y = ap.sky_to_idl(e.ra_ref_deg, e.dec_ref_deg)
        assert abs(x - dx) < MAS and abs(y - dy) < MAS


def test_separation_between_dither_positions(plan, siaf):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ex = plan.exposures[:4]
    ap = siaf[plan.pointing_aperture]
    ap.set_attitude_matrix(ex[0].attitude_matrix())
    sky = SkyCoord([e.ra_ref_deg for e in ex] * u.deg, [e.dec_ref_deg for e in ex] * u.deg)
    for j in range(4):
        for k in range(j + 1, 4):
            want = np.hypot(ex[k].x_offset_arcsec - ex[j].x_offset_arcsec,
                            ex[k].y_offset_arcsec - ex[j].y_offset_arcsec)
            assert abs(sky[j].separation(sky[k]).arcsec - want) < MAS
        # and going back through the first exposure's own attitude (pysiaf)
        x, y = ap.sky_to_idl(ex[j].ra_ref_deg, ex[j].dec_ref_deg)
        assert abs(x - (ex[j].x_offset_arcsec - ex[0].x_offset_arcsec)) < MAS
        assert abs(y - (ex[j].y_offset_arcsec - ex[0].y_offset_arcsec)) < MAS


def test_exposure_attitude_is_self_consistent(plan, rotations):
    for e in plan.exposures:
        att = e.attitude_matrix()
        assert rotations.posangle(att, 0.0, 0.0) % 360 == pytest.approx(e.pa_v3_deg, abs=1e-9)
        ra, dec = rotations.pointing(att, e.v2_ref_arcsec, e.v3_ref_arcsec)
        assert (ra, dec) == pytest.approx((e.ra_ref_deg, e.dec_ref_deg), abs=1e-12)


def test_kit_spec(plan):
    spec = plan.kit_spec()
    assert spec.detectors == ("NRCB1",)
    assert spec.filters == ("F115W", "F150W")
    # 10 groups x (2 frames + 0 skipped); quickstart asks for white read noise (one_over_f);
    # one noise realization per dither position: the 4 exposures of each mosaic differ,
    # the two filters' mosaics reuse them
    assert spec.darks == (DarkNeed("SUB400P", 20, correlated_noise=False, realizations=4),)
    assert spec.seed == 20221
    by_filter: dict[str, list[int]] = {}
    for e in plan.exposures:
        by_filter.setdefault(e.filter_name, []).append(plan.dark_realization(e))
    assert by_filter == {"F115W": [0, 1, 2, 3], "F150W": [0, 1, 2, 3]}


def test_kit_spec_follows_one_over_f(tmp_path):
    text = quickstart_text()
    path = tmp_path / "flight_like.yaml"
    path.write_text(text.replace("one_over_f: false", "one_over_f: true"))
    spec = make_plan(load_scenario(path)).kit_spec()
    assert spec.darks == (DarkNeed("SUB400P", 20, correlated_noise=True, realizations=4),)


def test_json_round_trip_is_exact(plan):
    from dataclasses import asdict

    assert all(type(v) in (int, float, str) for e in plan.exposures
               for v in asdict(e).values())
    text = plan.to_json()
    again = Plan.from_json(text)
    assert again == plan
    assert again.to_json() == text
    assert json.loads(text)["exposures"][3]["base_name"] == "jw00001001001_01101_00004_nrcb1"


def test_same_scenario_same_plan(plan):
    assert make_plan(load_scenario(QUICKSTART)).to_json() == plan.to_json()


def test_plan_hash_follows_pipeline_parameters(plan):
    other = variant(lambda d: d["pipeline"]["image3"].update(resample={"pixfrac": 0.8}))
    assert other.scenario_hash != plan.scenario_hash
    assert [e.base_name for e in other.exposures] == [e.base_name for e in plan.exposures]


def test_mosaic_tiles_are_visits_offset_by_the_step(siaf):
    p = variant(lambda d: d.update(mosaic={"rows": 1, "cols": 2, "overlap": 0.1},
                                   dither={"pattern": "NONE"}))
    assert len(p.exposures) == 4 and len(p.tiles) == 2
    assert [e.visit for e in p.exposures] == [1, 1, 2, 2]
    assert p.exposures[2].uncal_name.startswith("jw00001001002_01101_00001")
    step = p.tiles[1].x_arcsec - p.tiles[0].x_arcsec
    width = np.ptp(siaf["NRCB1_SUB400P"].corners("idl")[0])
    assert step == pytest.approx(0.9 * width, rel=1e-6)
    assert p.tiles[0].x_arcsec == pytest.approx(-step / 2)
    assert all(type(v) is float for t in p.tiles for v in (t.x_arcsec, t.ra_deg, t.roll_ref_deg))
    assert Plan.from_json(p.to_json()) == p


def test_both_channels_share_names_up_to_the_detector():
    p = variant(lambda d: d.update(
        detectors=["NRCB1", "NRCBLONG"], subarray="FULL", dither={"pattern": "NONE"},
        filters={"short": ["F115W", "F150W"], "long": ["F277W", "F444W"]},
        background_mjysr=0.3))
    names = [e.base_name for e in p.exposures]
    assert names[:2] == ["jw00001001001_01101_00001_nrcb1", "jw00001001001_01101_00001_nrcblong"]
    assert p.exposures[0].start_utc == p.exposures[1].start_utc
    assert p.exposures[0].aperture == "NRCB1_FULL" and p.exposures[1].aperture == "NRCB5_FULL"
    assert p.exposures[0].ra_ref_deg != p.exposures[1].ra_ref_deg
    assert [x.name[-5:] for x in p.products] == ["f115w", "f150w", "f277w", "f444w"]
    spec = p.kit_spec()
    assert spec.detectors == ("NRCB1", "NRCBLONG")
    # one exposure per filter and tile: every exposure can use the same full-frame dark
    assert spec.darks == (DarkNeed("FULL", 20, correlated_noise=False, realizations=1),)
    assert p.exposures[0].tframe_s == pytest.approx(10.73677, abs=1e-9)


def test_named_pattern_with_subpixel_dither():
    p = variant(lambda d: d.update(dither={"pattern": "INTRAMODULEBOX", "points": 2,
                                           "subpixel": "STANDARD", "subpixel_points": 2}))
    offs = [(e.x_offset_arcsec, e.y_offset_arcsec) for e in p.exposures[:4]]
    assert offs == [(-2.9, -3.1), (-2.6738, -2.9341), (-3.1, 2.9), (-2.8738, 3.0659)]
    assert [e.subpixel_dither_position for e in p.exposures[:4]] == [1, 2, 1, 2]


def test_plan_table_lists_every_exposure(plan):
    table = plan_table(plan)
    assert table.row_count == 8
    assert "quickstart" in str(table.title)


def test_plan_of_an_edited_copy_is_independent(scenario):
    data = copy.deepcopy(scenario.model_dump(mode="json"))
    data["readout"]["ngroups"] = 8
    p = make_plan(validate_scenario(data, base_dir=QUICKSTART.parent))
    assert p.kit_spec().darks == (DarkNeed("SUB400P", 16, correlated_noise=False,
                                           realizations=4),)


def test_a_detector_sky_factor_reaches_its_exposures_only():
    data = quickstart_data()
    data.update(detectors=["NRCB1", "NRCB2"], subarray="FULL",
                dither={"pattern": "INTRAMODULEBOX", "points": 4},
                background_detector_scale={"nrcb2": 1.03})
    scenario = validate_scenario(data, base_dir=QUICKSTART.parent)
    sky = {(e.detector, e.filter_name): e.background_mjysr for e in make_plan(scenario).exposures}
    assert sky[("NRCB1", "F115W")] == pytest.approx(0.22)
    assert sky[("NRCB2", "F115W")] == pytest.approx(0.22 * 1.03)
    assert sky[("NRCB2", "F150W")] == pytest.approx(0.25 * 1.03)
    assert "background_detector_scale" not in load_scenario(QUICKSTART).model_dump()
    data["background_detector_scale"] = {"NRCB4": 1.1}
    with pytest.raises(ValueError, match=r"background_detector_scale.NRCB4.*NRCB1, NRCB2"):
        validate_scenario(data, base_dir=QUICKSTART.parent)
