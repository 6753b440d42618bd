"""The fault panel: its scenario block, its variants, and the fault x metric table computed
on metrics whose verdicts are known (the end-to-end panel is ``simval panel
scenarios/fault_panel.yaml``)."""

from __future__ import annotations

import pytest
import yaml

from simval.faults import fault_panel
from simval.metrics_schema import Measurement
from simval.scenario import ScenarioError, load_scenario, validate_scenario
from simval.scenario.inputs import Comparison
from simval.sweep import expand_faults
from tests.scenario_data import QUICKSTART, quickstart_data

COMPARISON = Comparison.model_validate({"thresholds": {
    "phot_bias_bright_star_mag": {"abs_max": 0.02},
    "bkg_residual_frac": {"abs_max": 0.01},
    "astrom_rms_bright_star_mas": {"max": 10},
}})


def _metrics(phot=0.005, bkg=-0.002, rms=2.0, bands=("F115W", "F150W")):
    values = {"phot_bias_bright_star_mag": phot, "bkg_residual_frac": bkg,
              "astrom_rms_bright_star_mas": rms}
    return {b: {k: Measurement.of(k, v, n=10) for k, v in values.items()} for b in bands}


def test_table_says_which_metric_catches_which_fault():
    faulted = {
        "flat x1.03": _metrics(phot=0.032, bkg=-0.029),    # both flag it
        "area x1.1": _metrics(),                           # nothing moves: missed
        "rms only": _metrics(rms=12.0),                    # caught, not by photometry
    }
    expect = {"flat x1.03": ["phot_bias_bright_star_mag"],
              "area x1.1": ["phot_bias_bright_star_mag"],
              "rms only": ["phot_bias_bright_star_mag", "astrom_rms_bright_star_mas"]}
    seeds = {"clean-seed1": _metrics(), "clean-seed2": _metrics(bkg=0.013, bands=("F115W",))}
    panel = fault_panel(COMPARISON, _metrics(), faulted, expect, seeds)

    assert panel.caught("flat x1.03") and panel.caught("rms only")
    assert panel.missed() == ["area x1.1"]
    flagged = {(c.metric, c.filter) for c in panel.flagged_by("flat x1.03")}
    assert flagged == {(m, b) for m in ("phot_bias_bright_star_mag", "bkg_residual_frac")
                       for b in ("F115W", "F150W")}
    cell = next(c for c in panel.cells if c.fault == "flat x1.03"
                and c.metric == "phot_bias_bright_star_mag" and c.filter == "F150W")
    assert (cell.clean_value, cell.value, cell.limit) == (0.005, 0.032, "|x| <= 0.02")
    assert cell.expected and cell.discriminating
    # 3 thresholds x 2 filters per fault.
    assert len(panel.cells) == 18
    assert panel.false_alarms == [{"seed": "clean-seed2", "metric": "bkg_residual_frac",
                                   "filter": "F115W", "value": 0.013,
                                   "limit": "|x| <= 0.01"}]
    text = panel.markdown()
    assert "- area x1.1: **missed**" in text
    assert "- flat x1.03: caught; also flagged by bkg_residual_frac[F115W] -0.029" in text
    assert "Clean seeds (2): 1 false alarm(s)" in text
    assert panel.to_dict()["faults"][2] == {
        "name": "rms only", "expect": expect["rms only"], "benign": None, "caught": True,
        "verdict": "caught",
        "flagged_by": ["astrom_rms_bright_star_mas[F115W]", "astrom_rms_bright_star_mas[F150W]"]}

    import re

    from simval.report.panel import render_panel_html

    html = render_panel_html(panel, title="case")
    assert "2 of 3 faults caught" in html and "1 false alarm(s) on 2 clean seed(s)" in html
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"(\w*)\">", html)
    assert rows == [("clean", ""), ("flat x1.03", "caught"), ("area x1.1", "missed"),
                    ("rms only", "caught")]
    # flat x1.03's row: columns sorted (astrom_rms, bkg_residual, phot_bias) x (F115W, F150W);
    # the four photometry and sky cells flag it, phot_bias is the expected one
    flat = html.split("<td>flat x1.03</td>")[1].split("</tr>")[0]
    classes = re.findall(r'<td class="num ([^"]*)"', flat)
    assert classes == ["", "", "flag", "flag", "flag expected", "flag expected"]


def test_a_benign_fault_passes_only_when_no_metric_flags_it():
    faulted = {"area x1.1": _metrics(phot=0.006), "superbias +100 DN": _metrics(bkg=0.02)}
    benign = {"area x1.1": "imaging fluxes do not use the area map",
              "superbias +100 DN": "a constant offset leaves the slope"}
    panel = fault_panel(COMPARISON, _metrics(), faulted, {}, benign=benign)
    assert panel.caught("area x1.1") and panel.verdict("area x1.1") == "benign"
    assert panel.verdict("superbias +100 DN") == "not benign"
    assert panel.missed() == ["superbias +100 DN"]
    text = panel.markdown()
    assert "- area x1.1: benign (imaging fluxes do not use the area map)" in text
    assert "- superbias +100 DN: **not benign** (a constant offset leaves the slope); also " \
           "flagged by bkg_residual_frac[F115W] 0.02" in text

    from simval.report.panel import render_panel_html

    html = render_panel_html(panel, title="case")
    assert "0 of 0 faults caught" in html and "1 of 2 benign faults flag nothing" in html
    assert '<td class="not">not benign</td>' in html


