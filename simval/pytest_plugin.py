"""pytest plugin: every (scenario, filter, metric) threshold of a scenario is a test item.

Registered through the ``pytest11`` entry point ``simval``. Without its options it adds
nothing to a test session (it only declares the options).

Usage
-----
``pytest --simval scenarios/``
    Run every scenario (a ``.yaml``/``.yml`` file, or a directory of them) with
    :func:`simval.run.run_scenario` into ``<run root>/<scenario name>`` (resuming what an
    earlier run there completed), evaluate it with :func:`simval.run.evaluate_run`
    (which writes ``metrics.json``), write ``report.html``, and judge every threshold of
    the scenario's ``comparison.thresholds``.
``pytest --simval-run runs/quickstart``
    Judge finished runs (a run directory, or a directory of run directories) without
    running anything: the verdicts are recomputed from ``metrics.json`` and the run's
    thresholds (``plan.json``); a run without ``metrics.json`` is evaluated first.

``pytest --simval-compare RUN_A RUN_B [RUN_C ...] --simval-tolerance metric=VALUE``
    Compare finished runs (:mod:`simval.compare`): every run against the first, one item
    per (filter, metric) given a tolerance, failing when ``|B - A|`` exceeds it (the
    message gives both values, the difference with its bootstrap uncertainty and the
    tolerance). ``--simval-tolerance`` is repeatable; ``--simval-fail-on-flux-ratio X``
    adds an item ``<FILTER>::flux_ratio`` per filter (|median flux ratio B/A - 1| <= X,
    sources with S/N > 20 in A); ``--simval-compare-output DIR`` also writes
    ``compare.html``/``compare.json`` there (one subdirectory per group of runs). Item ids
    are ``<A>_vs_<B>::<FILTER>::<metric>`` (directory names). Bad runs (not a run, no
    metrics.json, different filters) are a usage error.

Other options: ``--simval-run-root DIR`` (where ``--simval`` runs go; default ``./runs``
under the invocation directory, so that a second session resumes the first one's stages
and the report stays where the user can open it), ``--simval-kit-dir DIR`` (parent of
the synthetic kits; default as ``simval run``: ``$SIMVAL_KIT_DIR`` or the user cache),
``--simval-workers N`` (Dask workers of each run), ``--simval-no-report`` (do not write
``report.html``).

Items and collection
--------------------
Item ids are ``<scenario>::<FILTER>::<metric>`` (e.g.
``quickstart::F115W::phot_bias_bright_star_mag``), one per (filter, metric) a threshold
applies to (a threshold for ``all`` filters expands to every filter of the scenario). The
ids come from the scenario file alone, so **collection never runs the pipeline**: the
scenario runs once per session, lazily, in the first of its items that executes (under
``-k`` too), and the outcome is cached for the others. A failing threshold fails its item
with the measured value, the limit and the sample size. A run that does not complete
(``RunResult.status != "complete"``), or whose evaluation raises, fails that first item
with the stage error (and where its log is); the scenario's other items are skipped,
pointing at it. A scenario without thresholds gives one item ``<scenario>::run`` that
passes when the run completes and evaluates. For ``--simval-run``, a run whose
``manifest.json`` says it did not complete is one failing item ``<run>::run``.

When these options are given and no test path is, only the simval items are collected
(``pytest --simval scenarios/`` does not also run ``testpaths``); give paths to collect
both. With pytest-xdist each worker process would run a scenario itself: do not combine.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from simval import run as simval_run  # through the module: tests may replace its functions
from simval.compare import (
    CompareInputError,
    common_filters,
    compare_runs,
    load_runs,
    parse_tolerances,
    write_compare,
)
from simval.compare.core import diff_text, ratio_text
from simval.report import format_value, load_run, write_report
from simval.scenario import load_scenario
from simval.verdict import evaluate_thresholds

if TYPE_CHECKING:
    from simval.scenario.inputs import Comparison
    from simval.verdict import Verdict

__all__ = ["SimvalCheckError", "expected_checks"]

_SOURCES = pytest.StashKey[list["_Source"]]()
_COMPARES = pytest.StashKey[list["_CompareSource"]]()
SCENARIO_SUFFIXES = (".yaml", ".yml")


class SimvalCheckError(AssertionError):
    """A threshold verdict failed, or the scenario could not be run or evaluated."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simval", "simval: JWST pipeline validation scenarios")
    group.addoption("--simval", action="append", default=[], metavar="PATH",
                    help="run scenario YAML file(s), or every *.yaml in a directory, and "
                         "make each (scenario, filter, metric) threshold a test item")
    group.addoption("--simval-run", action="append", default=[], metavar="DIR",
                    help="judge finished run director(y/ies) (or a directory of them) "
                         "from metrics.json, without running anything")
    group.addoption("--simval-run-root", default=None, metavar="DIR",
                    help="where --simval puts run directories (default: ./runs)")
    group.addoption("--simval-kit-dir", default=None, metavar="DIR",
                    help="parent directory of synthetic kits for --simval runs (default: "
                         "$SIMVAL_KIT_DIR or the user cache, as `simval run`)")
    group.addoption("--simval-workers", type=int, default=None, metavar="N",
                    help="Dask worker processes per scenario run (default: automatic)")
    group.addoption("--simval-no-report", action="store_true", default=False,
                    help="do not write report.html into the run directories")
    group.addoption("--simval-compare", action="append", nargs="+", default=[],
                    metavar="RUN", help="compare finished runs (each with the first): one "
                    "item per (filter, metric) with a --simval-tolerance; repeatable for "
                    "several groups")
    group.addoption("--simval-tolerance", action="append", default=[],
                    metavar="METRIC=VALUE", help="largest allowed |B - A| of METRIC (its "
                    "unit) for --simval-compare; repeatable")
    group.addoption("--simval-fail-on-flux-ratio", type=float, default=None, metavar="X",
                    help="--simval-compare: an item per filter failing if |median flux "
                         "ratio B/A - 1| > X (sources with S/N > 20 in A)")
    group.addoption("--simval-compare-output", default=None, metavar="DIR",
                    help="--simval-compare: also write compare.html/compare.json under DIR")


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("simval", None) or config.getoption("simval_run", None)
                or config.getoption("simval_compare", None))


