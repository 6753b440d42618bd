"""report.json beside report.html, and the reference type -> step record behind the report's
reference-file tables (calibrate -> stage info -> manifest.json -> report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from simval import calibrate
from simval.envs import runner
from simval.layout import RunLayout
from simval.report import write_report
from simval.run.records import COMPLETE, FileRef, StageOutcome
from simval.testing import PHOTOM_REFERENCE, manifest_of
from tests.test_report import BANDS, make_run_dir, parse_html


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "run")


def test_report_json_holds_the_verdict_rows_and_the_metrics(run_dir: Path):
    html = write_report(run_dir).read_text()
    doc = json.loads((run_dir / "report.json").read_text())
    assert doc["schema"] == "simval.report" and doc["schema_version"] == 1
    assert doc["title"] == "fakescen" and doc["status"] == "complete"
    # the verdict rows, in the order of the HTML table (failures first)
    table = parse_html(html).find("table", cls="verdicts")
    shown = []
    for tr in table.find("tbody").find_all("tr"):
        tds = tr.find_all("td")
        shown.append((tr.attrs["class"] == "pass", tds[0].find("code").text, tds[1].text,
                      tds[2].text))
    rows = doc["verdicts"]["rows"]
    assert [(r["passed"], r["metric"], r["filter"], r["value_text"]) for r in rows] == shown
    assert [r["passed"] for r in rows] == [False, False, True, True, True]
    # every metric of metrics.json, per filter, with its value, uncertainty, n and unit
    metrics = json.loads((run_dir / "metrics.json").read_text())["filters"]
    assert [f["band"] for f in doc["filters"]] == list(BANDS)
    for f in doc["filters"]:
        got = {m["name"]: (m["value"], m["uncertainty"], m["n"], m["unit"]) for m in f["metrics"]}
        want = {name: (m["value"], m["uncertainty"], m["n"], m["unit"])
                for name, m in metrics[f["band"]].items()}
        assert got == want
        # the figures without their PNG: title, caption, drawn
        assert [g["name"] for g in f["figures"]] == ["completeness", "photometry", "astrometry",
                                                     "background", "mosaic", "counts"]
        assert all(g["drawn"] and g["title"] and g["caption"] for g in f["figures"])
    assert "data:image" not in (run_dir / "report.json").read_text()
    refs = doc["provenance"]["reference_files"]
    assert doc["provenance"]["steps_recorded"]
    assert refs[0]["table"]["rows"] == [["flat", "simval_nircam_flat_nrcb1_f115w.fits",
                                         "detector1.clean_flicker_noise, image2.flat_field"],
                                        ["photom", PHOTOM_REFERENCE, "image2.photom"]]


def test_report_json_of_an_empty_directory(tmp_path: Path):
    write_report(tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["filters"] == [] and doc["verdicts"]["rows"] == []
    assert doc["provenance"]["manifest_missing"]


def test_reftype_steps_come_from_the_pipeline_classes():
    image2 = calibrate.reftype_steps("image2")
    assert image2["flat"] == ["flat_field"] and image2["photom"] == ["photom"]
    assert "ramp_fit" in calibrate.reftype_steps("detector1")["gain"]
    image2["flat"].append("changed")  # each caller gets its own copy
    assert calibrate.reftype_steps("image2")["flat"] == ["flat_field"]
    with pytest.raises(ValueError, match="unknown pipeline"):
        calibrate.reftype_steps("image4")


def test_manifest_collects_the_stages_reftype_steps(tmp_path: Path):
    layout = RunLayout(tmp_path)
    ref = FileRef("image3/p/p_i2d.fits", "0" * 64, 1)
    det1 = {"flat": ["clean_flicker_noise"]}
    img2 = {"flat": ["flat_field"]}
    outcomes = {
        "detector1.e1": StageOutcome("detector1.e1", "detector1", COMPLETE,
                                     info={"ref_files": {"flat": "f1.fits"},
                                           "reftype_steps": det1}),
        "detector1.e2": StageOutcome("detector1.e2", "detector1", COMPLETE,
                                     info={"ref_files": {}, "reftype_steps": det1}),
        "image2.e1": StageOutcome("image2.e1", "image2", COMPLETE,
                                  info={"ref_files": {"flat": "f2.fits"},
                                        "reftype_steps": img2}),
        "image3.p": StageOutcome("image3.p", "image3", COMPLETE,  # recorded before the key
                                 outputs={"i2d": ref, "catalog": ref, "asn": ref},
                                 info={"ref_files": {}, "filter": "F115W"}),
    }

    doc = manifest_of(layout, outcomes)
    assert doc["reftype_steps"] == {"detector1": det1, "image2": img2}


def test_a_stage_in_an_environment_records_that_environments_mapping(tmp_path: Path,
                                                                      monkeypatch):
    """The worker reports its jwst's mapping in its result; the stage's info takes it."""
    theirs = {"flat": ["flat_field"], "trappars": ["persistence"]}

    def fake_worker(cmd, **kwargs):
        spec = json.loads(Path(cmd[-1]).read_text())
        Path(spec["result"]).write_text(json.dumps({
            "schema": 1, "kind": spec["kind"], "status": "ok",
            "outputs": {"product": str(tmp_path / "x_cal.fits")}, "versions": {},
            "reftype_steps": theirs}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    class _Registry:
        def get(self, name: str) -> SimpleNamespace:
            return SimpleNamespace(python=sys.executable, jwst_version="1.20.2")

    monkeypatch.setattr(runner.subprocess, "run", fake_worker)
    monkeypatch.setattr(runner, "_REFTYPE_STEPS", {})
    assert runner.stage_reftype_steps({"env": "old"}, "image2") is None  # nothing reported
    runner.run_in_env("old", "image2", tmp_path / "x_rate.fits", tmp_path / "out",
                      {"CRDS_PATH": str(tmp_path)}, tmp_path / "log.txt", registry=_Registry())
    assert runner.stage_reftype_steps({"env": "old"}, "image2") == theirs
    assert runner.stage_reftype_steps({"env": "old"}, "image3") is None
    assert runner.stage_reftype_steps({}, "image2") == calibrate.reftype_steps("image2")
