"""Scenario and run items: run (or read) a scenario once, judge each threshold as an item.

A :class:`ScenarioSource` is a scenario file (``--simval``) or a finished run directory
(``--simval-run``); its :class:`ScenarioCollector` yields one :class:`FilterCollector` per
band with a :class:`VerdictItem` per thresholded metric, or one :class:`RunItem`. The first
item that executes runs the scenario (through :mod:`simval.run`, called as
``simval_run.run_scenario`` so that tests may replace it) or reads the run, and the outcome
is cached for the others.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from simval import run as simval_run  # through the module: tests may replace its functions
from simval.manifest_schema import Manifest
from simval.pytest_plugin.items import CheckItem, SimvalCheckError, unique_name
from simval.report import format_value, load_run, write_report
from simval.scenario import load_scenario
from simval.verdict import evaluate_thresholds

if TYPE_CHECKING:
    from simval.scenario.inputs import Comparison
    from simval.verdict import Verdict

__all__ = ["SCENARIO_SUFFIXES", "FilterCollector", "RunItem", "ScenarioCollector",
           "ScenarioSource", "VerdictItem", "expected_checks", "scenario_sources"]

SCENARIO_SUFFIXES = (".yaml", ".yml")


def expected_checks(comparison: Comparison | None, bands: list[str]) -> list[tuple[str, str]]:
    """The (filter, metric) pairs a scenario's thresholds judge, in verdict order.

    Uses :func:`simval.verdict.evaluate_thresholds` on an empty metrics document with
    ``bands``, so ``all`` expands exactly as it will for the real metrics.
    """

    if comparison is None or not comparison.thresholds:
        return []
    empty: dict[str, dict[str, Any]] = {b.upper(): {} for b in bands}
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
class ScenarioSource:
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


def scenario_sources(config: pytest.Config, used: set[str]) -> list[ScenarioSource]:
    """The scenario files of ``--simval`` and the run directories of ``--simval-run``, each
    once, named uniquely (names added to ``used``)."""
    root_opt = config.getoption("simval_run_root")
    root = Path(root_opt).expanduser() if root_opt else config.invocation_params.dir / "runs"
    kit_opt = config.getoption("simval_kit_dir")
    kit_dir = Path(kit_opt).expanduser().absolute() if kit_opt else None
    seen: set[Path] = set()
    sources: list[ScenarioSource] = []
    for arg in config.getoption("simval"):
        for path in _scenario_files(arg):
            if path.resolve() in seen:  # the same file twice runs once
                continue
            seen.add(path.resolve())
            name = unique_name(_yaml_name(path), used, path)
            sources.append(ScenarioSource(path.absolute(), "scenario", name,
                                          (root / name).absolute(),
                                          write_report=not config.getoption("simval_no_report"),
                                          workers=config.getoption("simval_workers"),
                                          kit_dir=kit_dir))
    for arg in config.getoption("simval_run"):
        for d in _run_dirs(arg):
            if d.resolve() in seen:
                continue
            seen.add(d.resolve())
            sources.append(ScenarioSource(d.absolute(), "run",
                                          unique_name(_run_name(d), used, d), d.absolute(),
                                          write_report=False))
    return sources


# --- running and reading ------------------------------------------------------------------

def _stage_errors(run_dir: Path, result: Any = None) -> str:
    """The failed stages of a run, with their errors and log files (from the manifest;
    from ``result`` when the run left none)."""
    try:
        contents = load_run(run_dir)
    except OSError:
        contents = None
    manifest = contents.manifest if contents else None
    if manifest is not None:
        doc = Manifest.model_validate(manifest)
        lines = [f"the run in {run_dir} is {doc.status}", *doc.failure_lines(run_dir)]
    else:
        lines = [f"the run in {run_dir} is {getattr(result, 'status', 'unknown')}"]
        lines += [f"stage {o.stage_id} failed: {o.error or 'no error recorded'}"
                  for o in getattr(result, "failed", [])]
        lines.append("no manifest.json: the run did not finish")
    return "\n  ".join(lines)


def _verdict_map(verdicts: list[Verdict]) -> dict[tuple[str, str], Verdict]:
    return {(v.filter, v.metric): v for v in verdicts if v.kind == "threshold"}


def _write_report(source: ScenarioSource, outcome: _Outcome, verdicts: list[Verdict]) -> None:
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


def _run_scenario(source: ScenarioSource, config: pytest.Config) -> _Outcome:
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


def _read_run(source: ScenarioSource) -> _Outcome:
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


def _outcome(source: ScenarioSource, config: pytest.Config) -> _Outcome:
    if source.outcome is None:
        source.outcome = _run_scenario(source, config) if source.kind == "scenario" else \
            _read_run(source)
    return source.outcome


# --- collection tree ----------------------------------------------------------------------

class ScenarioCollector(pytest.Collector):
    """A scenario (or finished run): its filters, or one ``run`` item."""

    def __init__(self, *, source: ScenarioSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        src = self.source
        if src.kind == "scenario":
            scenario = load_scenario(src.path)  # a ScenarioError is a collection error
            bands = [b.upper() for b in scenario.bands()]
            src.checks = expected_checks(scenario.comparison, bands)
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

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"simval {self.source.label()}"


class FilterCollector(pytest.Collector):
    """One filter of a scenario: an item per thresholded metric."""

    def __init__(self, *, source: ScenarioSource, metrics: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.metrics = metrics

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for metric in self.metrics:
            yield VerdictItem.from_parent(self, name=metric, source=self.source,
                                          band=self.name)


class _ScenarioItem(CheckItem):
    source: ScenarioSource

    def _outcome_or_fail(self) -> _Outcome:
        out = _outcome(self.source, self.config)
        if out.error is not None:
            if out.reported_by is None:
                out.reported_by = self.nodeid
                raise SimvalCheckError(f"{self.source.name}: could not be judged:\n"
                                        f"{out.error}")
            pytest.skip(f"{self.source.name} was not judged: see {out.reported_by}")
        return out


class RunItem(_ScenarioItem):
    """``<scenario>::run``: the run completes and evaluates (scenarios without thresholds,
    and finished runs that did not complete)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = self.parent.source

    def runtest(self) -> None:
        if self.source.collect_error is not None:
            raise SimvalCheckError(f"{self.source.name}: {self.source.collect_error}")
        self._outcome_or_fail()

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"simval {self.source.name}: run and evaluation"


class VerdictItem(_ScenarioItem):
    """``<scenario>::<FILTER>::<metric>``: one threshold verdict."""

    def __init__(self, *, source: ScenarioSource, band: str, **kwargs: Any) -> None:
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

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"simval {self.source.name} {self.band} {self.metric}"