# --- what to judge ------------------------------------------------------------------------

def expected_checks(comparison: Comparison | None, filters: list[str]) -> list[tuple[str, str]]:
    """The (filter, metric) pairs a scenario's thresholds judge, in verdict order.

    Uses :func:`simval.verdict.evaluate_thresholds` on an empty metrics document with
    ``filters``, so ``all`` expands exactly as it will for the real metrics.
    """

    if comparison is None or not comparison.thresholds:
        return []
    empty: dict[str, dict[str, Any]] = {f.upper(): {} for f in filters}
    return [(v.filter, v.metric) for v in evaluate_thresholds(empty, comparison)]


@dataclass
class _Outcome:
    """A scenario's result: verdicts by (filter, metric), or why there are none."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    error: str | None = None
    run_dir: Path | None = None
    report: Path | None = None
    wall_s: float = 0.0
    reported_by: str | None = None


@dataclass
class _Source:
    """One scenario file to run, or one finished run directory to read."""

    path: Path
    kind: str  # "scenario" or "run"
    name: str = ""
    run_dir: Path | None = None
    outcome: _Outcome | None = None
    checks: list[tuple[str, str]] = field(default_factory=list)
    collect_error: str | None = None
    write_report: bool = True
    workers: int | None = None
    kit_dir: Path | None = None

    def label(self) -> str:
        return f"{self.kind} {self.path}"


def _scenario_files(arg: str) -> list[Path]:
    p = Path(arg).expanduser()
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.suffix in SCENARIO_SUFFIXES and q.is_file())
        if not files:
            raise pytest.UsageError(f"--simval {arg}: no *.yaml scenario in this directory")
        return files
    if p.is_file():
        return [p]
    raise pytest.UsageError(f"--simval {arg}: no such file or directory")


def _run_dirs(arg: str) -> list[Path]:
    p = Path(arg).expanduser()
    if not p.is_dir():
        raise pytest.UsageError(f"--simval-run {arg}: no such directory")

    def is_run(d: Path) -> bool:
        return any((d / n).is_file() for n in ("metrics.json", "manifest.json", "plan.json"))

    if is_run(p):
        return [p]
    runs = sorted(d for d in p.iterdir() if d.is_dir() and is_run(d))
    if not runs:
        raise pytest.UsageError(f"--simval-run {arg}: not a run directory (no metrics.json, "
                                "manifest.json or plan.json), nor a directory of them")
    return runs


def _yaml_name(path: Path) -> str:
    """The scenario's ``name`` without validating (validation happens at collection)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return path.stem
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else path.stem


