"""Parameter sweeps: one simulation, a grid of calibrations, one comparison.

A scenario's ``sweep`` block maps dotted scenario keys to lists of values (and
``crds.contexts: [...]`` adds one variant per CRDS context)::

    sweep:
      image3.skymatch.skymethod: [local, global, match]   # pipeline.* may be left out
      crds.kit.derive.photom_scale: [1.0, 1.05]

:func:`expand_sweep` turns it into the grid of variants (the Cartesian product, in the
order written), each a complete scenario validated like any other. :func:`run_sweep` runs
the first variant in full and every other one with ``reuse_simulation`` pointing at it, so
all variants calibrate the very same raw data, then evaluates each run and compares every
variant with the first (``OUT/compare/compare.html``, :mod:`simval.compare`). Only keys that do
not change the simulated data may be swept: ``pipeline``, ``crds``, ``background_recipe``,
``comparison`` and ``environment`` (a jwst release made by ``simval env create``). A sweep
that needed new simulations would not compare the calibration alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import write_text
from simval.compare import compare_runs, write_compare
from simval.run import evaluate_run, run_scenario
from simval.scenario import load_scenario, validate_scenario
from simval.scenario.sweep import (
    PIPELINES,
    SWEEPABLE,
    SweepError,
    Variant,
    check_sweep_keys,
    expand_sweep,
    full_key,
)

__all__ = ["PIPELINES", "SWEEPABLE", "SweepError", "SweepResult", "Variant",
           "check_sweep_keys", "expand_sweep", "full_key", "run_sweep"]


def _compare(result: SweepResult, root: Path) -> str | None:
    """Every complete variant against the first: ``OUT/compare/compare.{html,json}``
    (:mod:`simval.compare`); the path relative to ``root``, None with fewer than two."""

    done = [run for label, run in result.runs.items() if label not in result.failed]
    if len(done) < 2:
        return None
    written = write_compare(compare_runs(done), root / "compare")
    return str(written["compare.html"].relative_to(root))


@dataclass
class SweepResult:
    """What :func:`run_sweep` made: the run directory of each variant (``runs``), which
    failed, and ``summary`` (the path of ``sweep.json``)."""

    root: Path
    runs: dict[str, Path] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    summary: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def run_sweep(scenario_path: str | os.PathLike, out_dir: str | os.PathLike, *,
              workers: int | None = None, scheduler: str | None = None,
              kit_dir: str | os.PathLike | None = None,
              reuse_simulation: str | os.PathLike | None = None) -> SweepResult:
    """Run every variant of a scenario's sweep into ``out_dir/<label>/`` (the first in full,
    or on ``reuse_simulation``'s exposures, the others reusing its simulation), evaluate
    each, and write ``out_dir/sweep.json`` (variant settings, run status, and every metric
    value per filter)."""
    import yaml

    scenario_path = Path(scenario_path)
    base = load_scenario(scenario_path)  # the file itself must be valid
    data = yaml.safe_load(scenario_path.read_text(encoding="utf-8"))
    variants = expand_sweep(data)
    root = Path(out_dir)
    result = SweepResult(root)
    scenarios = [validate_scenario(v.data, f"{scenario_path} (sweep variant {v.label})",
                                   base.base_dir) for v in variants]  # all before any run
    root.mkdir(parents=True, exist_ok=True)
    first: Path | None = Path(reuse_simulation) if reuse_simulation is not None else None
    rows = []
    for v, scenario in zip(variants, scenarios, strict=True):
        run_dir = root / v.label
        run = run_scenario(scenario, run_dir, workers=workers, scheduler=scheduler,
                           kit_dir=kit_dir, reuse_simulation=first)
        result.runs[v.label] = run.run_dir
        row: dict[str, Any] = {"label": v.label, "settings": v.settings,
                               "run": str(run.run_dir), "status": run.status, "metrics": {}}
        if run.ok:
            first = first if first is not None else run.run_dir
            ev = evaluate_run(run.run_dir)
            row["metrics"] = {band: {k: m.value for k, m in measurements.items()}
                              for band, measurements in ev.document.filters.items()}
            row["passed"] = ev.passed
        else:
            result.failed.append(v.label)
        rows.append(row)
    doc = {"schema": "simval.sweep", "schema_version": 1, "scenario": str(scenario_path),
           "keys": list((data.get("sweep") or {}).keys()), "variants": rows,
           "comparison": _compare(result, root)}
    result.summary = write_text(root / "sweep.json", json.dumps(doc, indent=1, default=str))
    return result
