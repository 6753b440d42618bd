"""The ``simval`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import sys
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from simval import offline
from simval.atomic import write_text
from simval.catalogs.cli import add_catalog_parser
from simval.compare.cli import add_compare_parser
from simval.console import UsageError, console, err_console
from simval.cost import cost_rows, estimate, format_duration
from simval.digest import sha256_file
from simval.envs.cli import add_env_parser
from simval.envs.create import dir_size
from simval.kit.build import KitBuildError, build_kit
from simval.kit.derive import KNOBS, Changes, derive_context
from simval.kit.detectors import DETECTORS
from simval.kit.layout import KitLayout
from simval.kit.registry import Registry
from simval.kit.spec import DEFAULT_SEED, KIT_VERSION, DarkNeed, KitSpec
from simval.manifest_schema import Manifest
from simval.metrics_schema import check_metric_names, metrics_json_schema
from simval.plan import make_plan, plan_adapter, plan_table
from simval.report import print_verdicts, report_main, write_report
from simval.report.rundir import load_run
from simval.run import RunSetupError, default_run_dir, run_scenario
from simval.run.cluster import cluster_options
from simval.run.evaluation import EvaluationError, ensure_evaluated, evaluate_run
from simval.run.progress import summary_tables
from simval.run.records import StageRecord
from simval.scenario import ScenarioError, load_scenario, scenario_hash, scenario_json_schema
from simval.scenario.sweep import sweep_keys
from simval.sweep import (
    SweepError,
    run_fault_panel,
    run_sweep,
    sweep_markdown,
    write_sweep_figure,
)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _dark_needs(values: list[str]):
    needs = []
    for v in values:
        name, _, n = v.partition(":")
        if not n.isdigit():
            raise UsageError(f"--dark expects SUBARRAY:NFRAMES (e.g. SUB400P:20), got {v!r}")
        needs.append(DarkNeed(name, int(n)))
    return tuple(needs)


def _spec_from_args(args):
    detectors = list(DETECTORS) if args.all_detectors else _csv(args.detectors)
    kwargs = {"detectors": tuple(detectors), "filters": tuple(_csv(args.filters)),
              "seed": DEFAULT_SEED if args.seed is None else args.seed}
    if args.dark:
        kwargs["darks"] = _dark_needs(args.dark)
    try:
        return KitSpec(**kwargs)
    except ValueError as err:
        raise UsageError(str(err)) from err


def _human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _build_table(kit) -> Table:
    reg = Registry.load(kit.layout)
    table = Table(title=f"kit {kit.layout.root}  context {kit.context}")
    for col in ("job", "files", "size", "build time"):
        table.add_column(col, justify="right" if col != "job" else "left")
    total = 0
    for job_id in sorted(reg.jobs):
        job = reg.jobs[job_id]
        size = sum(reg.files[r]["size"] for r in job["outputs"])
        total += size
        t = kit.timings.get(job_id)
        table.add_row(job_id, str(len(job["outputs"])), _human_size(size),
                      f"{t:.1f} s" if t is not None else "cached")
    table.add_row("total", "", _human_size(total), f"{sum(kit.timings.values()):.1f} s")
    return table


def cmd_kit_build(args) -> int:
    from rich.progress import Progress

    spec = _spec_from_args(args)
    t0 = time.perf_counter()
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("building kit", total=None)

        def progress(job_id: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=job_id)

        kit = build_kit(spec, args.kit_dir, workers=args.workers, progress=progress)
    console.print(_build_table(kit))
    console.print(f"built in {time.perf_counter() - t0:.1f} s wall; "
                  f"CRDS_PATH={kit.crds_path} CRDS_CONTEXT={kit.context} "
                  f"MIRAGE_DATA={kit.mirage_data}")
    return 0


def _gain_maps(items: list[str] | None) -> tuple[tuple[str, str, str], ...]:
    """``DETECTOR=FILE`` arguments -> (detector, absolute path, sha256) triples."""
    out = []
    for item in items or []:
        detector, sep, file = item.partition("=")
        path = Path(file).expanduser().resolve()
        if not sep or not detector or not path.is_file():
            raise UsageError(f"--gain-map {item}: expected DETECTOR=FILE with an existing "
                             "FITS file, e.g. NRCB1=my_gain_nrcb1.fits")
        out.append((detector.upper(), str(path), sha256_file(path)))
    return tuple(out)


def cmd_kit_derive(args) -> int:
    layout = KitLayout.for_seed(DEFAULT_SEED if args.seed is None else args.seed,
                                KIT_VERSION, args.kit_dir)
    if not layout.registry.exists():
        raise UsageError(f"no kit at {layout.root}: run `simval kit build` first")
    shift = tuple(float(x) for x in _csv(args.distortion_shift_mas)) if (
        args.distortion_shift_mas) else (0.0, 0.0)
    if len(shift) != 2:
        raise UsageError("--distortion-shift-mas expects DV2,DV3 in mas, e.g. 50,0")
    values = {name: getattr(args, name) for name in KNOBS
              if name not in ("distortion_shift_mas", "gain_map")}
    try:
        changes = Changes(distortion_shift_mas=shift, gain_map=_gain_maps(args.gain_map),
                          **values)
        name = derive_context(layout, args.base, changes)
    except ValueError as err:
        raise UsageError(str(err)) from err
    console.print(f"{name}: {args.base} with {changes.label()}")
    return 0


def cmd_kit_info(args) -> int:
    layout = KitLayout.for_seed(DEFAULT_SEED if args.seed is None else args.seed,
                                KIT_VERSION, args.kit_dir)
    reg = Registry.load(layout)
    if not reg.contexts:
        raise UsageError(f"no kit at {layout.root}: run `simval kit build` first")
    table = Table(title=f"contexts in {layout.crds_path}")
    table.add_column("context")
    table.add_column("base")
    table.add_column("changes")
    table.add_column("references", justify="right")
    for name, ctx in sorted(reg.contexts.items()):
        n = sum(len(v) for v in ctx["entries"].values())
        table.add_row(name, ctx.get("base") or "-", ctx.get("label", "-"), str(n))
    console.print(table)
    if args.verify:
        problems = reg.verify(layout)
        for p in problems:
            err_console.print(f"[red]{p}")
        console.print(f"verified {len(reg.files)} files: {len(problems)} problems")
        return 1 if problems else 0
    return 0


def cmd_scenario_schema(args) -> int:
    import json

    console.print_json(json.dumps(scenario_json_schema()))
    return 0


#: ``simval schema NAME``: the JSON Schema of each document simval writes or reads.
SCHEMAS = {
    "scenario": scenario_json_schema,
    "metrics": metrics_json_schema,
    "record": lambda: StageRecord.model_json_schema(by_alias=True),
    "manifest": lambda: Manifest.model_json_schema(by_alias=True),
    "plan": lambda: plan_adapter().json_schema(),
}


def cmd_schema(args) -> int:
    """``simval schema NAME``: print a JSON Schema generated from its pydantic model."""
    import json

    console.print_json(json.dumps(SCHEMAS[args.name]()))
    return 0


def _load(path: Path):
    try:
        return load_scenario(path)
    except ScenarioError as err:
        raise UsageError(str(err)) from err


def cmd_scenario_check(args) -> int:
    scenario = _load(args.scenario)
    console.print(f"{args.scenario}: valid scenario {scenario.name!r}, "
                  f"hash {scenario_hash(scenario)}")
    return 0


def cmd_plan(args) -> int:
    plan = make_plan(_load(args.scenario))
    if not args.cost or args.json:
        console.print(plan_table(plan))
    if args.json:
        console.print_json(plan.to_json())
    if args.cost:
        console.print(cost_table(plan, args.cores, args.memory_gb))
    return 0


def _memory_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


def cost_table(plan, cores: int, memory_gb: float):
    """The ``simval plan --cost`` table (:mod:`simval.cost`)."""
    from rich.table import Table

    cost = estimate(plan)
    table = Table(title=f"{plan.scenario_name}: {len(plan.exposures)} exposures, "
                        f"{len(plan.products)} mosaics (measured per-stage costs, "
                        "simval.cost)")
    for name in ("stage", "count", "CPU time", "peak memory / stage", "disk"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for row in cost_rows(cost):
        table.add_row(*row)
    table.caption = (f"on {cores} cores and {memory_gb:g} GB: at least "
                     f"{format_duration(cost.wall_hours(cores, memory_gb) * 3600)} of wall "
                     "time; a stage that needs more memory than that cannot run there")
    return table


#: ``simval run`` flags of a cluster -> SlurmOptions fields.
CLUSTER_FLAGS = {"queue": "--queue", "account": "--account", "cores": "--cores",
                 "memory": "--memory", "walltime": "--walltime", "jobs": "--jobs",
                 "job_extra_directives": "--sbatch", "python": "--worker-python",
                 "job_script_prologue": "--prologue", "interface": "--interface"}


def _cluster_from_args(args):
    """The SLURM options of ``simval run`` (``--cluster``, ``--cluster-config`` and the
    flags of :data:`CLUSTER_FLAGS`), or None."""
    values = {field: getattr(args, field) for field in CLUSTER_FLAGS}
    options = cluster_options(args.cluster, args.cluster_config, values, CLUSTER_FLAGS)
    if options is not None and args.scheduler:
        raise UsageError("--scheduler and --cluster/--cluster-config: choose one")
    if options is not None and args.workers is not None:
        raise UsageError("--workers is for the local cluster; on SLURM give --jobs and "
                         "--cores (worker processes per job)")
    return options


def _check_disk(scenario, run_dir: Path) -> None:
    """Refuse a run whose files (``simval plan --cost``, kit darks aside) would not fit in
    the free space where ``run_dir`` lives, counting what a resumed run already wrote."""
    import shutil

    need = sum(k.disk_bytes for k in estimate(make_plan(scenario)).kinds.values())
    have = dir_size(run_dir) if run_dir.exists() else 0
    where = run_dir
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if need - have > free:
        raise UsageError(
            f"{run_dir}: the run needs about {(need - have) / 1e9:.1f} GB more disk "
            f"(simval plan --cost: {need / 1e9:.1f} GB in all, {have / 1e9:.1f} GB already "
            f"there) and {free / 1e9:.1f} GB are free on {where}; free some space, choose "
            "another --output, skip files the scenario does not need (e.g. "
            "pipeline.image2.resample.skip), or pass --no-disk-check")


def cmd_run(args) -> int:
    """``simval run``: exit 0 only if every stage completed."""

    scenario = _load(args.scenario)
    if scenario.sweep or scenario.crds.contexts:
        what = ", ".join([*sweep_keys(scenario.sweep),
                          *(["crds.contexts"] if scenario.crds.contexts else [])])
        raise UsageError(f"{args.scenario} defines a sweep over {what}: run it with "
                         "`simval sweep`")
    if scenario.faults:
        raise UsageError(f"{args.scenario} defines a fault panel ({len(scenario.faults)} "
                         "faults): run it with `simval panel`")
    run_dir = args.output or default_run_dir(scenario.name)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if not args.no_disk_check and args.scheduler is None:
        _check_disk(scenario, Path(run_dir))
    try:
        cluster = _cluster_from_args(args)
        result = run_scenario(args.scenario, run_dir, workers=args.workers,
                              scheduler=args.scheduler, kit_dir=args.kit_dir,
                              progress=True, console=err_console,
                              reuse_simulation=args.reuse_simulation, cluster=cluster)
    except RunSetupError as err:
        raise UsageError(str(err)) from err
    except KeyboardInterrupt:
        err_console.print(f"[bold red]interrupted[/]: run the same command again to resume "
                          f"(completed stages are kept in {run_dir})")
        return 130
    import json

    doc = json.loads(result.manifest.read_text())
    for table in summary_tables(doc):
        console.print(table)
    if result.ok:
        console.print(f"[bold green]run complete[/] in {result.wall_s:.1f} s: "
                      f"{result.run_dir}  (manifest {result.manifest})")
        return _evaluate_and_report(result.run_dir)
    for line in Manifest.model_validate(doc).failure_lines(result.run_dir):
        err_console.print(f"[bold red]{escape(line)}[/]")
    if doc["blocked_stages"]:
        err_console.print("fix it and run the same command again to resume")
    err_console.print(f"[bold red]run failed[/] (manifest {result.manifest})")
    return 1


def cmd_sweep(args) -> int:
    """``simval sweep``: every variant of the scenario's sweep on one simulation."""

    scenario = _load(args.scenario)
    if not scenario.sweep and not scenario.crds.contexts:
        raise UsageError(f"{args.scenario}: no `sweep` block or `crds.contexts`; add e.g. "
                         "sweep: {image3.skymatch.skymethod: [local, global, match]}")
    out = args.output or Path("runs") / f"{scenario.name}-sweep"
    metrics = _csv(args.metrics) if args.metrics else []
    try:
        check_metric_names(metrics)
    except KeyError as err:
        raise UsageError(f"--metrics: {err}") from err
    try:
        result = run_sweep(args.scenario, out, workers=args.workers,
                           scheduler=args.scheduler, kit_dir=args.kit_dir,
                           reuse_simulation=args.reuse_simulation)
    except (SweepError, RunSetupError, ScenarioError) as err:
        raise UsageError(str(err)) from err
    import json

    doc = json.loads(result.summary.read_text())
    columns = ({m: m for m in metrics} if metrics else
               CORON_SWEEP_COLUMNS if scenario.coronagraphy is not None else SWEEP_COLUMNS)
    table = Table(title=f"sweep {scenario.name}: {', '.join(doc['keys'])}")
    table.add_column("variant", overflow="fold")
    table.add_column("filter")
    for header in columns.values():
        table.add_column(header, justify="right")
    for row in doc["variants"]:
        label = row["label"] if row["status"] == "complete" else f"{row['label']} (FAILED)"
        for band, values in (row["metrics"] or {"-": {}}).items():
            cells = [_fmt(values.get(k)) for k in columns]
            table.add_row(label, band, *cells)
    console.print(table)
    md = write_text(out / "sweep.md", sweep_markdown(doc, list(columns)))
    thresholds = {m: {k: b.model_dump() for k, b in per.items()}
                  for m, per in scenario.comparison.thresholds.items()}
    png = write_sweep_figure(doc, list(columns), out / "sweep.png", thresholds)
    console.print(f"summary: {result.summary}; table: {md}; figure: {png}")
    if doc.get("comparison"):
        console.print(f"comparison with the first variant: {out / doc['comparison']}")
    if result.failed:
        err_console.print(f"[bold red]failed variants:[/] {', '.join(result.failed)}")
        return 1
    return 0