def _run_name(run_dir: Path) -> str:
    try:
        return load_run(run_dir).scenario_name
    except OSError:
        return run_dir.name


def _unique(name: str, used: set[str], path: Path) -> str:
    out, k = name, 1
    if out in used:
        out = f"{name}@{path.stem if path.is_file() else path.name}"
    while out in used:
        k += 1
        out = f"{name}@{k}"
    used.add(out)
    return out


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("simval_compare", None) and (
            config.getoption("simval_tolerance", None)
            or config.getoption("simval_fail_on_flux_ratio", None) is not None):
        raise pytest.UsageError("--simval-tolerance and --simval-fail-on-flux-ratio apply "
                                "to --simval-compare RUN_A RUN_B")
    if not _active(config):
        return
    root_opt = config.getoption("simval_run_root")
    root = Path(root_opt).expanduser() if root_opt else config.invocation_params.dir / "runs"
    kit_opt = config.getoption("simval_kit_dir")
    kit_dir = Path(kit_opt).expanduser().absolute() if kit_opt else None
    used: set[str] = set()
    seen: set[Path] = set()
    sources: list[_Source] = []
    for arg in config.getoption("simval"):
        for path in _scenario_files(arg):
            if path.resolve() in seen:  # the same file twice runs once
                continue
            seen.add(path.resolve())
            name = _unique(_yaml_name(path), used, path)
            sources.append(_Source(path.absolute(), "scenario", name,
                                   (root / name).absolute(),
                                   write_report=not config.getoption("simval_no_report"),
                                   workers=config.getoption("simval_workers"),
                                   kit_dir=kit_dir))
    for arg in config.getoption("simval_run"):
        for d in _run_dirs(arg):
            if d.resolve() in seen:
                continue
            seen.add(d.resolve())
            sources.append(_Source(d.absolute(), "run", _unique(_run_name(d), used, d),
                                   d.absolute(), write_report=False))
    config.stash[_SOURCES] = sources
    config.stash[_COMPARES] = _compare_sources(config, used)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = []  # no test paths given: collect only the simval items


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Add one collector per scenario/run to the session's own collection."""
    rep = yield
    if isinstance(collector, pytest.Session) and _active(collector.config) and rep.passed:
        for source in collector.config.stash.get(_SOURCES, []):
            # the scenario name is the first part of the ids ("quickstart::F115W::metric")
            rep.result.append(ScenarioCollector.from_parent(
                collector, name=source.name, nodeid=source.name, path=source.path,
                source=source))
        for cmp in collector.config.stash.get(_COMPARES, []):
            rep.result.append(CompareCollector.from_parent(
                collector, name=cmp.name, nodeid=cmp.name, path=cmp.path, source=cmp))
    return rep


# --- running and reading ------------------------------------------------------------------

