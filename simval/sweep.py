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

import copy
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import write_text

__all__ = ["SweepError", "SweepResult", "Variant", "check_sweep_keys", "expand_sweep",
           "run_sweep"]

#: Top-level scenario keys a sweep may vary (they leave the simulated data unchanged).
SWEEPABLE = ("pipeline", "crds", "background_recipe", "comparison", "environment")
PIPELINES = ("detector1", "image2", "image3")
#: Value 1.0 of these derive keys means "no change" (the base context).
_NEUTRAL = {"flat_scale": 1.0, "photom_scale": 1.0}


class SweepError(ValueError):
    """A sweep cannot be expanded or run; the message names the key."""


def _full_key(key: str) -> list[str]:
    parts = [p for p in str(key).split(".") if p]
    if parts and parts[0] in PIPELINES:
        parts = ["pipeline", *parts]
    return parts


def check_sweep_keys(sweep: Mapping[str, Sequence[Any]]) -> None:
    """Raise ``FieldError`` (scenario schema) for a key outside :data:`SWEEPABLE` or an empty
    list of values."""
    from simval.scenario.errors import FieldError

    problems = []
    for key, values in sweep.items():
        parts = _full_key(key)
        if not parts or parts[0] not in SWEEPABLE:
            problems.append(((key,), key, "a sweep may only vary what leaves the simulated data "
                             "unchanged", f"keys under {', '.join(SWEEPABLE)} (pipeline. may "
                             "be left out: image3.skymatch.skymethod)"))
        elif parts[0] == "pipeline" and (len(parts) != 4 or parts[1] not in PIPELINES):
            problems.append(((key,), key, "a pipeline key is pipeline.step.parameter",
                             "e.g. image3.skymatch.skymethod"))
        elif not isinstance(values, list) or not values:
            problems.append(((key,), values, "needs a non-empty list of values",
                             "[value, value, ...]"))
    if problems:
        raise FieldError(problems[0][2], items=problems)


@dataclass(frozen=True)
class Variant:
    """One point of the grid: ``label`` (file-system safe), the swept ``settings`` (dotted
    key -> value) and the complete scenario ``data`` (without ``sweep``)."""

    label: str
    settings: dict[str, Any]
    data: dict[str, Any]


def _set(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def _label(settings: Mapping[str, Any]) -> str:
    if not settings:
        return "base"
    text = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in settings.items())
    text = re.sub(r"[\s'\"{}\[\]:,]", "", text).replace("+", "_plus_")  # global+match
    return re.sub(r"[^A-Za-z0-9_.-]", "", text)[:100] or "variant"


def _clean_derive(data: dict[str, Any]) -> None:
    """A derive block whose values are all neutral means the base context: drop it."""
    kit = (data.get("crds") or {}).get("kit")
    derive = kit.get("derive") if isinstance(kit, dict) else None
    if isinstance(derive, dict):
        neutral = all(derive.get(k, v) == v for k, v in _NEUTRAL.items()) and \
            not any(derive.get("distortion_shift_mas") or [])
        if neutral:
            kit.pop("derive")


def expand_sweep(data: Mapping[str, Any]) -> list[Variant]:
    """The variants of a scenario mapping with a ``sweep`` block (one variant without)."""
    sweep = dict(data.get("sweep") or {})
    base = {k: copy.deepcopy(v) for k, v in data.items() if k != "sweep"}
    crds = base.get("crds")
    if isinstance(crds, dict) and crds.get("contexts"):  # crds.contexts: one per variant
        key = "crds.context" if crds.get("path") else "crds.kit.context"
        sweep[key] = list(crds.pop("contexts"))
    keys = list(sweep)
    variants = []
    for values in itertools.product(*(sweep[k] for k in keys)):
        d = copy.deepcopy(base)
        settings = dict(zip(keys, values, strict=True))
        for key, value in settings.items():
            _set(d, _full_key(key), value)
        _clean_derive(d)
        d["name"] = f"{base.get('name', 'scenario')}-{_label(settings)}"[:64]
        variants.append(Variant(_label(settings), settings, d))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise SweepError(f"sweep values give duplicate variant labels: {labels}")
    return variants


def _compare(result: SweepResult, root: Path) -> str | None:
    """Every complete variant against the first: ``OUT/compare/compare.{html,json}``
    (:mod:`simval.compare`); the path relative to ``root``, None with fewer than two."""
    from simval.compare import compare_runs, write_compare

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

    from simval.evaluate import evaluate_run
    from simval.run import run_scenario
    from simval.scenario import load_scenario, validate_scenario

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
            row["metrics"] = {band: {k: m.value for k, m in f.measurements.items()}
                              for band, f in ev.filters.items()}
            row["passed"] = ev.passed
        else:
            result.failed.append(v.label)
        rows.append(row)
    doc = {"schema": "simval.sweep", "schema_version": 1, "scenario": str(scenario_path),
           "keys": list((data.get("sweep") or {}).keys()), "variants": rows,
           "comparison": _compare(result, root)}
    result.summary = write_text(root / "sweep.json", json.dumps(doc, indent=1, default=str))
    return result
