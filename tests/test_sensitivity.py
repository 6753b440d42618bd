"""Sensitivity: a known calibration error in a derived kit context must show in the metrics.

The runs come from the session fixture ``derived_sweep`` (tests/conftest.py).

One reduced quickstart (F150W, 2 dithers) is simulated once; a sweep over
``crds.kit.derive`` calibrates the same raw data again with contexts derived from the kit's
base — flat x1.03 and a distortion shifted by 50 mas — through ``reuse_simulation``
(simulate once, calibrate many). The simulator always sees the base instrument, so each
change is the only difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simval.run import evaluate_run
from tests.conftest import DERIVES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(derived_sweep):
    return derived_sweep


def _metrics(run_dir: Path) -> tuple[dict, dict]:
    res = evaluate_run(run_dir)
    return res.document.filters["F150W"], {v.metric: v for v in res.verdicts}


def test_simulation_is_reused_not_redone(runs):
    base_doc = json.loads((runs["base"] / "manifest.json").read_text())
    assert "simulation_reused_from" not in base_doc
    for name in ("flat", "distortion", "photom"):
        doc = json.loads((runs[name] / "manifest.json").read_text())
        reused = doc["simulation_reused_from"]
        assert reused["run"] == str(runs["base"].resolve())
        assert len([s for s in reused["reused"] if s.startswith("simulate.")]) == 2
        # a derived context is a new CRDS context: detector1 fits the ramps again
        assert sorted(s.split(".")[0] for s in reused["rerun"]) == ["detector1"] * 2
        assert doc["crds"]["context"] != base_doc["crds"]["context"]
    variants = runs["summary"]["variants"]
    assert [v["settings"]["crds.kit.derive"] for v in variants] == DERIVES
    assert [v["passed"] for v in variants][:3] == [True, False, False]
    # the sweep is reported as one comparison: every variant against the first
    html = runs["base"].parent / runs["summary"]["comparison"]
    assert runs["summary"]["comparison"] == "compare/compare.html" and html.is_file()
    doc = json.loads((html.parent / "compare.json").read_text())
    assert len(doc["comparisons"]) == len(DERIVES) - 1
    assert [c["provenance"]["reftypes_changed"] for c in doc["comparisons"]] == [
        ["flat"], ["distortion"], ["photom"]]


def test_base_context_passes(runs):
    m, verdicts = _metrics(runs["base"])
    assert abs(m["phot_bias_bright_star_mag"].value) < 0.015
    assert verdicts["phot_bias_bright_star_mag"].passed
    assert verdicts["astrom_offset_mas"].passed


def test_flat_scaled_by_3_percent_reads_0_032_mag_and_fails(runs):
    m, verdicts = _metrics(runs["flat"])
    base, _ = _metrics(runs["base"])
    bias = m["phot_bias_bright_star_mag"].value
    shift = bias - base["phot_bias_bright_star_mag"].value  # same stars, same raw data
    expected = 2.5 * np.log10(1.03)  # measured - true: fluxes divided by 1.03 read fainter
    print(f"flat x1.03: bright-star bias {bias:+.4f} mag, {shift:+.4f} from the base "
          f"context (expected {expected:+.4f})")
    assert shift == pytest.approx(expected, abs=0.005)
    assert bias == pytest.approx(expected, abs=0.015)
    v = verdicts["phot_bias_bright_star_mag"]
    assert not v.passed and v.value == pytest.approx(bias)


def test_distortion_shifted_by_50_mas_fails_astrometry(runs):
    m, verdicts = _metrics(runs["distortion"])
    offset = m["astrom_offset_mas"].value
    print(f"distortion shifted 50 mas: astrometric offset {offset:.1f} mas")
    assert offset == pytest.approx(50.0, abs=5.0)
    assert not verdicts["astrom_offset_mas"].passed
    assert verdicts["phot_bias_bright_star_mag"].passed  # photometry does not move