def _stage_errors(run_dir: Path, result: Any = None) -> str:
    """The failed stages of a run, with their errors and log files (from the manifest)."""

    lines = []
    try:
        contents = load_run(run_dir)
    except OSError:
        contents = None
    manifest = (contents.manifest if contents else None) or {}
    status = manifest.get("status") or getattr(result, "status", "unknown")
    lines.append(f"the run in {run_dir} is {status}")
    if manifest.get("error"):
        lines.append(f"  error: {manifest['error']}")
    stages = manifest.get("stages") or {}
    failed = manifest.get("failed_stages")
    if failed is None and result is not None:
        failed = [o.stage_id for o in result.failed]
    for sid in failed or []:
        s = stages.get(sid) or {}
        err = s.get("error")
        if err is None and result is not None:
            err = next((o.error for o in result.failed if o.stage_id == sid), None)
        lines.append(f"  stage {sid} failed: {err or 'no error recorded'}")
        for key in ("log", "traceback"):
            if s.get(key):
                lines.append(f"    {key}: {run_dir / s[key]}")
    blocked = manifest.get("blocked_stages") or []
    if blocked:
        lines.append(f"  {len(blocked)} stage(s) not run because of it")
    if not manifest:
        lines.append("  no manifest.json: the run did not finish")
    return "\n".join(lines)


def _verdict_map(verdicts: list[Verdict]) -> dict[tuple[str, str], Verdict]:
    return {(v.filter, v.metric): v for v in verdicts if v.kind == "threshold"}


def _write_report(source: _Source, outcome: _Outcome, verdicts: list[Verdict]) -> None:
    if not source.write_report or source.run_dir is None:
        return

    try:
        outcome.report = write_report(source.run_dir, verdicts=verdicts)
    except Exception as exc:  # a report problem must not fail the checks
        import warnings

        warnings.warn(f"simval: report.html of {source.name} not written: "
                      f"{type(exc).__name__}: {exc}", stacklevel=1)


def _announce(config: pytest.Config, text: str) -> None:
    """A line on the terminal, past output capturing (a scenario run takes minutes)."""
    import contextlib

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(text)


def _run_scenario(source: _Source, config: pytest.Config) -> _Outcome:
    """Run, evaluate and report one scenario (called once, by its first item)."""

    assert source.run_dir is not None
    out = _Outcome(run_dir=source.run_dir)
    t0 = time.perf_counter()
    _announce(config, f"simval: running scenario {source.name} ({source.path}) in "
                      f"{source.run_dir}")
    try:
        result = simval_run.run_scenario(source.path, source.run_dir, workers=source.workers,
                              kit_dir=source.kit_dir)
        if result.status != "complete":
            out.error = _stage_errors(source.run_dir, result)
            _write_report(source, out, [])
            return out
        evaluation = simval_run.evaluate_run(source.run_dir)
        out.verdicts = _verdict_map(evaluation.verdicts)
        _write_report(source, out, evaluation.verdicts)
    except Exception as exc:
        out.error = (f"{type(exc).__name__}: {exc}\n"
                     + "".join(traceback.format_exception(exc, limit=-3)))
    finally:
        out.wall_s = time.perf_counter() - t0
    return out


def _read_run(source: _Source) -> _Outcome:
    """Verdicts of a finished run: from metrics.json, else by evaluating it."""

    assert source.run_dir is not None
    out = _Outcome(run_dir=source.run_dir)
    t0 = time.perf_counter()
    try:
        contents = load_run(source.run_dir)
        if contents.metrics is None:
            simval_run.ensure_evaluated(source.run_dir)
            contents = load_run(source.run_dir)
            if contents.metrics is None:
                raise SimvalCheckError("; ".join(contents.notes))
        out.verdicts = _verdict_map(contents.verdicts)
        report = source.run_dir / "report.html"
        out.report = report if report.is_file() else None
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        out.wall_s = time.perf_counter() - t0
    return out


