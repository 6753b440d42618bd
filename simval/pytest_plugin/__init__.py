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

The package: :mod:`~simval.pytest_plugin.scenarios` (scenario and run items and their
runner), :mod:`~simval.pytest_plugin.compare` (comparison items) and
:mod:`~simval.pytest_plugin.items` (what the items share); this module holds the options
and the hooks.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from simval.pytest_plugin.compare import CompareCollector, CompareSource, compare_sources
from simval.pytest_plugin.items import SimvalCheckError
from simval.pytest_plugin.scenarios import (
    ScenarioCollector,
    ScenarioSource,
    expected_checks,
    scenario_sources,
)

__all__ = ["SimvalCheckError", "expected_checks"]

_SOURCES = pytest.StashKey[list[ScenarioSource]]()
_COMPARES = pytest.StashKey[list[CompareSource]]()


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


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("simval_compare", None) and (
            config.getoption("simval_tolerance", None)
            or config.getoption("simval_fail_on_flux_ratio", None) is not None):
        raise pytest.UsageError("--simval-tolerance and --simval-fail-on-flux-ratio apply "
                                "to --simval-compare RUN_A RUN_B")
    if not _active(config):
        return
    used: set[str] = set()
    config.stash[_SOURCES] = scenario_sources(config, used)
    config.stash[_COMPARES] = compare_sources(config, used)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = []  # no test paths given: collect only the simval items


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
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