def cmd_panel(args) -> int:
    """``simval panel``: the scenario's faults on one simulation, plus clean seeds; exit 1
    if a fault is missed, a clean seed raises a false alarm or a run failed."""

    scenario = _load(args.scenario)
    if not scenario.faults:
        raise UsageError(f"{args.scenario}: no `faults` block; add e.g. faults: [{{name: "
                         "'gain x1.05', set: {crds.kit.derive.gain_scale: 1.05}, expect: "
                         "[err_ratio_nmad_drizzle]}]")
    if args.clean_seeds < 0:
        raise UsageError(f"--clean-seeds must be >= 0, got {args.clean_seeds}")
    out = args.output or Path("runs") / f"{scenario.name}-panel"
    try:
        result = run_fault_panel(args.scenario, out, clean_seeds=args.clean_seeds,
                                 workers=args.workers, scheduler=args.scheduler,
                                 kit_dir=args.kit_dir, reuse_simulation=args.reuse_simulation)
    except (SweepError, RunSetupError, ScenarioError) as err:
        raise UsageError(str(err)) from err
    import json

    doc = json.loads(result.summary.read_text())
    panel = doc.get("panel")
    if panel is None:
        err_console.print(f"[bold red]the clean calibration failed[/]: {result.summary}")
        return 1
    table = Table(title=f"fault panel {scenario.name}")
    for header in ("fault", "expected metric(s)", "verdict", "flagged by"):
        table.add_column(header, overflow="fold")
    for f in panel["faults"]:
        table.add_row(f["name"], ", ".join(f["expect"]) or "none (benign)",
                      f"[green]{f['verdict']}[/]" if f["caught"]
                      else f"[bold red]{f['verdict']}[/]", ", ".join(f["flagged_by"]))
    console.print(table)
    alarms = panel["false_alarms"]
    if panel["clean_seeds"]:
        console.print(f"clean seeds: {len(panel['clean_seeds'])}, false alarms: {len(alarms)}")
    console.print(f"table: {result.table}  summary: {result.summary}")
    missed = [f["name"] for f in panel["faults"] if not f["caught"]]
    if missed:
        err_console.print(f"[bold red]missed (or flagged although benign):[/] "
                          f"{', '.join(missed)}")
    if result.failed:
        err_console.print(f"[bold red]failed variants:[/] {', '.join(result.failed)}")
    return 1 if missed or alarms or result.failed else 0


