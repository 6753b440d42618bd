"""simval plan --cost: the model reproduces the measurements it was fitted to, counts the
survey's exposures, and sizes the files it will write."""

from __future__ import annotations

from pathlib import Path

import pytest

from simval.cli import main
from simval.cost import estimate
from simval.plan import make_plan
from simval.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _plan(name: str):
    return make_plan(load_scenario(SCENARIOS / name))


@pytest.mark.parametrize(("name", "kind", "measured_s"), [
    ("quickstart.yaml", "simulate", 4.5),        # SUB400P BRIGHT2 x 10, MIRAGE alone
    ("quickstart.yaml", "detector1", 4.9),
    ("cosmos_web_like.yaml", "simulate", 57.8),  # FULL SHALLOW4 x 5 (1-visit slice means)
    ("cosmos_web_like.yaml", "detector1", 13.8),
    ("cosmos_web_like.yaml", "image2", 8.7),
])
def test_time_model_reproduces_its_measurements(name, kind, measured_s):
    k = estimate(_plan(name)).kinds[kind]
    assert k.cpu_s / k.count == pytest.approx(measured_s, rel=0.05)


def test_survey_counts_and_sizes():
    plan = _plan("cosmos_web.yaml")
    assert len(plan.exposures) == 152 * 4 * 2 * 10
    cost = estimate(plan)
    assert cost.kinds["simulate"].count == 12160 and cost.kinds["image3"].count == 4
    # uncal: int16 per pixel per group (2048^2 x 5 groups) + seed image and segmap (8 B/px)
    per_exposure = 2048**2 * (2 * 5 + 8)
    assert cost.kinds["simulate"].disk_bytes == pytest.approx(12160 * per_exposure)
    # one mosaic per filter over the whole survey does not fit on a 24 GB machine
    assert cost.kinds["image3"].peak_mb > 24 * 1024
    like = estimate(_plan("cosmos_web_like.yaml"))
    assert like.kinds["simulate"].count == 160
    assert like.peak_mb < 24 * 1024  # the block runs on 2 cores / 24 GB
    # time scales with the number of exposures
    assert cost.kinds["simulate"].cpu_s / like.kinds["simulate"].cpu_s == pytest.approx(76)


def test_cli_prints_the_estimate(capsys):
    assert main(["plan", str(SCENARIOS / "cosmos_web_like.yaml"), "--cost", "--cores", "2",
                 "--memory-gb", "24"]) == 0
    out = capsys.readouterr().out
    assert "160 exposures" in out and "simulate" in out and "wall" in out
