"""Make sure a finished run is evaluated, and read its verdicts.

A run made by :func:`simval.run.run_scenario` is evaluated by its own graph (truth,
evaluate and metrics stages after image3). :func:`ensure_evaluated` is the one way to bring
any other run up to date — a run made before those stages existed, one whose scenario's
comparison settings changed, one whose ``metrics.json`` was deleted: it runs the
evaluation stages in this process with the usual resume rule (a stage whose inputs and
parameters did not change is reused from its record), on the outputs that the run's
records vouch for. The CLI, the pytest plugin and sweeps call it; the report and compare
only read files.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simval.evaluate import comparison_of
from simval.layout import RunLayout
from simval.metrics_schema import MetricsDocument, read_metrics
from simval.run.coron_graph import coron_evaluation_specs, recorded_simulation_params
from simval.run.executor import run_graph
from simval.run.graph import evaluation_specs, with_functions
from simval.run.records import StageOutcome, execute_stage, read_record, recorded_outcome
from simval.truth import load_plan
from simval.verdict import compare_to_baseline, evaluate_thresholds

if TYPE_CHECKING:
    from simval.metrics_schema import MetricsDocument
    from simval.verdict import Tolerance, Verdict

__all__ = ["EvaluationError", "EvaluationResult", "ensure_evaluated", "evaluate_run"]


class EvaluationError(RuntimeError):
    """The run cannot be evaluated; the message names the stage, its log and traceback."""


def _crds_context(layout: RunLayout) -> str | None:
    try:
        manifest = json.loads(layout.manifest.read_text())
    except (OSError, ValueError):
        return None
    return (manifest.get("crds") or {}).get("context")


def ensure_evaluated(run_dir: str | os.PathLike | RunLayout, *,
                     catalog_options: Mapping[str, Any] | None = None,
                     client: Any = None) -> dict[str, StageOutcome]:
    """Run (or reuse) the evaluation stages of a finished run; ``metrics.json`` is then
    current. Returns the stage outcomes (``cached`` for those reused).

    Parameters
    ----------
    run_dir : path or RunLayout
        A run directory whose calibration completed (``plan.json``, stage records).
    catalog_options : mapping, optional
        Override :func:`simval.metrics.catalog_metrics` options (``bright_snr_min``,
        ``min_exposures``, ...); a different value is a different evaluation stage.
    client : distributed.Client, optional
        Run the stages on this Dask cluster (products in parallel; its workers must see
        the run directory); default: one after the other in this process.

    Raises
    ------
    FileNotFoundError
        Without ``plan.json``.
    EvaluationError
        If a stage the evaluation reads did not complete (or its outputs changed since
        its record), or an evaluation stage fails.
    """

    layout = run_dir if isinstance(run_dir, RunLayout) else RunLayout(Path(run_dir))
    plan = load_plan(layout)
    run_id = uuid.uuid4().hex[:12]
    if plan.coronagraphy is not None:  # from the finished run's own records
        try:
            params = recorded_simulation_params(plan, layout)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
        specs = coron_evaluation_specs(plan, layout, run_id, crds_context=_crds_context(layout),
                                       sim_params=params)
    else:
        specs = with_functions(evaluation_specs(
            plan, layout, run_id, crds_context=_crds_context(layout),
            catalog_options=dict(catalog_options) if catalog_options else None))
    own = {s.stage_id for s in specs}
    needed: dict[str, list[str]] = {}
    for spec in specs:
        for sid, output in spec.uses.values():
            if sid not in own:
                needed.setdefault(sid, []).append(output)
    outcomes: dict[str, StageOutcome] = {}
    for sid, names in needed.items():
        got = recorded_outcome(layout, sid, tuple(names))
        if got is None:
            raise EvaluationError(_why_not_usable(layout, sid, names))
        outcomes[sid] = got
    layout.make()
    if client is not None:
        outcomes.update(run_graph(client, specs, layout, finished=outcomes))
    for spec in specs:
        if spec.stage_id not in outcomes:
            outcomes[spec.stage_id] = execute_stage(spec, *[outcomes[s] for s in spec.upstream])
        outcome = outcomes[spec.stage_id]
        if not outcome.ok:
            raise EvaluationError(
                f"stage {spec.stage_id} {outcome.status}: "
                f"{outcome.error or 'blocked by ' + str(outcome.blocked_by)} "
                f"(log {layout.log(spec.stage_id)}, traceback "
                f"{layout.traceback(spec.stage_id)})")
    return {s.stage_id: outcomes[s.stage_id] for s in specs}


def _why_not_usable(layout: RunLayout, stage_id: str, names: list[str]) -> str:
    """Why a stage's recorded outputs cannot be read (the file, or the record)."""

    record = read_record(layout, stage_id)
    if record is None or record.status != "complete":
        status = "no record" if record is None else f"status {record.status}"
        return (f"{layout.record(stage_id)}: stage {stage_id} has not completed ({status}); "
                "run the scenario again (`simval run`) to finish it")
    for name in names:
        entry = record.outputs.get(name)
        if entry is not None and not layout.abs(entry.path).is_file():
            return (f"{layout.abs(entry.path)}: output {name!r} of stage {stage_id} is "
                    "missing; run the scenario again (`simval run`) to remake it")
    return (f"{layout.record(stage_id)}: the outputs of stage {stage_id} changed since its "
            "record; run the scenario again (`simval run`) to remake them")


@dataclass(frozen=True)
class EvaluationResult:
    """A run's ``metrics.json`` and its verdicts: the thresholds of
    ``comparison.thresholds``, then the baseline's (if one was given)."""

    run_dir: Path
    metrics_path: Path
    document: MetricsDocument
    verdicts: list[Verdict] = field(default_factory=list)
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True if every verdict passed (and for no verdicts)."""
        return all(v.passed for v in self.verdicts)


def _load_baseline(baseline: str | os.PathLike | MetricsDocument) -> MetricsDocument:
    if isinstance(baseline, MetricsDocument):
        return baseline
    path = Path(baseline)
    if path.is_dir():
        path = RunLayout(path).metrics
    if not path.is_file():
        raise FileNotFoundError(f"{path}: baseline metrics.json not found")
    return read_metrics(path)


def evaluate_run(run_dir: str | os.PathLike | RunLayout, *,
                 baseline: str | os.PathLike | MetricsDocument | None = None,
                 tolerances: Mapping[str, Tolerance] | None = None,
                 catalog_options: Mapping[str, Any] | None = None) -> EvaluationResult:
    """:func:`ensure_evaluated`, then read ``metrics.json`` and apply the scenario's
    thresholds and, if given, a baseline run's metrics (``tolerances`` per metric)."""

    layout = run_dir if isinstance(run_dir, RunLayout) else RunLayout(Path(run_dir))
    outcomes = ensure_evaluated(layout, catalog_options=catalog_options)
    doc = read_metrics(layout.metrics)
    comparison = comparison_of(load_plan(layout).scenario)
    verdicts: list[Verdict] = []
    if comparison is not None and comparison.thresholds:
        verdicts += evaluate_thresholds(doc, comparison)
    if baseline is not None:
        verdicts += compare_to_baseline(doc, _load_baseline(baseline), tolerances=tolerances)
    return EvaluationResult(layout.root, layout.metrics, doc, verdicts, outcomes)
