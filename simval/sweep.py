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
``comparison``, ``environment`` (a jwst release made by ``simval env create``) and
``alignment`` (errors in the recorded pointing, applied before image2). A sweep
that needed new simulations would not compare the calibration alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import atomic_path, write_text
from simval.compare import compare_runs, write_compare
from simval.faults import fault_panel
from simval.metrics_schema import check_metric_names
from simval.report.panel import render_panel_html
from simval.report.plots import sweep_figure
from simval.run import evaluate_run, run_scenario
from simval.scenario import load_scenario, validate_scenario
from simval.scenario.sweep import (
    PIPELINES,
    SWEEPABLE,
    SweepError,
    Variant,
    check_sweep_keys,
    expand_faults,
    expand_sweep,
    full_key,
    sweep_keys,
)

__all__ = ["PIPELINES", "SWEEPABLE", "SweepError", "SweepResult", "Variant",
           "check_sweep_keys", "expand_faults", "expand_sweep", "full_key",
           "run_fault_panel", "run_sweep", "sweep_markdown"]


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
    table: Path | None = None

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
    rows, _ = _run_variants(variants, scenario_path, base.base_dir, root, result,
                            reuse_simulation, workers=workers, scheduler=scheduler,
                            kit_dir=kit_dir)
    doc = {"schema": "simval.sweep", "schema_version": 1, "scenario": str(scenario_path),
           "keys": sweep_keys(data.get("sweep")), "variants": rows,
           "comparison": _compare(result, root)}
    result.summary = write_text(root / "sweep.json", json.dumps(doc, indent=1, default=str))
    return result


