"""Sweep expansion and validation (the end-to-end sweep is in test_sensitivity.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simval.scenario import ScenarioError, load_scenario, validate_scenario
from simval.sweep import expand_sweep
from tests.scenario_data import quickstart_data

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"


@pytest.fixture
def base() -> dict:
    return quickstart_data()


def test_grid_is_the_product_in_written_order(base):
    base["sweep"] = {"image3.skymatch.skymethod": ["local", "global", "match"],
                     "crds.kit.derive.photom_scale": [1.0, 1.05]}
    variants = expand_sweep(base)
    assert len(variants) == 6
    assert [v.settings for v in variants[:2]] == [
        {"image3.skymatch.skymethod": "local", "crds.kit.derive.photom_scale": 1.0},
        {"image3.skymatch.skymethod": "local", "crds.kit.derive.photom_scale": 1.05}]
    first, second = variants[0].data, variants[1].data
    assert first["pipeline"]["image3"]["skymatch"] == {"skip": True, "skymethod": "local"}
    assert "derive" not in first["crds"]["kit"]            # photom x1.0 is the base context
    assert second["crds"]["kit"]["derive"] == {"photom_scale": 1.05}
    assert "sweep" not in first and base["pipeline"]["image3"]["skymatch"] == {"skip": True}
    assert len({v.label for v in variants}) == 6
    assert first["name"].startswith("quickstart-skymethod-local")
    for v in variants:  # every variant is a valid scenario on its own
        validate_scenario(v.data, "variant", QUICKSTART.parent)


def test_labels_are_valid_scenario_names(base):
    base["sweep"] = {"image3.skymatch.skymethod": ["global+match", "match"],
                     "crds.kit.derive": [None, {"distortion_shift_mas": [50.0, 0.0]}]}
    variants = expand_sweep(base)
    assert [v.label for v in variants] == [
        "skymethod-global_plus_match_derive-None",
        "skymethod-global_plus_match_derive-distortion_shift_mas50.00.0",
        "skymethod-match_derive-None", "skymethod-match_derive-distortion_shift_mas50.00.0"]
    for v in variants:
        validate_scenario(v.data, "variant", QUICKSTART.parent)


def test_no_sweep_is_one_variant(base):
    (only,) = expand_sweep(base)
    assert only.settings == {} and only.label == "base"


@pytest.mark.parametrize("sweep, words", [
    ({"seed": [1, 2]}, ["sweep.seed", "leaves the simulated data unchanged"]),
    ({"readout.ngroups": [3, 6]}, ["sweep.readout.ngroups", "pipeline"]),
    ({"image3.skymatch": ["a"]}, ["sweep.image3.skymatch", "parameter mappings"]),
    ({"image3": ["a"]}, ["pipeline.step.parameter"]),
    ({"image3.skymatch.skymethod": []}, ["non-empty list"]),
])
def test_sweep_keys_that_would_change_the_simulation_are_refused(tmp_path, base, sweep, words):
    base["sweep"] = sweep
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    for w in words:
        assert w in str(info.value)


def test_a_bad_swept_value_names_the_variant(tmp_path, base):
    base["sweep"] = {"image3.skymatch.skymethod": ["match", "nonsense"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    load_scenario(path)  # the file itself is valid
    variants = expand_sweep(base)
    with pytest.raises(ScenarioError) as info:
        validate_scenario(variants[1].data, "s.yaml (sweep variant skymethod-nonsense)")
    assert "skymethod" in str(info.value) and "nonsense" in str(info.value)


def test_simval_run_refuses_a_sweep_scenario(tmp_path, base, capsys):
    from simval.cli import main

    base["sweep"] = {"image3.skymatch.skymethod": ["local", "match"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 2
    assert "simval sweep" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_crds_contexts_become_one_variant_each(base):
    base["crds"] = {"kit": {"seed": 20221}, "contexts": ["jwst_0001.pmap", "jwst_0002.pmap"]}
    variants = expand_sweep(base)
    assert [v.settings for v in variants] == [{"crds.kit.context": "jwst_0001.pmap"},
                                              {"crds.kit.context": "jwst_0002.pmap"}]
    assert variants[1].data["crds"] == {"kit": {"seed": 20221, "context": "jwst_0002.pmap"}}
    for v in variants:
        validate_scenario(v.data, "variant", QUICKSTART.parent)


def test_contexts_and_context_together_are_refused(tmp_path, base):
    base["crds"] = {"kit": {"seed": 20221, "context": "jwst_0001.pmap"},
                    "contexts": ["jwst_0002.pmap"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    with pytest.raises(ScenarioError, match=r"crds\.contexts"):
        load_scenario(path)


def test_environment_is_sweepable_and_an_unknown_one_is_a_setup_error(base, tmp_path,
                                                                      monkeypatch):
    from simval.run.graph import RunSetupError, pipeline_environment

    base["sweep"] = {"environment": ["jwst-1.20.2", None]}
    variants = expand_sweep(base)
    assert [v.data.get("environment") for v in variants] == ["jwst-1.20.2", None]
    scenario = validate_scenario(variants[0].data, "variant", QUICKSTART.parent)
    monkeypatch.setenv("SIMVAL_ENV_DIR", str(tmp_path / "envs"))
    with pytest.raises(RunSetupError, match=r"environment: .*jwst-1\.20\.2"):
        pipeline_environment(scenario)
    plain = validate_scenario(variants[1].data, "variant", QUICKSTART.parent)
    assert pipeline_environment(plain) == {}


def test_a_list_sweep_is_one_variant_per_item(tmp_path, base):
    base["sweep"] = [{}, {"image3.skymatch.skymethod": "match"},
                     {"background_recipe": "median_masked"}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    scenario = load_scenario(path)
    variants = expand_sweep(scenario.model_dump())
    assert [v.label for v in variants] == ["base", "skymethod-match",
                                           "background_recipe-median_masked"]
    assert variants[2].data["background_recipe"] == "median_masked"
    assert variants[2].data["pipeline"]["image3"]["skymatch"] == \
        variants[0].data["pipeline"]["image3"]["skymatch"]
    base["sweep"] = [{"seed": 3}]
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    with pytest.raises(ScenarioError, match=r"sweep\[0\]\.seed"):
        load_scenario(path)


def test_sweep_markdown_is_one_row_per_variant_and_filter():
    from simval.sweep import sweep_markdown

    doc = {"variants": [
        {"label": "a", "status": "complete",
         "metrics": {"F115W": {"jump_frac": 1.23456e-4, "bkg_residual_frac": None},
                     "F150W": {"jump_frac": 2e-4, "bkg_residual_frac": -0.0042}}},
        {"label": "b", "status": "failed", "metrics": {}}]}
    assert sweep_markdown(doc, ["jump_frac", "bkg_residual_frac"]).splitlines() == [
        "| variant | filter | jump_frac | bkg_residual_frac |", "|---|---|---|---|",
        "| a | F115W | 0.0001235 | - |", "| a | F150W | 0.0002 | -0.0042 |",
        "| b (failed) | - | - | - |"]
    with pytest.raises(KeyError, match="no_such_metric"):
        sweep_markdown(doc, ["no_such_metric"])


def test_sweep_figure_draws_each_variant_filter_value_and_the_threshold_band(tmp_path):
    import numpy as np

    from simval.report.plots import sweep_figure
    from simval.sweep import sweep_bounds, write_sweep_figure

    doc = {"variants": [
        {"label": "a", "status": "complete",
         "metrics": {"F115W": {"jump_frac": 1e-4, "bkg_residual_frac": None},
                     "F150W": {"jump_frac": 2e-4, "bkg_residual_frac": -0.004}}},
        {"label": "b", "status": "complete",
         "metrics": {"F115W": {"jump_frac": 3e-4, "bkg_residual_frac": 0.02},
                     "F150W": {"jump_frac": 4e-4, "bkg_residual_frac": 0.03}}},
        {"label": "c", "status": "failed", "metrics": {}}]}
    thresholds = {"bkg_residual_frac": {"all": {"abs_max": 0.01}},
                  "jump_frac": {"F150W": {"min": None, "max": 5e-4, "abs_max": None}}}
    bounds = sweep_bounds(thresholds, ["jump_frac", "bkg_residual_frac"])
    assert bounds == {"bkg_residual_frac": (-0.01, 0.01), "jump_frac": (None, 5e-4)}
    values = {"bkg_residual_frac": np.array([[np.nan, -0.004], [0.02, 0.03],
                                             [np.nan, np.nan]])}
    fig = sweep_figure(["a", "b", "c"], ["F115W", "F150W"], values, bounds)
    (ax,) = fig.axes
    f115, f150 = (line for line in ax.lines if line.get_label() in ("F115W", "F150W"))
    np.testing.assert_allclose(f150.get_ydata(), [-0.004, 0.03, np.nan])
    assert np.isnan(f115.get_ydata()[0]) and f115.get_ydata()[1] == 0.02
    dashed = sorted(line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--")
    assert dashed == [-0.01, 0.01]
    png = write_sweep_figure(doc, ["jump_frac", "bkg_residual_frac"], tmp_path / "sweep.png",
                             thresholds)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", sorted((QUICKSTART.parent).glob("*sweep*.yaml")),
                         ids=lambda p: p.name)
def test_every_variant_of_a_shipped_sweep_is_a_valid_scenario(path):
    variants = expand_sweep(yaml.safe_load(path.read_text()))
    assert len(variants) >= 2
    for v in variants:
        validate_scenario(v.data, f"{path} ({v.label})", path.parent)