#: Headline metrics printed by ``simval sweep`` (all are in sweep.json).
SWEEP_COLUMNS = {"bkg_residual_frac": "bkg resid", "skymatch_error_max_frac": "sky err",
                 "phot_bias_bright_star_mag": "Δm bright", "completeness_snr20": "compl>20",
                 "astrom_rms_bright_star_mas": "rms mas"}


#: ... and for a coronagraphy scenario.
CORON_SWEEP_COLUMNS = {"companion_flux_ratio_worst": "flux ratio",
                       "companion_snr_min": "S/N min", "contrast_0p5_arcsec": 'C 0.5"',
                       "contrast_1_arcsec": 'C 1"', "contrast_2_arcsec": 'C 2"',
                       "klip_gain_1_arcsec": 'KLIP gain 1"'}


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) >= 1 or 0 < abs(value) < 0.01 else f"{value:+.3f}"


def _evaluate_and_report(run_dir: Path) -> int:
    """Verdict table and report.html of a finished run (its graph evaluated it; anything
    missing is evaluated now). Returns 0 if every verdict passed, 1 otherwise."""

    evaluation = evaluate_run(run_dir)
    print_verdicts(evaluation.verdicts, console)
    report = write_report(run_dir, verdicts=evaluation.verdicts)
    console.print(f"metrics: {evaluation.metrics_path}  report: {report}")
    return 0 if evaluation.passed else 1