def sweep_markdown(doc: dict[str, Any], metrics: Sequence[str]) -> str:
    """The variants x filters table of a ``sweep.json`` document for ``metrics`` (registry
    names), as Markdown: one row per variant and filter, values to 4 significant digits."""
    check_metric_names(metrics)
    lines = ["| variant | filter | " + " | ".join(metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for row in doc["variants"]:
        label = row["label"] if row["status"] == "complete" else f"{row['label']} (failed)"
        for band, values in (row.get("metrics") or {"-": {}}).items():
            cells = ["-" if values.get(m) is None else f"{values[m]:.4g}" for m in metrics]
            lines.append(f"| {label} | {band} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_bounds(thresholds: Mapping[str, Mapping[str, Any]] | None,
                 metrics: Sequence[str]) -> dict[str, tuple[float | None, float | None]]:
    """metric -> (low, high) of its threshold for a figure: the ``all`` entry, else the
    first filter's; ``abs_max: a`` is (-a, a)."""
    out = {}
    for m in metrics:
        per = (thresholds or {}).get(m) or {}
        b = per.get("all") or (next(iter(per.values())) if per else None)
        if b:
            a = b.get("abs_max")
            out[m] = (-a, a) if a is not None else (b.get("min"), b.get("max"))
    return out


def write_sweep_figure(doc: dict[str, Any], metrics: Sequence[str], path: str | os.PathLike,
                       thresholds: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """``sweep.png``: ``metrics`` of a ``sweep.json`` document across its variants and
    filters (:func:`simval.report.plots.sweep_figure`), with each metric's threshold band
    (``thresholds``: scenario ``comparison.thresholds`` as dicts; the ``all`` entry, else
    the first filter's)."""
    import numpy as np

    check_metric_names(metrics)
    rows = doc["variants"]
    labels = [r["label"] for r in rows]
    bands = sorted({b for r in rows for b in (r.get("metrics") or {})})
    values = {m: np.array([[np.nan if (r.get("metrics") or {}).get(b, {}).get(m) is None
                            else r["metrics"][b][m] for b in bands] for r in rows], float)
              for m in metrics}
    fig = sweep_figure(labels, bands or ["-"], values, sweep_bounds(thresholds, metrics))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def _run_variants(variants: list[Variant], scenario_path: Path, base_dir: Path | None,
                  root: Path, result: SweepResult,
                  reuse_simulation: str | os.PathLike | None, *,
                  fresh: frozenset[str] = frozenset(),
                  **run_options: Any) -> tuple[list[dict[str, Any]], dict]:
    """Validate every variant (all before any run), run them in order into ``root/<label>``
    (the first simulates unless ``reuse_simulation``; the others reuse the first complete
    run's simulation, except labels in ``fresh``, which simulate their own), evaluate each.
    Returns the summary rows and label -> metrics document of the evaluated runs."""
    scenarios = [validate_scenario(v.data, f"{scenario_path} (variant {v.label})", base_dir)
                 for v in variants]
    root.mkdir(parents=True, exist_ok=True)
    first: Path | None = Path(reuse_simulation) if reuse_simulation is not None else None
    rows, documents = [], {}
    for v, scenario in zip(variants, scenarios, strict=True):
        run_dir = root / v.label
        run = run_scenario(scenario, run_dir, reuse_simulation=None if v.label in fresh
                           else first, **run_options)
        result.runs[v.label] = run.run_dir
        row: dict[str, Any] = {"label": v.label, "settings": v.settings,
                               "run": str(run.run_dir), "status": run.status, "metrics": {}}
        if run.ok:
            if v.label not in fresh:
                first = first if first is not None else run.run_dir
            ev = evaluate_run(run.run_dir)
            documents[v.label] = ev.document
            row["metrics"] = {band: {k: m.value for k, m in measurements.items()}
                              for band, measurements in ev.document.filters.items()}
            row["passed"] = ev.passed
        else:
            result.failed.append(v.label)
        rows.append(row)
    return rows, documents


def run_fault_panel(scenario_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                    clean_seeds: int = 0, workers: int | None = None,
                    scheduler: str | None = None, kit_dir: str | os.PathLike | None = None,
                    reuse_simulation: str | os.PathLike | None = None) -> SweepResult:
    """A scenario's fault panel (:mod:`simval.faults`): the clean calibration, one per fault
    on the same simulated data, and ``clean_seeds`` clean simulations with seeds ``seed + 1
    ...``; writes ``out_dir/panel.json`` (the fault x metric cells, which faults were caught,
    the false alarms), ``out_dir/panel.md`` (the table) and ``out_dir/panel.html`` (the
    fault x metric matrix)."""
    import copy

    import yaml

    scenario_path = Path(scenario_path)
    base = load_scenario(scenario_path)
    if not base.faults:
        raise SweepError(f"{scenario_path}: no faults block (a panel needs faults: [...])")
    data = yaml.safe_load(scenario_path.read_text(encoding="utf-8"))
    variants = expand_faults(data)
    clean = variants[0].data
    for k in range(1, clean_seeds + 1):
        d = copy.deepcopy(clean)
        d["seed"] = base.seed + k
        d["name"] = f"{clean.get('name', 'scenario')}-seed{k}"[:64]
        variants.append(Variant(f"clean-seed{k}", {"seed": base.seed + k}, d))
    seeds = frozenset(v.label for v in variants if v.label.startswith("clean-seed"))
    root = Path(out_dir)
    result = SweepResult(root)
    rows, docs = _run_variants(variants, scenario_path, base.base_dir, root, result,
                               reuse_simulation, fresh=seeds, workers=workers,
                               scheduler=scheduler, kit_dir=kit_dir)
    doc: dict[str, Any] = {"schema": "simval.panel", "schema_version": 1,
                           "scenario": str(scenario_path), "variants": rows}
    if "clean" in docs:
        names = {v.label: f.name for v, f in zip(variants[1:], base.faults, strict=False)}
        panel = fault_panel(
            base.comparison, docs["clean"].filters,
            {names[label]: docs[label].filters for label in names if label in docs},
            {f.name: f.expect for f in base.faults},
            {label: docs[label].filters for label in sorted(seeds) if label in docs},
            benign={f.name: f.benign for f in base.faults if f.benign})
        doc["panel"] = panel.to_dict()
        result.table = write_text(root / "panel.md", panel.markdown())
        write_text(root / "panel.html", render_panel_html(panel, title=base.name))
    result.summary = write_text(root / "panel.json", json.dumps(doc, indent=1, default=str))
    return result
