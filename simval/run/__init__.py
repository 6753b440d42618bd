"""Run a scenario: plan -> kit -> per exposure MIRAGE, Detector1, Image2 -> per filter Image3
-> per filter truth and evaluation -> ``metrics.json``.

Public API
----------
:func:`run_scenario` (scenario file or :class:`~simval.scenario.Scenario`, run directory
-> :class:`RunResult`), :class:`RunSetupError` (the scenario cannot be run as asked),
:func:`ensure_evaluated` and :func:`evaluate_run` (:mod:`~simval.run.evaluation`: bring a
finished run's evaluation up to date; its verdicts).

Modules: :mod:`~simval.layout` (the run directory), :mod:`~simval.run.records` (stage
records and the resume rule), :mod:`~simval.run.stages` (the stage functions),
:mod:`~simval.run.graph` (scenario -> stages), :mod:`~simval.run.executor` (Dask),
:mod:`~simval.run.manifest`, :mod:`~simval.run.progress`, :mod:`~simval.run.resources`
(measured time and memory), :mod:`~simval.run.stage_memory` (declared memory),
:mod:`~simval.run.cluster` (SLURM).

A run is resumable: the same call again reuses every stage whose record is complete and
whose inputs, parameters and outputs are unchanged, and runs the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simval import offline
from simval.atomic import atomic_path, write_text
from simval.envs.runner import env_record
from simval.kit.build import build_kit
from simval.kit.layout import default_kit_parent
from simval.layout import RunLayout
from simval.plan import make_plan
from simval.run import coron_graph, executor, graph, manifest
from simval.run.cluster import SlurmOptions
from simval.run.evaluation import EvaluationError, EvaluationResult, ensure_evaluated, evaluate_run
from simval.run.graph import RunSetupError
from simval.run.manifest import software_versions
from simval.run.progress import RunProgress
from simval.run.records import (
    CACHED,
    COMPLETE,
    FAILED,
    StageOutcome,
    StageSpec,
    fingerprint,
    now_utc,
    read_record,
    record_complete,
    record_failure,
    stage_output,
)
from simval.run.resources import measure
from simval.run.reuse import ReuseError, adopt_simulation
from simval.run.stage_memory import MemoryProfile, declared_memory
from simval.scenario import Scenario, load_scenario, normalised

if TYPE_CHECKING:
    from rich.console import Console

    from simval.kit.build import Kit
    from simval.plan import Plan
    from simval.scenario import Scenario

__all__ = ["EvaluationError", "EvaluationResult", "ProductFiles", "RunResult", "RunSetupError",
           "SlurmOptions", "default_run_dir", "ensure_evaluated", "evaluate_run",
           "run_scenario"]


@dataclass(frozen=True)
class ProductFiles:
    """One mosaic of a run: ``name``, ``filter_name`` and its files (absolute paths)."""

    name: str
    filter_name: str
    i2d: Path
    catalog: Path | None
    asn: Path


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_scenario` did.

    status : ``complete`` or ``failed``. products : filter -> :class:`ProductFiles` (the
    mosaics that were made). manifest : path of ``manifest.json``. outcomes : stage id ->
    :class:`~simval.run.records.StageOutcome`. wall_s : wall time of the call, s.
    """

    status: str
    run_dir: Path
    manifest: Path
    products: dict[str, ProductFiles] = field(default_factory=dict)
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == COMPLETE

    @property
    def failed(self) -> list[StageOutcome]:
        """Stages that failed (not those blocked by them)."""
        return [o for o in self.outcomes.values() if o.status == FAILED]


def default_run_dir(scenario_name: str) -> Path:
    """``runs/<scenario name>`` under the current directory."""
    return Path("runs") / scenario_name


def _load(path_or_scenario: str | os.PathLike | Scenario) -> tuple[Scenario, Path | None]:
    if isinstance(path_or_scenario, Scenario):
        return path_or_scenario, None
    return load_scenario(path_or_scenario), Path(path_or_scenario)


def _write_inputs(layout: RunLayout, scenario: Scenario, source: Path | None,
                  plan: Plan) -> None:
    """scenario.yaml (a byte copy of the file, or the normalised scenario) and plan.json."""
    import yaml

    if source is not None:
        with atomic_path(layout.scenario) as tmp:
            shutil.copyfile(source, tmp)
    else:
        write_text(layout.scenario, "# normalised scenario (given as an object)\n"
                   + yaml.safe_dump(normalised(scenario), sort_keys=False))
    text = plan.to_json()
    if not layout.plan.is_file() or layout.plan.read_text() != text:
        write_text(layout.plan, text)