def _outcome(source: _Source, config: pytest.Config) -> _Outcome:
    if source.outcome is None:
        source.outcome = _run_scenario(source, config) if source.kind == "scenario" else \
            _read_run(source)
    return source.outcome


# --- collection tree ----------------------------------------------------------------------

class ScenarioCollector(pytest.Collector):
    """A scenario (or finished run): its filters, or one ``run`` item."""

    def __init__(self, *, source: _Source, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source

    def collect(self):
        src = self.source
        if src.kind == "scenario":
            scenario = load_scenario(src.path)  # a ScenarioError is a collection error
            filters = [b.upper() for b in scenario.bands()]
            src.checks = expected_checks(scenario.comparison, filters)
        else:
            contents = load_run(src.path)
            if contents.status not in ("complete", "unknown") or (
                    contents.manifest is None and contents.metrics is None):
                src.collect_error = _stage_errors(src.path)
                yield RunItem.from_parent(self, name="run")
                return
            src.checks = expected_checks(contents.comparison, contents.filters)
        if not src.checks:
            yield RunItem.from_parent(self, name="run")
            return
        for band in dict.fromkeys(b for b, _ in src.checks):
            yield FilterCollector.from_parent(self, name=band, source=src,
                                              metrics=[m for b, m in src.checks if b == band])

    def reportinfo(self):
        return self.path, None, f"simval {self.source.label()}"


class FilterCollector(pytest.Collector):
    """One filter of a scenario: an item per thresholded metric."""

    def __init__(self, *, source: _Source, metrics: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.metrics = metrics

    def collect(self):
        for metric in self.metrics:
            yield VerdictItem.from_parent(self, name=metric, source=self.source,
                                          band=self.name)


class _SimvalItem(pytest.Item):
    source: _Source

    def _outcome_or_fail(self) -> _Outcome:
        out = _outcome(self.source, self.config)
        if out.error is not None:
            if out.reported_by is None:
                out.reported_by = self.nodeid
                raise SimvalCheckError(f"{self.source.name}: could not be judged:\n"
                                        f"{out.error}")
            pytest.skip(f"{self.source.name} was not judged: see {out.reported_by}")
        return out

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SimvalCheckError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class RunItem(_SimvalItem):
    """``<scenario>::run``: the run completes and evaluates (scenarios without thresholds,
    and finished runs that did not complete)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = self.parent.source

    def runtest(self) -> None:
        if self.source.collect_error is not None:
            raise SimvalCheckError(f"{self.source.name}: {self.source.collect_error}")
        self._outcome_or_fail()

    def reportinfo(self):
        return self.path, None, f"simval {self.source.name}: run and evaluation"


class VerdictItem(_SimvalItem):
    """``<scenario>::<FILTER>::<metric>``: one threshold verdict."""

    def __init__(self, *, source: _Source, band: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.band = band
        self.metric = self.name

    def runtest(self) -> None:
        out = self._outcome_or_fail()
        v = out.verdicts.get((self.band, self.metric))
        if v is None:
            raise SimvalCheckError(f"{self.source.name} {self.band} {self.metric}: no verdict "
                                    "(the evaluation did not judge this threshold)")
        for key, value in (("value", v.value), ("uncertainty", v.uncertainty),
                           ("unit", v.unit), ("limit", v.limit), ("n", v.n)):
            self.user_properties.append((key, value))
        if not v.passed:
            where = f"run directory: {out.run_dir}"
            if out.report is not None:
                where += f"\nreport: {out.report}"
            raise SimvalCheckError(
                f"{self.source.name} {self.band} {self.metric} FAILED\n"
                f"  measured: {format_value(v.value, v.uncertainty, v.unit)} (n = {v.n})\n"
                f"  required: {v.limit}\n"
                f"  {v.message}\n{where}")

    def reportinfo(self):
        return self.path, None, f"simval {self.source.name} {self.band} {self.metric}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    """Where each scenario's run directory and report are."""
    if not _active(config):
        return
    done = [s for s in config.stash.get(_SOURCES, []) if s.outcome is not None]
    compared = [c for c in config.stash.get(_COMPARES, []) if c.group.done]
    if not done and not compared:
        return
    terminalreporter.section("simval")
    for c in compared:
        checks = c.group.checks_of(c.name)
        failed = sum(not k.passed for k in checks)
        line = (f"{c.name}: not judged ({c.group.error.splitlines()[0]})" if c.group.error
                else f"{c.name}: {len(checks) - failed} passed, {failed} failed")
        if c.group.output is not None:
            line += f"; compare {c.group.output / 'compare.html'}"
        terminalreporter.write_line(line)
    for s in done:
        out = s.outcome
        failed = sum(not v.passed for v in out.verdicts.values())
        state = "not judged" if out.error else \
            f"{len(out.verdicts) - failed} passed, {failed} failed"
        line = f"{s.name}: {state} ({out.wall_s:.1f} s); run {out.run_dir}"
        if out.report is not None:
            line += f"; report {out.report}"
        terminalreporter.write_line(line)


# --- comparing finished runs (--simval-compare) -------------------------------------------

@dataclass
class _CompareGroup:
    """One ``--simval-compare RUN_A RUN_B ...``: the runs, computed once on first use."""

    runs: list[Any]
    filters: list[str]
    tolerances: dict[str, float]
    flux_ratio: float | None
    output: Path | None = None
    result: Any = None
    error: str | None = None
    reported_by: str | None = None
    done: bool = False
    wall_s: float = 0.0

    def compute(self) -> None:
        if self.done:
            return

        t0 = time.perf_counter()
        try:
            self.result = compare_runs(self.runs, tolerances=self.tolerances,
                                       fail_on_flux_ratio=self.flux_ratio,
                                       filters=self.filters,
                                       catalogs=self.flux_ratio is not None
                                       or self.output is not None,
                                       pixels=self.output is not None)
            if self.output is not None:
                write_compare(self.result, self.output)
        except Exception as exc:
            self.error = (f"{type(exc).__name__}: {exc}\n"
                          + "".join(traceback.format_exception(exc, limit=-3)))
        finally:
            self.done = True
            self.wall_s = time.perf_counter() - t0

    def checks_of(self, name: str) -> list[Any]:
        if self.result is None:
            return []
        return [c for p in self.result.pairs if p.name == name for c in p.checks]


@dataclass
class _CompareSource:
    """One pair (A, B) of a group: its items are (filter, metric) checks."""

    name: str
    path: Path
    group: _CompareGroup
    checks: list[tuple[str, str]] = field(default_factory=list)


def _compare_sources(config: pytest.Config, used: set[str]) -> list[_CompareSource]:
    """Validate every ``--simval-compare`` group (usage errors for bad runs and tolerances)
    and make one source per pair."""
    groups = config.getoption("simval_compare") or []
    if not groups:
        return []

    flux = config.getoption("simval_fail_on_flux_ratio")
    try:
        tolerances = parse_tolerances(config.getoption("simval_tolerance") or [])
        if flux is not None and not flux >= 0:
            raise CompareInputError(f"--simval-fail-on-flux-ratio must be >= 0, got {flux}")
    except CompareInputError as exc:
        raise pytest.UsageError(f"--simval-tolerance: {exc}") from exc
    if not tolerances and flux is None:
        raise pytest.UsageError("--simval-compare needs --simval-tolerance METRIC=VALUE "
                                "(repeatable) and/or --simval-fail-on-flux-ratio X")
    out_opt = config.getoption("simval_compare_output")
    out: list[_CompareSource] = []
    for paths in groups:
        try:
            runs = load_runs(paths)
            filters = common_filters(runs)
        except CompareInputError as exc:
            raise pytest.UsageError(f"--simval-compare {' '.join(paths)}: {exc}") from exc
        group = _CompareGroup(runs, filters, tolerances, flux)
        checks = [(b, m) for b in filters for m in tolerances]
        if flux is not None:
            checks += [(b, "flux_ratio") for b in filters]
        checks.sort(key=lambda c: filters.index(c[0]))
        for run_b in runs[1:]:
            name = _unique(f"{runs[0].name}_vs_{run_b.name}", used, run_b.path)
            out.append(_CompareSource(name, run_b.path, group, list(checks)))
        if out_opt:
            group.output = Path(out_opt).expanduser().absolute() / "_vs_".join(
                r.name for r in runs)
    return out


class CompareCollector(pytest.Collector):
    """A pair of runs (B against A): one collector per filter."""

    def __init__(self, *, source: _CompareSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source

    def collect(self):
        for band in dict.fromkeys(b for b, _ in self.source.checks):
            yield CompareFilterCollector.from_parent(
                self, name=band, source=self.source,
                metrics=[m for b, m in self.source.checks if b == band])

    def reportinfo(self):
        return self.path, None, f"simval compare {self.source.name}"


class CompareFilterCollector(pytest.Collector):
    """One filter of a pair: an item per checked metric."""

    def __init__(self, *, source: _CompareSource, metrics: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.metrics = metrics

    def collect(self):
        for metric in self.metrics:
            yield CompareItem.from_parent(self, name=metric, source=self.source,
                                          band=self.name)


class CompareItem(pytest.Item):
    """``<A>_vs_<B>::<FILTER>::<metric>``: |B - A| within the tolerance."""

    def __init__(self, *, source: _CompareSource, band: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.band = band
        self.metric = self.name

    def runtest(self) -> None:
        group = self.source.group
        group.compute()
        if group.error is not None:
            if group.reported_by is None:
                group.reported_by = self.nodeid
                raise SimvalCheckError(f"{self.source.name}: the comparison failed:\n"
                                       f"{group.error}")
            pytest.skip(f"{self.source.name} was not compared: see {group.reported_by}")
        check = next((c for c in group.checks_of(self.source.name)
                      if c.filter == self.band and c.metric == self.metric), None)
        if check is None:
            raise SimvalCheckError(f"{self.source.name} {self.band} {self.metric}: no check "
                                   "(the comparison did not judge it)")
        for key in ("a", "b", "difference", "uncertainty", "unit", "limit"):
            self.user_properties.append((key, getattr(check, key)))
        if check.passed:
            return
        pair = next(p for p in group.result.pairs if p.name == self.source.name)
        la, lb = pair.a.label, pair.b.label
        if check.kind == "flux_ratio":
            lines = [f"  median flux ratio {lb}/{la}: "
                     f"{ratio_text(check.b, check.uncertainty)} (sources with S/N > "
                     f"{group.result.settings['snr_min']:g} in {la})",
                     "  |ratio - 1|: " + ("not measured" if check.difference is None
                                          else f"{abs(check.difference):.4g}"),
                     f"  tolerance: |ratio - 1| <= {check.limit:g}"]
        else:
            diff = diff_text(check.difference, check.uncertainty, check.unit)
            lines = [f"  {la} ({pair.a.name}): {format_value(check.a, None, check.unit)}",
                     f"  {lb} ({pair.b.name}): {format_value(check.b, None, check.unit)}",
                     f"  {lb} - {la}: {diff}",
                     f"  tolerance: |{lb} - {la}| <= {check.limit:g}"]
        where = f"runs: {pair.a.path} vs {pair.b.path}"
        if group.output is not None:
            where += f"\ncompare: {group.output / 'compare.html'}"
        raise SimvalCheckError(f"{self.source.name} {self.band} {self.metric} FAILED\n"
                               + "\n".join(lines) + f"\n  {check.message}\n{where}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SimvalCheckError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"simval compare {self.source.name} {self.band} {self.metric}"
