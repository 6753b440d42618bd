"""Scenario schema: the shipped scenarios load, and every invalid case says file, path, value
and what is allowed."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from simval.instruments import nircam as nrc
from simval.scenario import (
    ScenarioError,
    load_scenario,
    scenario_hash,
    scenario_json_schema,
    validate_scenario,
)
from simval.scenario.pipeline_params import default_value
from tests.scenario_data import quickstart_data, quickstart_text

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


@pytest.fixture(scope="module")
def base() -> dict:
    return quickstart_data()


def write(tmp_path: Path, data: dict | None = None, text: str | None = None,
          name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else yaml.safe_dump(data, sort_keys=False))
    return path


def error_for(tmp_path: Path, base: dict, mutate, name: str = "case.yaml") -> ScenarioError:
    data = copy.deepcopy(base)
    mutate(data)
    path = write(tmp_path, data, name=name)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def assert_mentions(err: ScenarioError, *parts: str) -> None:
    text = str(err)
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"


# --- valid scenarios ----------------------------------------------------------------------

def test_quickstart_loads_with_normalised_values():
    s = load_scenario(QUICKSTART)
    assert s.name == "quickstart"
    assert s.detectors == ["NRCB1"]
    assert s.subarray == "SUB400P"
    assert [(f.name, f.pupil) for f in s.filters] == [("F115W", "CLEAR"), ("F150W", "CLEAR")]
    assert (s.readout.pattern, s.readout.ngroups, s.readout.nints) == ("BRIGHT2", 10, 1)
    assert s.readout.read_pattern == nrc.ReadPattern("BRIGHT2", 2, 0, 10)
    assert [(p.x_arcsec, p.y_arcsec) for p in s.dither.positions()] == [
        (-0.335, -0.335), (0.335, 0.335), (-0.295, 0.295), (0.295, -0.295)]
    assert s.background_for("F115W") == 0.22 and s.background_for("F150W") == 0.25
    assert s.pipeline["image3"]["skymatch"] == {"skip": True}
    assert s.pipeline["detector1"]["refpix"] == {"skip": True}
    assert s.pipeline["image3"]["tweakreg"] == {"skip": True}
    assert s.start_time == "2023-01-01T00:00:00.000"
    assert s.crds.kit is not None and s.crds.kit.seed == 20221
    assert s.source == str(QUICKSTART)


def test_quickstart_defaults_differs_only_in_pipeline():
    a = load_scenario(QUICKSTART).model_dump()
    b = load_scenario(ROOT / "scenarios" / "quickstart_defaults.yaml").model_dump()
    assert b["pipeline"] == {}
    diff = {k for k in a if a[k] != b[k]}
    assert diff == {"name", "description", "pipeline"}


def test_jwst_defaults_are_read_from_the_installed_specs():
    # the facts behind quickstart: skymatch's default statistic is 'mode'
    assert default_value("image3", "skymatch", "skystat") == "mode"
    assert default_value("image3", "resample", "pixfrac") == 1.0


def test_per_channel_filters_pair_short_and_long(tmp_path, base):
    data = copy.deepcopy(base)
    data.update(detectors=["NRCB1", "NRCB5"], subarray="FULL",
                filters={"short": ["F115W", {"name": "F162M"}], "long": ["f277w", "F405N"]},
                background_mjysr=0.3)
    s = load_scenario(write(tmp_path, data))
    assert s.detectors == ["NRCB1", "NRCBLONG"]  # SIAF name normalised to DMS
    pairs = [{c: f.name for c, f in st.items()} for st in s.filter_settings()]
    assert pairs == [{"SHORT": "F115W", "LONG": "F277W"}, {"SHORT": "F162M", "LONG": "F405N"}]
    f162m = s.filter_settings()[1]["SHORT"]
    assert (f162m.filter_wheel, f162m.pupil_wheel) == ("F150W2", "F162M")
    f405n = s.filter_settings()[1]["LONG"]
    assert (f405n.filter_wheel, f405n.pupil_wheel) == ("F444W", "F405N")


def test_catalog_file_relative_to_scenario(tmp_path, base):
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "field.ecsv").write_text("# %ECSV 1.0\nra dec\n1 2\n")
    data = copy.deepcopy(base)
    data["catalog"] = {"file": "cats/field.ecsv", "format": "generic",
                       "column_map": {"ra": "RA"}}
    s = load_scenario(write(tmp_path, data))
    assert s.resolve_path(s.catalog.file) == tmp_path / "cats" / "field.ecsv"


def test_pipeline_values_normalised_by_their_spec(tmp_path, base):
    data = copy.deepcopy(base)
    data["pipeline"]["image3"]["resample"] = {"pixfrac": 1, "output_shape": [100, 120]}
    data["pipeline"]["detector1"] = {"save_calibrated_ramp": True, "jump": {"skip": False}}
    data["pipeline"]["image3"]["source_catalog"] = {"connectivity": 4}
    s = load_scenario(write(tmp_path, data))
    assert s.pipeline["image3"]["source_catalog"]["connectivity"] == "4"  # as stpipe holds it
    assert s.pipeline["image3"]["resample"]["pixfrac"] == 1.0
    assert isinstance(s.pipeline["image3"]["resample"]["pixfrac"], float)
    assert s.pipeline["detector1"]["save_calibrated_ramp"] is True


def test_json_schema_describes_every_field():
    schema = scenario_json_schema()
    props = schema["properties"]
    for key in ("readout", "filters", "dither", "pipeline", "background_mjysr", "catalog"):
        assert key in props
    assert schema["additionalProperties"] is False
    assert "MJy/sr" in props["background_mjysr"]["description"]


# --- hashing ------------------------------------------------------------------------------

def test_hash_is_stable_and_ignores_formatting(tmp_path, base):
    h1 = scenario_hash(load_scenario(QUICKSTART))
    assert h1 == scenario_hash(load_scenario(QUICKSTART))
    assert re.fullmatch(r"[0-9a-f]{16}", h1)
    reordered = dict(reversed(list(base.items())))
    reordered["filters"] = ["f115w", {"name": "F150W", "pupil": "clear"}]
    reordered["readout"] = {"nints": 1, "pattern": "bright2", "ngroups": 10}
    assert scenario_hash(load_scenario(write(tmp_path, reordered))) == h1


def test_hash_changes_with_a_pipeline_parameter(tmp_path, base):
    h1 = scenario_hash(load_scenario(QUICKSTART))
    data = copy.deepcopy(base)
    data["pipeline"]["image3"]["resample"] = {"pixfrac": 0.8}
    h2 = scenario_hash(load_scenario(write(tmp_path, data)))
    data["pipeline"]["image3"]["resample"] = {"pixfrac": 0.7}
    h3 = scenario_hash(load_scenario(write(tmp_path, data)))
    assert len({h1, h2, h3}) == 3


def test_hash_follows_catalog_content_not_path(tmp_path, base):
    data = copy.deepcopy(base)
    data["catalog"] = {"file": "field.ecsv", "format": "generic"}
    (tmp_path / "field.ecsv").write_text("a\n1\n")
    h1 = scenario_hash(load_scenario(write(tmp_path, data)))
    (tmp_path / "field.ecsv").write_text("a\n2\n")
    assert scenario_hash(load_scenario(write(tmp_path, data))) != h1


# --- invalid scenarios: file, dotted path, bad value, what is allowed ---------------------

def test_filter_of_the_wrong_channel(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.update(filters=["F115W", "F444W"]),
                    name="lw.yaml")
    assert_mentions(err, "lw.yaml", "filters[1] = 'F444W'",
                    "NRCB1 cannot observe the long-wave filter", "short-wave filters: F070W")
    assert err.problems[0].line == 14


def test_unknown_filter(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.update(filters=["F115W", "F999W"]))
    assert_mentions(err, "case.yaml", "filters[1] = 'F999W'",
                    "not a NIRCam imaging filter", "long-wave: F250M")


def test_mixed_channels_need_per_channel_filters(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.update(detectors=["NRCB1", "NRCBLONG"]))
    assert_mentions(err, "filters[0] = 'F115W'", "NRCBLONG cannot observe the short-wave filter",
                    "{short: [...], long: [...]}")


def test_unknown_readout_pattern(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d["readout"].update(pattern="FAST"))
    assert_mentions(err, "case.yaml:16", "readout.pattern", "'FAST'",
                    "unknown NIRCam readout pattern",
                    "RAPID, BRIGHT1, BRIGHT2, SHALLOW2, SHALLOW4, MEDIUM2, MEDIUM8, DEEP2, DEEP8")


@pytest.mark.parametrize(("pattern", "ngroups", "allowed"),
                         [("BRIGHT2", 11, "1..10"), ("RAPID", 109, "1..108"),
                          ("DEEP8", 21, "1..20")])
def test_ngroups_above_the_pattern_maximum(tmp_path, base, pattern, ngroups, allowed):
    err = error_for(tmp_path, base,
                    lambda d: d["readout"].update(pattern=pattern, ngroups=ngroups))
    assert_mentions(err, "case.yaml:17", "readout.ngroups", f"= {ngroups}:", allowed, pattern)


def test_ngroups_below_one(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d["readout"].update(ngroups=0))
    assert_mentions(err, "readout.ngroups = 0", ">= 1")


def test_subarray_not_on_the_detector(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.update(detectors=["NRCB2"]))
    assert_mentions(err, "case.yaml:11", "subarray = 'SUB400P'", "no imaging subarray SUB400P "
                    "on NRCB2", "NRCB2_SUB400P", "FULL, SUB160, SUB320, SUB640")


def test_missing_catalog_file_names_the_path(tmp_path, base):
    err = error_for(tmp_path, base,
                    lambda d: d.update(catalog={"file": "nope.ecsv", "format": "generic"}))
    assert_mentions(err, "case.yaml", "catalog.file", "'nope.ecsv'",
                    f"catalog file not found: {tmp_path / 'nope.ecsv'}", "an existing file")


def test_unknown_step_name(tmp_path, base):
    err = error_for(tmp_path, base,
                    lambda d: d["pipeline"]["image3"].update(tweakreg2={"skip": True}))
    assert_mentions(err, "case.yaml", "pipeline.image3.tweakreg2", "unknown step of "
                    "calwebb_image3", "did you mean tweakreg",
                    "assign_mtwcs, tweakreg, skymatch, outlier_detection, resample, "
                    "source_catalog")


def test_unknown_parameter_name(tmp_path, base):
    err = error_for(tmp_path, base,
                    lambda d: d["pipeline"]["image3"]["skymatch"].update(skystats="median"))
    assert_mentions(err, "case.yaml", "pipeline.image3.skymatch.skystats", "'skystats'",
                    "unknown parameter of step skymatch", "did you mean skystat", "skymethod")


@pytest.mark.parametrize(("step", "param", "value", "allowed"), [
    ("skymatch", "nclip", "five", "integer(min=0, default=5)"),
    ("tweakreg", "skip", "yes", "boolean(default=False)"),
    ("skymatch", "skystat", "mean2", "option('median', 'midpt', 'mean', 'mode'"),
    ("skymatch", "lsigma", -1.0, "float(min=0.0, default=4.0)"),
    ("resample", "pixfrac", True, "float(min=0.0, max=1.0, default=1.0)"),
    ("source_catalog", "connectivity", 5, "option(4, 8, default=8)"),
])
def test_wrong_type_or_value_of_a_parameter(tmp_path, base, step, param, value, allowed):
    err = error_for(tmp_path, base, lambda d: d["pipeline"]["image3"].setdefault(
        step, {}).update({param: value}))
    assert_mentions(err, f"pipeline.image3.{step}.{param} = {value!r}", allowed)


def test_unknown_stage_and_reserved_parameter(tmp_path, base):
    def mutate(d):
        d["pipeline"]["image4"] = {}
        d["pipeline"]["image3"]["tweakreg"]["output_dir"] = "elsewhere"
    err = error_for(tmp_path, base, mutate)
    assert len(err.problems) == 2
    assert_mentions(err, "pipeline.image4", "detector1, image2, image3",
                    "pipeline.image3.tweakreg.output_dir = 'elsewhere'", "set by simval")


def test_unknown_top_level_key(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.update(colour="blue"))
    assert_mentions(err, "case.yaml", "colour = 'blue'", "unknown key",
                    "name, description, seed, instrument")


def test_unknown_nested_key(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d["readout"].update(ngroup=3))
    assert_mentions(err, "readout.ngroup = 3", "unknown key", "pattern, ngroups, nints")


def test_missing_required_key(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.pop("seed"))
    assert_mentions(err, "seed = (missing)", "required key is missing")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, text="name: x\nseed: 1\nreadout: {pattern: BRIGHT2, ngroups: 6\n"
                                "detectors: [NRCB1]\n", name="broken.yaml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert_mentions(info.value, f"{path}:4", "YAML syntax error", "detectors: [NRCB1]")


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, text=quickstart_text() + "\nseed: 3\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert_mentions(info.value, "seed", "key given twice")


def test_leading_zero_integer_is_refused(tmp_path):
    text = quickstart_text().replace("program: 1\n", "program: 01345\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text=text))
    line = text.splitlines().index("program: 01345") + 1
    assert_mentions(info.value, f"case.yaml:{line}", "program = '01345'", "octal", "1345")


def test_every_problem_is_reported_at_once(tmp_path, base):
    def mutate(d):
        d["readout"]["pattern"] = "FAST"
        d["colour"] = "blue"
        d["dither"] = {"pattern": "INTRAMODULEBOX"}
    err = error_for(tmp_path, base, mutate)
    paths = sorted(p.path for p in err.problems)
    assert paths == ["colour", "dither.points", "readout.pattern"]
    assert "3 problems" in str(err)
    assert_mentions(err, "dither.points = (missing)", "2, 3, 4, 5")


def test_other_invalid_values(tmp_path, base):
    cases = [
        (lambda d: d.update(instrument="NIRSPEC"), "instrument = 'NIRSPEC'", "NIRCAM, MIRI"),
        (lambda d: d.update(background_mjysr="low"), "background_mjysr = 'low'", "MJy/sr"),
        (lambda d: d.update(background_mjysr={"F115W": 0.2}), "no background for F150W",
         "'all' entry"),
        (lambda d: d.update(dither={"pattern": "FULL", "points": 9}), "dither.pattern = 'FULL'",
         "INTRAMODULEBOX"),
        (lambda d: d.update(dither={"offsets": [[0, 0], [1, 2, 3]]}),
         "dither.offsets[1] = [1, 2, 3]", "[dx, dy]"),
        (lambda d: d.update(crds={"kit": {"context": "foo.pmap"}}),
         "crds.kit.context = 'foo.pmap'", "jwst_"),
        (lambda d: d.update(start_time="2020-01-01"), "start_time = '2020-01-01'",
         "2021-12-25"),
        (lambda d: d.update(detectors=["NRCB1", "NRCC1"]), "detectors[1] = 'NRCC1'",
         "NRCBLONG"),
        (lambda d: d["readout"].update(ngroups=6.0), "readout.ngroups = 6.0", "integer"),
        (lambda d: d.update(comparison={"thresholds": {"astrom": {"F200W": {"max": 1}}}}),
         "comparison.thresholds.astrom.F200W", "all, F115W, F150W"),
        (lambda d: (d.update(background_recipe="median_masked"),
                    d["pipeline"]["image3"]["skymatch"].update(subtract=True)),
         "pipeline.image3.skymatch.subtract = True", "false"),
    ]
    for mutate, *expected in cases:
        assert_mentions(error_for(tmp_path, base, mutate), *expected)


def test_in_memory_mapping_errors_use_a_label(base):
    data = copy.deepcopy(base)
    data["readout"]["ngroups"] = 99
    with pytest.raises(ScenarioError) as info:
        validate_scenario(data, source="<cli>")
    assert str(info.value).startswith("invalid scenario <cli> (1 problem):")
    assert info.value.problems[0].path == "readout.ngroups"


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "absent.yaml")


MIRI_QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "miri_quickstart.yaml"


def test_miri_quickstart_loads_with_the_miri_simulator():
    s = load_scenario(MIRI_QUICKSTART)
    assert s.instrument == "MIRI" and s.simulator.backend == "simval-miri"
    assert s.detectors == ["MIRIMAGE"] and s.subarray == "SUB256"
    assert [f.name for f in s.filters] == ["F770W", "F1500W"]
    assert [list(x) for x in s.filter_settings()] == [["MIRIMAGE"], ["MIRIMAGE"]]


@pytest.mark.parametrize(("mutate", "where", "allowed"), [
    (lambda d: d.update(filters=["F150W"]), "filters[0] = 'F150W': not a MIRI imaging filter",
     "F770W, F1000W"),
    (lambda d: d.update(filters=["F560W"]), "filters[0] = 'F560W': the synthetic MIRI kit "
     "has no flux calibration", "F770W, F1000W, F1130W"),
    (lambda d: d.update(subarray="SUB400P"), "subarray = 'SUB400P': not a MIRI imaging "
     "subarray", "FULL, BRIGHTSKY, SUB256, SUB128, SUB64"),
    (lambda d: d["readout"].update(pattern="SLOWR1"), "readout.pattern = 'SLOWR1': SLOWR1 "
     "cannot read SUB256", "FASTR1"),
    (lambda d: d["readout"].update(pattern="BRIGHT2"), "readout.pattern = 'BRIGHT2': unknown "
     "MIRI readout pattern", "FASTR1, SLOWR1"),
    (lambda d: d["readout"].update(ngroups=3), "readout.ngroups = 3: too few groups", ">= 5"),
    (lambda d: d.update(dither={"pattern": "CYCLING", "points": 8}),
     "dither.pattern = 'CYCLING'", "explicit offsets"),
    (lambda d: d.update(detectors=["NRCB1"]), "detectors = ['NRCB1']", "[MIRIMAGE]"),
    (lambda d: d.update(simulator={"backend": "mirage"}), "simulator.backend = 'mirage': "
     "MIRAGE does not simulate MIRI", "simval-miri"),
    (lambda d: d.update(filters={"short": ["F770W"]}), "the MIRI imager has one channel",
     "a list of filters"),
    (lambda d: d["readout"].update(by_filter={"F1000W": {"ngroups": 20}}),
     "readout.by_filter.F1000W = 'F1000W': not one of the scenario's filters",
     "F770W, F1500W"),
    (lambda d: d["readout"].update(by_filter={"F1500W": {"ngroups": 4}}),
     "readout.by_filter.F1500W.ngroups = 4: too few groups", ">= 5"),
])
def test_miri_bad_input_gets_one_line_errors(tmp_path, mutate, where, allowed):
    data = yaml.safe_load(MIRI_QUICKSTART.read_text())
    err = error_for(tmp_path, data, mutate)
    assert_mentions(err, where, allowed)
    assert str(err).count("\n") == 1  # one problem, one line


def test_nircam_has_one_readout(tmp_path, base):
    err = error_for(tmp_path, base,
                    lambda d: d["readout"].update(by_filter={"F150W": {"ngroups": 3}}))
    assert_mentions(err, "NIRCam's channels read together", "no by_filter")


def test_nircam_scenario_refuses_the_miri_simulator(tmp_path, base):
    err = error_for(tmp_path, base, lambda d: d.update(simulator={"backend": "simval-miri"}))
    assert_mentions(err, "simulator.backend = 'simval-miri': NIRCam imaging is simulated "
                         "with MIRAGE", "mirage")


def test_stephans_quintet_plans_the_workshop_layout():
    from simval.plan import make_plan

    s = load_scenario(MIRI_QUICKSTART.with_name("stephans_quintet.yaml"))
    plan = make_plan(s)
    assert len(plan.exposures) == 3 * 8 * 2  # filters x dithers x visits
    assert {e.aperture for e in plan.exposures} == {"MIRIM_FULL"}
    assert {round(e.tframe_s, 3) for e in plan.exposures} == {2.775}
    # the program's NGROUPS 60/60/80 and NINTS 1/1/2 (readout.by_filter)
    length = {(e.filter_name, e.ngroups, e.nints, round(e.exposure_time_s, 1))
              for e in plan.exposures}
    assert length == {("F770W", 60, 1, 166.5), ("F1000W", 60, 1, 166.5),
                      ("F1500W", 80, 2, 444.0)}
    # 2 x 81 frames of F1500W against 61 (a reset frame per integration)
    f1500 = [e for e in plan.exposures if e.filter_name == "F1500W"]
    assert f1500[0].duration_s > 2.6 * plan.exposures[0].duration_s
    assert [p.name for p in plan.products] == [
        "jw02732-o002_t001_miri_f770w", "jw02732-o002_t001_miri_f1000w",
        "jw02732-o002_t001_miri_f1500w"]
    assert len(s.sweep) == 5
