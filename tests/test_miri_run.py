"""`simval run` on the MIRI imager: the shipped miri_quickstart, cut to 2 dithers, from the
session's kit directory, offline: simulated by simval's MIRI simulator, calibrated by
calwebb_detector1 (emicorr on), image2 and image3 with the MIRI kit's own CRDS context,
evaluated like a NIRCam run, and closing within the scenario's thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def miri_run(tmp_path_factory):
    from simval.run import run_scenario
    from simval.scenario import validate_scenario

    data = yaml.safe_load((ROOT / "scenarios" / "miri_quickstart.yaml").read_text())
    data["dither"] = {"offsets": [[0.0, 0.0], [1.16, 0.61]]}
    scenario = validate_scenario(data, "miri_quickstart (2 dithers)", ROOT / "scenarios")
    from simval.report import write_report
    from simval.run.evaluation import evaluate_run

    out = tmp_path_factory.mktemp("miri_run") / "run"
    result = run_scenario(scenario, out, workers=2)
    evaluation = evaluate_run(out)  # as `simval run` does after the graph
    write_report(out, verdicts=evaluation.verdicts)
    return scenario, result, evaluation


def test_miri_run_completes_with_the_miri_simulator_and_kit(miri_run):
    _, result, _ = miri_run
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete", manifest["failed_stages"]
    assert manifest["instrument"] == "MIRI"
    assert "MIRI imager simulator" in manifest["simulator"]
    assert Path(manifest["kit"]["root"]).name.startswith("miri-seed20221-")
    assert manifest["crds"]["context"].startswith("jwst_")
    assert set(manifest["products"]) == {"F770W", "F1500W"}
    refs = manifest["reference_files"]
    det1 = next(v["detector1"] for k, v in refs.items() if "detector1" in v)
    assert {"emicorr", "reset", "rscd", "dark"} <= set(det1)
    assert all(det1[k].startswith("simval_miri_") for k in ("dark", "reset", "emicorr", "rscd"))
    report = (result.run_dir / "report.html").read_text()
    assert "MIRI imager simulator" in report


def test_miri_run_closes_within_the_thresholds(miri_run):
    _, _, evaluation = miri_run
    verdicts = evaluation.verdicts
    assert len(verdicts) == 8  # 4 thresholds x 2 filters
    assert evaluation.passed, [(v.filter, v.metric, v.value) for v in verdicts if not v.passed]
    values = {(v.filter, v.metric): v.value for v in verdicts}
    for band in ("F770W", "F1500W"):
        assert abs(values[band, "phot_bias_bright_star_mag"]) < 0.02
        assert values[band, "astrom_rms_bright_star_mas"] < 10.0


def test_miri_run_refuses_a_derived_context_before_anything_runs():
    from simval.run.graph import RunSetupError, check_supported
    from simval.scenario import validate_scenario

    data = yaml.safe_load((ROOT / "scenarios" / "miri_quickstart.yaml").read_text())
    data["crds"] = {"kit": {"seed": 20221, "derive": {"photom_scale": 1.05}}}
    scenario = validate_scenario(data, "miri (derive)", ROOT / "scenarios")
    with pytest.raises(RunSetupError, match=r"crds\.kit\.derive: derived contexts are made for "
                                            "NIRCam kits only"):
        check_supported(scenario)


def test_miri_run_measures_its_10_sigma_limit(miri_run):
    """The sensitivity metric works for MIRI: 10-sigma point-source limit in an aperture of
    max(2.5 px, 1.2 lambda/D), finite and fainter in F770W than in F1500W (the 12x higher
    sky and the 2x larger aperture at 15 um)."""
    _, _, evaluation = miri_run
    filters = evaluation.document.filters
    limits = {b: filters[b]["limit_10sigma_njy"] for b in ("F770W", "F1500W")}
    assert all(m.value is not None and m.value > 0 for m in limits.values()), limits
    assert limits["F770W"].value < limits["F1500W"].value