def _kit_stage(plan: Plan, layout: RunLayout, kit_dir: str | os.PathLike | None,
               run_id: str, note) -> tuple[Kit | None, StageOutcome, dict[str, Any]]:
    """Build (or reuse) the kit on the client, before any worker starts; keep its record.

    The kit's own registry decides what to build, so ``build_kit`` always runs (it only
    checks when nothing is missing). The record is rewritten only when the kit changed.
    """
    import traceback

    spec = plan.kit_spec()
    parent = Path(kit_dir).expanduser() if kit_dir is not None else default_kit_parent()
    params = {"spec": spec.to_dict(), "kit_dir": str(parent.absolute())}
    log = layout.log("kit")
    record_spec = StageSpec("kit", "kit", str(layout.root), params=params, run_id=run_id)

    def progress(job_id: str, done: int, total: int) -> None:
        note(f"building kit: {done}/{total} {job_id}")

    started = now_utc()
    try:
        with measure() as usage, stage_output(log):
            kit = build_kit(spec, parent, progress=progress)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        write_text(layout.traceback("kit"), "".join(traceback.format_exception(exc)))
        record_failure(record_spec, layout, error, layout.traceback("kit"), started=started)
        if isinstance(exc, PermissionError):  # an unwritable kit directory: a user error
            raise RunSetupError(str(exc)) from exc
        return None, StageOutcome("kit", "kit", FAILED, error=error), {}
    finally:
        note("")
    info = {"root": str(kit.layout.root), "seed": spec.seed, "version": spec.version,
            "context": kit.context, "jobs_built": sorted(kit.timings),
            "build_wall_s": round(usage.wall_s, 2),
            "content_sha256": kit.content_sha256()}
    # this spec's references only: another scenario growing the same kit leaves it unchanged
    fp = fingerprint("kit", {**params, "root": info["root"], "context": kit.context,
                             "content_sha256": info["content_sha256"]}, {})
    old = read_record(layout, "kit")
    if old is not None and old.status == COMPLETE and old.fingerprint == fp:
        outcome = StageOutcome("kit", "kit", CACHED, info=old.info, wall_s=old.wall_s,
                               peak_rss_mb=old.peak_rss_mb, run_wall_s=usage.wall_s)
        return kit, outcome, {**info, "jobs_built": []}
    record_complete(replace(record_spec, crds_context=kit.context), layout, inputs={},
                    fp=fp, started=started, usage=usage, outputs={}, info=info)
    status = COMPLETE if kit.timings else CACHED
    return kit, StageOutcome("kit", "kit", status, info=info, wall_s=usage.wall_s,
                             peak_rss_mb=usage.peak_rss_mb, run_wall_s=usage.wall_s), info


def _crds_info(scenario: Scenario, env: dict[str, str]) -> dict[str, Any]:
    kind = "kit" if scenario.crds.kit is not None else "real"
    return {"kind": kind, "context": env.get("CRDS_CONTEXT"), "path": env.get("CRDS_PATH")}


