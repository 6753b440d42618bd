"""Per detector and per visit: photometric, astrometric and sky offsets with known answers.

The synthetic run of tests/test_mosaic_defects.py has NRCB1 (visit 1, two dithers) and
NRCB2 (visit 2): sources on NRCB2 are measured 20 mas east of the truth and 0.05 mag
fainter, its sky is 1% above the injected sky; NRCB1 is exact. The evaluation must read
20 mas, +0.05 mag and +1% for NRCB2 / visit 2 and about 0 for NRCB1 / visit 1, in
``metrics.json`` and in the report's figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from simval.metrics import group_breakdown, source_coverage
from simval.metrics_schema import read_metrics
from tests.test_mosaic_defects import DMAG, SHIFT_MAS, SKY_STEP_FRAC, gap_run  # noqa: F401

BAND = "F115W"


def _groups(doc, name):
    return doc.filters[BAND][name].details["groups"]


@pytest.mark.parametrize(("by", "off", "on"), [("detector", "NRCB2", "NRCB1"),
                                              ("visit", "2", "1")])
def test_offsets_per_group_read_the_injected_errors(gap_run, by, off, on):  # noqa: F811
    layout, _, _, _ = gap_run
    doc = read_metrics(layout.metrics)
    groups = _groups(doc, f"astrom_offset_{by}_worst_mas")
    assert set(groups) == {off, on}
    bad, good = groups[off], groups[on]
    # NRCB2 / visit 2: 20 mas east, 0.05 mag fainter (1 mas and 0.003 mag noise per source)
    assert bad["dx_mas"] == pytest.approx(SHIFT_MAS, abs=0.5)
    assert bad["dy_mas"] == pytest.approx(0.0, abs=0.5)
    assert bad["phot_offset_mag"] == pytest.approx(DMAG, abs=0.002)
    assert bad["rms_mas"] == pytest.approx(SHIFT_MAS, abs=0.6)
    assert good["dx_mas"] == pytest.approx(0.0, abs=0.5)
    assert good["dy_mas"] == pytest.approx(0.0, abs=0.5)
    assert good["phot_offset_mag"] == pytest.approx(0.0, abs=0.002)
    assert good["rms_mas"] < 3.0
    # the sky: +1% on NRCB2 (the global 2-sigma source mask clips a little more of the
    # brighter side: -5% of the step), 0 on NRCB1
    assert bad["bkg_residual_frac"] == pytest.approx(SKY_STEP_FRAC, abs=0.0015)
    assert good["bkg_residual_frac"] == pytest.approx(0.0, abs=0.0005)
    assert bad["n_sources"] > 20 and good["n_sources"] > 20
    assert (good["n_exposures"], bad["n_exposures"]) == (2, 1)
    worst = {q: doc.filters[BAND][f"{q}_{by}_worst_{u}"] for q, u in
             (("phot_offset", "mag"), ("astrom_offset", "mas"), ("astrom_rms", "mas"),
              ("bkg_residual", "frac"))}
    assert all(m.details["worst"] == off and m.n == 2 for m in worst.values())
    assert worst["phot_offset"].value == pytest.approx(bad["phot_offset_mag"])
    assert worst["astrom_offset"].value == pytest.approx(bad["offset_mas"])
    assert worst["astrom_offset"].value == pytest.approx(SHIFT_MAS, abs=0.5)
    assert worst["bkg_residual"].value == pytest.approx(bad["bkg_residual_frac"])
    assert worst["phot_offset"].details["sample"] == "matched bright isolated stars"


def test_the_report_draws_the_per_group_figure(gap_run):  # noqa: F811
    import json

    from simval.report import write_report

    layout, _, _, _ = gap_run
    write_report(layout.root)
    doc = json.loads(layout.report.with_suffix(".json").read_text())
    (f,) = doc["filters"]
    figs = {fig["name"]: fig for fig in f["figures"]}
    assert figs["detectors"]["drawn"] and figs["visits"]["drawn"]
    rows = {r[0]: r for r in f["groups"]["detector"]["rows"]}
    assert set(rows) == {"NRCB1", "NRCB2"}
    assert "+20.1" in rows["NRCB2"][3] or "+20.0" in rows["NRCB2"][3]


@dataclass
class _Frame:
    """A frame whose pixels are offset RA/Dec in units of 1e-4 deg (a toy WCS)."""

    name: str
    detector: str
    visit: int
    dither: int
    shape: tuple[int, int]
    dq: np.ndarray
    x0: float

    def world_to_pixel(self, ra, dec):
        return (np.asarray(ra) - self.x0) / 1e-4, np.asarray(dec) / 1e-4

    def pixel_to_world(self, x, y):
        return np.asarray(x) * 1e-4 + self.x0, np.asarray(y) * 1e-4


def test_a_source_counts_for_every_detector_that_covers_it_with_a_usable_pixel():
    dq = np.zeros((10, 10), np.uint32)
    dq[5, 5] = 1  # DO_NOT_USE
    a = _Frame("a", "NRCA1", 1, 1, (10, 10), dq, 0.0)
    b = _Frame("b", "NRCA2", 1, 1, (10, 10), np.zeros((10, 10), np.uint32), 6e-4)
    ra = np.array([2e-4, 7e-4, 12e-4, 5e-4, 30e-4])
    dec = np.array([2e-4, 3e-4, 3e-4, 5e-4, 3e-4])
    cov = source_coverage(ra, dec, [a, b], bad_bits=1)
    assert cov.tolist() == [[True, False], [True, True], [False, True], [False, False],
                            [False, False]]
    # measured - true: source 0 (a only) +0.1 mag, 1 (both) 0, 2 (b only) -0.1 mag
    dmag = np.array([0.1, 0.0, -0.1, 5.0, 5.0])
    dx = np.array([10.0, 0.0, -10.0, 99.0, 99.0])
    res = group_breakdown("detector", [a, b], coverage=cov, dmag=dmag, dx_mas=dx,
                          dy_mas=np.zeros(5), sample=np.ones(5, bool), sample_name="all")
    ga, gb = res.group("NRCA1"), res.group("NRCA2")
    assert (ga.n_sources, gb.n_sources) == (2, 2)
    assert ga.phot_offset_mag == pytest.approx(0.05) and gb.phot_offset_mag == \
        pytest.approx(-0.05)
    assert ga.dx_mas == pytest.approx(5.0) and gb.dx_mas == pytest.approx(-5.0)
    assert ga.rms_mas == pytest.approx(np.sqrt(50.0))
    m = res.measurements()
    assert m["phot_offset_detector_worst_mag"].value == pytest.approx(0.05)  # first of a tie
    assert m["bkg_residual_detector_worst_frac"].value is None  # no image given
    by_visit = group_breakdown("visit", [a, b], coverage=cov, dmag=dmag, dx_mas=dx,
                               dy_mas=np.zeros(5), sample=np.ones(5, bool),
                               sample_name="all")
    (g,) = by_visit.groups
    assert (g.group, g.n_sources, g.n_exposures) == ("1", 3, 2)
    assert g.phot_offset_mag == pytest.approx(0.0)