def test_a_metric_failing_on_the_clean_run_catches_nothing():
    clean = _metrics(phot=0.05)  # the clean calibration already fails photometry
    panel = fault_panel(COMPARISON, clean, {"photom x1.05": _metrics(phot=-0.003)},
                        {"photom x1.05": ["phot_bias_bright_star_mag"]})
    assert panel.missed() == ["photom x1.05"]
    bad = panel.cells[0]
    assert bad.clean_flagged and not bad.flagged


def test_an_unmeasured_metric_flags_but_does_not_hide_the_clean_value():
    faulted = _metrics()
    faulted["F150W"]["phot_bias_bright_star_mag"] = Measurement.of(
        "phot_bias_bright_star_mag", None)
    panel = fault_panel(COMPARISON, _metrics(), {"no stars": faulted},
                        {"no stars": ["phot_bias_bright_star_mag"]})
    assert panel.caught("no stars")
    assert "| no stars | phot_bias_bright_star_mag | F150W | 0.005 | not measured |" in (
        panel.markdown())


@pytest.fixture
def base() -> dict:
    data = quickstart_data()
    data["faults"] = [
        {"name": "gain x1.05", "set": {"crds.kit.derive.gain_scale": 1.05},
         "expect": ["phot_bias_bright_star_mag"]},
        {"name": "skymatch mode", "set": {"image3.skymatch.skystat": "mode"},
         "expect": ["bkg_residual_frac"]},
    ]
    return data


def test_faults_expand_one_at_a_time_after_the_clean_variant(base):
    variants = expand_faults(base)
    assert [v.label for v in variants] == ["clean", "gain_x1.05", "skymatch_mode"]
    clean, gain, sky = (v.data for v in variants)
    assert "faults" not in clean and "derive" not in clean["crds"]["kit"]
    assert gain["crds"]["kit"]["derive"] == {"gain_scale": 1.05}
    assert "derive" not in sky["crds"]["kit"]
    assert sky["pipeline"]["image3"]["skymatch"]["skystat"] == "mode"
    for v in variants:
        validate_scenario(v.data, "variant", QUICKSTART.parent)


@pytest.mark.parametrize("fault, words", [
    ({"name": "seed", "set": {"seed": 3}, "expect": ["bkg_residual_frac"]},
     ["faults[0].set.seed", "leaves the simulated data unchanged"]),
    ({"name": "none", "set": {}, "expect": ["bkg_residual_frac"]}, ["at least one key"]),
    ({"name": "x", "set": {"crds.kit.derive.gain_scale": 1.05}, "expect": ["purity"]},
     ["faults[0].expect[0]", "needs a threshold", "bkg_residual_frac"]),
    ({"name": "x", "set": {"crds.kit.derive.gain_scale": 1.05}, "expect": []},
     ["faults[0].expect", "either the metrics expected to flag it", "benign: 'reason'"]),
    ({"name": "x", "set": {"crds.kit.derive.gain_scale": 1.05}, "expect": ["purity"],
      "benign": "harmless"},
     ["faults[0].expect", "either the metrics expected to flag it"]),
])
def test_bad_faults_are_refused_with_the_field_named(tmp_path, base, fault, words):
    base["faults"] = [fault]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_a_derived_fault_with_a_bad_value_names_the_key(tmp_path, base):
    base["faults"][0]["set"] = {"crds.kit.derive.gain_scale": 0}
    (_, gain, _) = expand_faults(base)
    with pytest.raises(ScenarioError) as info:
        validate_scenario(gain.data, "s.yaml (variant gain)", QUICKSTART.parent)
    assert "gain_scale" in str(info.value)


def test_run_refuses_and_panel_requires_a_faults_block(tmp_path, base, capsys):
    from simval.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 2
    assert "simval panel" in capsys.readouterr().err
    del base["faults"]
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    assert main(["panel", str(path), "-o", str(tmp_path / "panel")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no `faults` block" in err and "expect: [err_ratio_nmad_drizzle]" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "panel").exists()


def test_every_fault_of_the_shipped_panel_is_a_valid_scenario():
    path = QUICKSTART.parent / "fault_panel.yaml"
    variants = expand_faults(yaml.safe_load(path.read_text()))
    assert len(variants) == 1 + len(load_scenario(path).faults) >= 11
    for v in variants:
        validate_scenario(v.data, f"{path} ({v.label})", path.parent)
    biased = next(v for v in variants if "biased" in v.label)
    assert biased.data["alignment"]["abs_refcat"]["bias_mas"] == [50.0, 0.0]