def run_scenario(path_or_scenario: str | os.PathLike | Scenario,
                 run_dir: str | os.PathLike, *, workers: int | None = None,
                 scheduler: str | None = None, kit_dir: str | os.PathLike | None = None,
                 progress: bool = False, console: Console | None = None,
                 reuse_simulation: str | os.PathLike | None = None,
                 cluster: SlurmOptions | None = None) -> RunResult:
    """Run a scenario into ``run_dir`` (resuming what an earlier run there completed).

    Parameters
    ----------
    path_or_scenario : a scenario YAML file or a validated Scenario.
    run_dir : the run directory (created; see :mod:`simval.layout`).
    workers : Dask worker processes of the local cluster (default: as many as the CPUs
        and the stages' memory declarations allow, :func:`simval.run.executor.worker_shares`).
        Ignored with ``scheduler`` or ``cluster``.
    scheduler : address of an existing Dask scheduler (its workers must share the run
        directory and kit paths).
    cluster : run on SLURM workers started for this run (:mod:`simval.run.cluster`; the
        same sharing applies). Ignored with ``scheduler``.
    kit_dir : parent directory of kits (default ``$SIMVAL_KIT_DIR`` or the user cache).
    progress : show the live progress table on ``console`` (default: stderr).
    reuse_simulation : another run directory whose catalog and simulated exposures this run
        adopts when they match what it would make (:mod:`simval.run.reuse`): the same raw
        data calibrated again with another context, pipeline or parameters.

    Raises :class:`~simval.scenario.ScenarioError` for an invalid scenario and
    :class:`RunSetupError` for one that cannot run; a failing *stage* does not raise: the
    result's ``status`` is ``failed`` and ``manifest.json`` names the stage.
    """
    from rich.console import Console

    t0 = time.perf_counter()
    started = manifest.now_utc()
    offline.configure()
    scenario, source = _load(path_or_scenario)
    graph.check_supported(scenario)
    plan = make_plan(scenario)
    layout = RunLayout(Path(run_dir))
    layout.make()
    _write_inputs(layout, scenario, source, plan)
    reused: dict[str, Any] = {}
    if reuse_simulation is not None:
        try:
            reused = adopt_simulation(reuse_simulation, layout)
        except ReuseError as exc:
            raise RunSetupError(f"reuse_simulation: {exc}") from exc
    run_id = uuid.uuid4().hex[:12]
    console = console or Console(file=sys.stderr)
    display = RunProgress(plan, layout, run_id, console=console, enabled=progress)
    outcomes: dict[str, StageOutcome] = {}
    kit_info: dict[str, Any] = {}
    crds: dict[str, Any] = {}
    execution: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    workers_seen: dict[str, Any] = {}
    interrupted = False
    error: list[str] = []

    def finish() -> RunResult:
        doc = manifest.build_manifest(
            layout=layout, plan=plan, scenario_source=str(source or scenario.source),
            outcomes=outcomes, kit_info=kit_info, crds=crds, execution=execution,
            pipeline=json.loads(json.dumps(scenario.pipeline)),
            background_recipe=scenario.background_recipe, started_utc=started,
            wall_s=time.perf_counter() - t0, worker_versions=versions,
            interrupted=interrupted, error=error[0] if error else None)
        if scenario.environment:  # the calibration's own jwst, crds, stcal, ...

            record = env_record(scenario.environment)
            doc["environment"] = {"name": record.name, "python": record.python,
                                  "versions": dict(record.versions)}
        if workers_seen:
            doc["workers"] = workers_seen
        if reused:
            doc["simulation_reused_from"] = {
                "run": reused["run"], "offered": len(reused["stages"]),
                "reused": sorted(s for s in reused["stages"]
                                 if s in outcomes and outcomes[s].status == CACHED),
                "rerun": sorted(s for s in reused["stages"]
                                if s in outcomes and outcomes[s].status != CACHED)}
        manifest.write_manifest(layout, doc)
        return _result(doc, layout, outcomes, time.perf_counter() - t0)

    try:
        with display:
            kit, kit_outcome, kit_info = _kit_stage(plan, layout, kit_dir, run_id,
                                                    display.note)
            outcomes["kit"] = kit_outcome
            display.done(kit_outcome)
            if kit is None:
                return finish()
            build = (coron_graph.build_coron_specs if plan.coronagraphy is not None
                     else graph.build_specs)
            specs = build(plan, scenario, kit, layout, run_id)
            crds = _crds_info(scenario, graph.crds_env(scenario, kit))
            memory = declared_memory(specs)
            largest = max(memory, key=memory.__getitem__)
            profile = MemoryProfile.of(specs, memory)
            display.note("starting Dask workers" if cluster is None or scheduler else
                         f"submitting {cluster.jobs} SLURM job(s), waiting for a worker")
            with executor.dask_client(workers, scheduler, cluster=cluster,
                                      memory=profile,
                                      log_directory=layout.root / "logs" / "slurm"
                                      ) as (client, how):
                execution = {**how.as_dict(), "largest_declared_stage": largest,
                             "largest_declared_mb": round(memory[largest] / 2**20)}
                display.note("")
                outcomes.update(executor.run_graph(client, specs, layout, display.done,
                                                   display.poll, memory=memory))
                versions = _differing(executor.worker_versions(client))
                workers_seen = executor.worker_processes(client)
    except KeyboardInterrupt:
        interrupted = True
        finish()
        raise
    except Exception as exc:  # a bug or a setup error: still say so in the manifest
        error.append(f"{type(exc).__name__}: {exc}")
        finish()
        raise
    finally:
        if progress and not console.is_terminal:
            console.line()
    return finish()


def _differing(per_worker: dict[str, Any]) -> dict[str, Any]:
    """Worker versions that differ from this process's (empty when all agree)."""

    mine = software_versions()
    return {w: v for w, v in per_worker.items() if v != mine}


def _result(doc: dict[str, Any], layout: RunLayout, outcomes: dict[str, StageOutcome],
            wall_s: float) -> RunResult:
    products = {band: ProductFiles(p["name"], band, layout.abs(p["i2d"]),
                                   layout.abs(p["catalog"]) if p.get("catalog") else None,
                                   layout.abs(p["asn"]))
                for band, p in doc["products"].items()}
    return RunResult(doc["status"], layout.root, layout.manifest, products, dict(outcomes),
                     wall_s)