def cmd_report(args) -> int:
    """``simval report RUN_DIR``: make sure the run is evaluated, write report.html."""

    root = Path(args.run_dir).expanduser()
    if root.is_dir() and load_run(root).status == "complete":
        try:
            with err_console.status(f"evaluating {root}"):
                ensure_evaluated(root)
        except (EvaluationError, FileNotFoundError) as exc:
            err_console.print(f"[red]evaluation failed: {exc}[/]")
    return report_main(root, console=console)


def _kit_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kit-dir", type=Path, default=None,
                   help="parent directory of kits (default: $SIMVAL_KIT_DIR or the user "
                        "cache dir)")
    p.add_argument("--seed", type=int, default=None, help="kit seed (default: %(default)s)")


def _variant_arguments(parser: argparse.ArgumentParser, kind: str, reused: str) -> None:
    """Arguments of the commands that run several variants of one scenario."""
    parser.add_argument("scenario", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="OUT",
                        help=f"directory of the variants' runs (default: runs/<name>-{kind})")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS")
    parser.add_argument("--kit-dir", type=Path, default=None)
    parser.add_argument("--reuse-simulation", type=Path, default=None, metavar="RUN",
                        help=f"take {reused} from RUN (where they match)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sc = sub.add_parser("scenario", help="scenario files")
    sc_sub = sc.add_subparsers(dest="scenario_command", required=True)
    sch = sub.add_parser("schema", help="print the JSON Schema of a document simval reads or "
                                        "writes (from its pydantic model)")
    sch.add_argument("name", choices=sorted(SCHEMAS),
                     help="scenario YAML, plan.json, metrics.json, manifest.json, or a "
                          "stage record stages/<id>.json")
    sch.set_defaults(func=cmd_schema)
    s_schema = sc_sub.add_parser("schema", help="print the scenario JSON schema")
    s_schema.set_defaults(func=cmd_scenario_schema)
    s_check = sc_sub.add_parser("check", help="validate a scenario file")
    s_check.add_argument("scenario", type=Path)
    s_check.set_defaults(func=cmd_scenario_check)

    pl = sub.add_parser("plan", help="the exposures and mosaics a scenario makes")
    pl.add_argument("scenario", type=Path)
    pl.add_argument("--json", action="store_true", help="also print the plan as JSON")
    pl.add_argument("--cost", action="store_true",
                    help="print the CPU hours, peak memory per stage and disk the measured "
                         "per-stage costs predict")
    pl.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                    help="cores of the machine for the --cost wall time (default: this one's)")
    pl.add_argument("--memory-gb", type=float, default=_memory_gb(),
                    help="memory for the --cost wall time (default: this machine's)")
    pl.set_defaults(func=cmd_plan)

    run = sub.add_parser(
        "run", help="simulate and calibrate a scenario (resumes an earlier run in RUN_DIR)",
        description="Simulate a scenario (NIRCam imaging with MIRAGE; MIRI imaging and NIRCam "
                    "coronagraphy with simval's own simulators) and calibrate it with the "
                    "JWST pipeline (detector1, image2, image3 per filter; image2 and coron3 "
                    "for coronagraphy), offline, in parallel with Dask. "
                    "Running the same command again resumes: completed stages are reused. "
                    "With --scheduler, the workers must see RUN_DIR and the kit directory "
                    "at the same paths (a shared file system).")
    run.add_argument("scenario", type=Path)
    run.add_argument("-o", "--output", type=Path, default=None, metavar="RUN_DIR",
                     help="run directory (default: runs/<scenario name>)")
    run.add_argument("--workers", type=int, default=None,
                     help="local Dask worker processes (default: as many as the CPUs, fewer "
                          "when the stages' declared memory does not fit)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="connect to an existing Dask scheduler, e.g. tcp://host:8786")
    cl = run.add_argument_group(
        "cluster", "run the stages on SLURM workers started for this run (dask-jobqueue); "
                   "the flags override --cluster-config, whose YAML keys are the same "
                   "names (README: Running on a cluster)")
    cl.add_argument("--cluster", choices=["slurm"], default=None,
                    help="start workers as SLURM batch jobs")
    cl.add_argument("--cluster-config", type=Path, default=None, metavar="FILE",
                    help="cluster YAML: kind, queue, account, cores, memory, walltime, "
                         "jobs, job_extra_directives, python, job_script_prologue, "
                         "interface, log_directory, local_directory, worker_start_timeout_s")
    cl.add_argument("--queue", default=None, metavar="PARTITION", help="#SBATCH -p")
    cl.add_argument("--account", default=None, help="#SBATCH -A")
    cl.add_argument("--cores", type=int, default=None,
                    help="cores per job = single-threaded worker processes per job "
                         "(default 1)")
    cl.add_argument("--memory", default=None, metavar="SIZE",
                    help="memory per job, e.g. 16GB (default: cores x the run's largest "
                         "stage declaration)")
    cl.add_argument("--walltime", default=None, metavar="HH:MM:SS",
                    help="per job (default 01:00:00)")
    cl.add_argument("--jobs", type=int, default=None, help="number of jobs (default 1)")
    cl.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                    dest="job_extra_directives",
                    help="an extra #SBATCH directive, e.g. --sbatch=--qos=normal "
                         "(repeatable)")
    cl.add_argument("--worker-python", dest="python", default=None, metavar="PYTHON",
                    help="python of the workers (default: this one)")
    cl.add_argument("--prologue", action="append", default=[], metavar="COMMAND",
                    dest="job_script_prologue",
                    help="a job-script line before the worker starts, e.g. "
                         "'source /shared/venv/bin/activate' (repeatable)")
    cl.add_argument("--interface", default=None,
                    help="network interface of scheduler and workers (default lo: one "
                         "node; e.g. ib0 or eth0 across nodes)")
    run.add_argument("--kit-dir", type=Path, default=None,
                     help="parent directory of kits (default: $SIMVAL_KIT_DIR or the user "
                          "cache dir)")
    run.add_argument("--no-disk-check", action="store_true",
                     help="start even if the free disk is below the plan's estimate "
                          "(simval plan --cost)")
    run.add_argument("--reuse-simulation", type=Path, default=None, metavar="RUN",
                     help="adopt RUN's catalog and simulated exposures where they match "
                          "(checked by fingerprint and sha256) and only calibrate: the same "
                          "raw data with another CRDS context, pipeline or parameters")
    run.set_defaults(func=cmd_run)

    sw = sub.add_parser(
        "sweep", help="calibrate one simulation with every combination of the scenario's "
                      "`sweep` values (pipeline parameters, CRDS contexts)",
        description="Run the first variant of the scenario's sweep in full and every other "
                    "one on the same simulated exposures (reuse_simulation), evaluate each, "
                    "and write OUT/sweep.json with every metric per variant and filter.")
    _variant_arguments(sw, "sweep", "the simulated exposures")
    sw.add_argument("--metrics", default=None, metavar="M1,M2",
                    help="metrics of the printed table and OUT/sweep.md (registry names; "
                         "default: " + ", ".join(SWEEP_COLUMNS) + "; coronagraphy: "
                         + ", ".join(CORON_SWEEP_COLUMNS) + ")")
    sw.set_defaults(func=cmd_sweep)

    pa = sub.add_parser(
        "panel", help="calibrate one simulation with each of the scenario's `faults` and "
                      "say which metric flags which fault",
        description="Run the scenario clean, then once per fault on the same simulated "
                    "exposures, and --clean-seeds clean simulations with other seeds; write "
                    "OUT/panel.json and OUT/panel.md (the fault x metric table, the false "
                    "alarms). Exit 1 if a fault is missed or a clean seed fails a threshold.")
    _variant_arguments(pa, "panel", "the clean simulation's exposures")
    pa.add_argument("--clean-seeds", type=int, default=0, metavar="N",
                    help="clean simulations with seeds seed+1..seed+N (default 0)")
    pa.set_defaults(func=cmd_panel)

    rep = sub.add_parser("report", help="evaluate a finished run (if needed) and write "
                                        "report.html; exit 1 if a verdict fails")
    rep.add_argument("run_dir", type=Path)
    rep.set_defaults(func=cmd_report)
    add_catalog_parser(sub)
    add_compare_parser(sub)

    kit = sub.add_parser("kit", help="the offline synthetic instrument (CRDS cache + "
                                     "MIRAGE_DATA)")
    kit_sub = kit.add_subparsers(dest="kit_command", required=True)

    b = kit_sub.add_parser("build", help="build what is missing for detectors x filters")
    _kit_common(b)
    b.add_argument("--detectors", default="NRCB1", help="comma-separated, e.g. NRCB1,NRCB5")
    b.add_argument("--all-detectors", action="store_true", help="all ten NIRCam detectors")
    b.add_argument("--filters", default="F115W,F150W", help="comma-separated NIRCam filters")
    b.add_argument("--dark", action="append", metavar="SUBARRAY:NFRAMES",
                   help="dark readout to provide (repeatable; default SUB400P:20)")
    b.add_argument("--workers", type=int, default=None, help="processes (default: 2)")
    b.set_defaults(func=cmd_kit_build)

    d = kit_sub.add_parser("derive", help="a context differing from a base in named "
                                          "references")
    _kit_common(d)
    d.add_argument("--base", required=True, help="base context, e.g. jwst_0001.pmap")
    for field in dataclasses.fields(Changes):
        flag, knob = f"--{field.name.replace('_', '-')}", KNOBS[field.name]
        if field.name == "distortion_shift_mas":
            d.add_argument(flag, default=None, metavar="DV2,DV3",
                           help="shift the distortion output by (dV2, dV3) mas")
        elif field.name == "gain_map":
            d.add_argument(flag, action="append", default=None, metavar="DETECTOR=FILE",
                           help="calibrate DETECTOR with your gain map (FITS, e-/DN, full "
                                "frame; repeatable)")
        elif isinstance(knob.neutral, bool):
            d.add_argument(flag, action="store_true", help=knob.describe(True))
        else:
            d.add_argument(flag, type=float, default=knob.neutral, metavar="X",
                           help=f"{knob.reftype} reference: {field.name.replace('_', ' ')} "
                                f"(neutral {knob.neutral:g})")
    d.set_defaults(func=cmd_kit_derive)

    i = kit_sub.add_parser("info", help="list the kit's contexts")
    _kit_common(i)
    i.add_argument("--verify", action="store_true", help="re-hash every file")
    i.set_defaults(func=cmd_kit_info)

    add_env_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``simval`` command; returns the exit code."""

    offline.configure()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}")
        return 2
    except PermissionError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}")
        return 2
    except RuntimeError as err:
        if not isinstance(err, KitBuildError):
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(err))}")
        return 1
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        err_console.print(f"[bold red]error:[/] no space left on the device{escape(where)}. "
                          "Stages that completed are kept with their records; free some "
                          "space (`simval plan --cost` says what a run needs) and run the "
                          "same command again to resume.")
        return 1


if __name__ == "__main__":
    sys.exit(main())
