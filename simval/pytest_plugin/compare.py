"""Comparison items (``--simval-compare``): |B - A| of each (filter, metric) within its tolerance.

A :class:`CompareGroup` is one ``--simval-compare RUN_A RUN_B ...``, compared once on first
use; each pair (A, B) is a :class:`CompareSource` whose :class:`CompareCollector` yields one
:class:`CompareFilterCollector` per band with a :class:`CompareItem` per checked metric.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from simval.compare import (
    CompareInputError,
    common_filters,
    compare_runs,
    load_runs,
    parse_tolerances,
    write_compare,
)
from simval.compare.core import diff_text, ratio_text
from simval.pytest_plugin.items import CheckItem, SimvalCheckError, unique_name
from simval.report import format_value

__all__ = ["CompareCollector", "CompareFilterCollector", "CompareGroup", "CompareItem",
           "CompareSource", "compare_sources"]


@dataclass
class CompareGroup:
    """One ``--simval-compare RUN_A RUN_B ...``: the runs, computed once on first use."""

    runs: list[Any]
    bands: list[str]
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
                                       filters=self.bands,
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
class CompareSource:
    """One pair (A, B) of a group: its items are (filter, metric) checks."""

    name: str
    path: Path
    group: CompareGroup
    checks: list[tuple[str, str]] = field(default_factory=list)


def compare_sources(config: pytest.Config, used: set[str]) -> list[CompareSource]:
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
    out: list[CompareSource] = []
    for paths in groups:
        try:
            runs = load_runs(paths)
            bands = common_filters(runs)
        except CompareInputError as exc:
            raise pytest.UsageError(f"--simval-compare {' '.join(paths)}: {exc}") from exc
        group = CompareGroup(runs, bands, tolerances, flux)
        checks = [(b, m) for b in bands for m in tolerances]
        if flux is not None:
            checks += [(b, "flux_ratio") for b in bands]
        checks.sort(key=lambda c: bands.index(c[0]))
        for run_b in runs[1:]:
            name = unique_name(f"{runs[0].name}_vs_{run_b.name}", used, run_b.path)
            out.append(CompareSource(name, run_b.path, group, list(checks)))
        if out_opt:
            group.output = Path(out_opt).expanduser().absolute() / "_vs_".join(
                r.name for r in runs)
    return out


class CompareCollector(pytest.Collector):
    """A pair of runs (B against A): one collector per filter."""

    def __init__(self, *, source: CompareSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for band in dict.fromkeys(b for b, _ in self.source.checks):
            yield CompareFilterCollector.from_parent(
                self, name=band, source=self.source,
                metrics=[m for b, m in self.source.checks if b == band])

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"simval compare {self.source.name}"


class CompareFilterCollector(pytest.Collector):
    """One filter of a pair: an item per checked metric."""

    def __init__(self, *, source: CompareSource, metrics: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.metrics = metrics

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        for metric in self.metrics:
            yield CompareItem.from_parent(self, name=metric, source=self.source,
                                          band=self.name)


class CompareItem(CheckItem):
    """``<A>_vs_<B>::<FILTER>::<metric>``: |B - A| within the tolerance."""

    def __init__(self, *, source: CompareSource, band: str, **kwargs: Any) -> None:
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

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"simval compare {self.source.name} {self.band} {self.metric}"
