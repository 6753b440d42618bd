"""The runs of a comparison: read, validated, labelled, with their per-filter inputs.

A run to compare is a finished, evaluated run directory (``metrics.json`` and the
evaluation's match tables; ``simval run`` makes them, ``simval report RUN`` or ``simval
compare --evaluate`` brings an older run up to date). Everything is read with
:func:`simval.report.rundir.load_run` and :func:`~simval.report.rundir.filter_inputs`,
so the comparison sees exactly what each run's ``report.html`` shows.

Bad input raises :class:`CompareInputError` with a message that says what to do.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simval.report.rundir import filter_inputs, load_run

if TYPE_CHECKING:
    from simval.report.rundir import FilterInputs, RunContents

__all__ = ["CompareInputError", "CompareRun", "common_filters", "load_runs"]

#: Files that make a directory a run directory.
RUN_MARKERS = ("metrics.json", "manifest.json", "plan.json")


class CompareInputError(ValueError):
    """The runs cannot be compared (not a run, no metrics.json, different filters...)."""


@dataclass
class CompareRun:
    """One run of a comparison.

    Attributes
    ----------
    label : str
        ``A``, ``B``, ``C``... in the order given (A is the reference).
    name : str
        Short unique name (the directory name; ``name@2`` for a repeat).
    contents : RunContents
        :func:`simval.report.load_run` of the directory.
    """

    label: str
    name: str
    contents: RunContents
    _inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> Path:
        return self.contents.run_dir

    @property
    def manifest(self) -> dict[str, Any]:
        return self.contents.manifest or {}

    @property
    def crds_context(self) -> str | None:
        ctx = (self.manifest.get("crds") or {}).get("context")
        if ctx is None and self.contents.metrics is not None:
            ctx = self.contents.metrics.provenance.get("crds_context")
        return ctx

    def inputs(self, band: str) -> FilterInputs:
        """Truth table, catalog, the evaluation's match and the mosaic path of a filter
        (read once, cached; missing pieces are None with a note)."""
        if band not in self._inputs:
            self._inputs[band] = filter_inputs(self.contents, band)
        return self._inputs[band]

    def catalog_options(self) -> dict[str, Any]:
        """The options the evaluation passed to :func:`simval.metrics.catalog_metrics`."""
        prov = self.contents.metrics.provenance if self.contents.metrics else {}
        opts = prov.get("catalog_options")
        return dict(opts) if isinstance(opts, dict) else {}

    def describe(self) -> dict[str, Any]:
        """JSON summary of the run (``runs[]`` of ``compare.json``)."""
        doc = self.contents.metrics
        versions = self.manifest.get("versions") or {}
        return {"label": self.label, "name": self.name, "path": str(self.path),
                "scenario": {"name": doc.scenario_name if doc else None,
                             "hash": doc.scenario_hash if doc else None},
                "status": self.contents.status, "crds_context": self.crds_context,
                "jwst": versions.get("jwst"), "filters": sorted(doc.filters) if doc else []}


def _labels(n: int) -> list[str]:
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"R{i + 1}" for i in range(n)]


def _check_dir(path: Path) -> None:
    if not path.exists():
        raise CompareInputError(f"{path}: no such directory")
    if not path.is_dir():
        raise CompareInputError(f"{path}: not a directory (give a run directory)")
    if not any((path / m).is_file() for m in RUN_MARKERS):
        raise CompareInputError(f"{path}: not a run directory (it has none of "
                                f"{', '.join(RUN_MARKERS)}; `simval run SCENARIO -o DIR` "
                                "makes one)")


def load_runs(paths: Sequence[str | os.PathLike]) -> list[CompareRun]:
    """Read and validate the runs to compare (the first is the reference, ``A``).

    Parameters
    ----------
    paths : sequence of path
        At least two run directories (the same directory twice is allowed: a
        self-comparison).

    Raises
    ------
    CompareInputError
        Fewer than two runs, a path that is not a run directory, a run without a valid
        ``metrics.json`` (the message offers ``simval report RUN``), or a run that did
        not complete.
    """

    if len(paths) < 2:
        raise CompareInputError("give at least two run directories (RUN_A RUN_B [RUN_C ...])")
    runs: list[CompareRun] = []
    used: set[str] = set()
    for label, raw in zip(_labels(len(paths)), paths, strict=True):
        path = Path(raw).expanduser()
        _check_dir(path)
        contents = load_run(path)
        if contents.metrics is None:
            if (path / "metrics.json").is_file():
                why = next((n for n in contents.notes if n.startswith("metrics.json")),
                           "metrics.json is not valid")
                raise CompareInputError(f"{path}: {why}")
            raise CompareInputError(
                f"{path}: no metrics.json (the run has not been evaluated). Run "
                f"`simval report {path}` first, or pass --evaluate.")
        if contents.status not in ("complete", "unknown"):
            raise CompareInputError(f"{path}: the run is {contents.status}, not complete "
                                    "(see its manifest.json / report.html)")
        name = path.absolute().name or "run"
        unique, k = name, 1
        while unique in used:
            k += 1
            unique = f"{name}@{k}"
        used.add(unique)
        runs.append(CompareRun(label, unique, contents))
    return runs


def common_filters(runs: Sequence[CompareRun], wanted: Iterable[str] | None = None
                   ) -> list[str]:
    """The filters to compare: all of them, which every run must have; or ``wanted``,
    which every run must have.

    Raises
    ------
    CompareInputError
        If the runs' filters differ (and ``wanted`` is not given), or a wanted filter is
        missing from a run.
    """
    sets = {r.label: set(r.contents.metrics.filters) for r in runs}
    ref = runs[0]
    if wanted:
        bands = [b.upper() for b in wanted]
        for r in runs:
            missing = [b for b in bands if b not in sets[r.label]]
            if missing:
                raise CompareInputError(
                    f"{r.path}: no metrics for filter(s) {', '.join(missing)} (it has "
                    f"{', '.join(sorted(sets[r.label])) or 'none'})")
        return bands
    for r in runs[1:]:
        if sets[r.label] != sets[ref.label]:
            common = sorted(sets[r.label] & sets[ref.label])
            hint = (f"; compare the common ones with "
                    f"{' '.join('--filter ' + b for b in common)}" if common else
                    "; they have no filter in common")
            raise CompareInputError(
                f"the runs have different filters: {ref.name} ({ref.label}) has "
                f"{', '.join(sorted(sets[ref.label]))}, {r.name} ({r.label}) has "
                f"{', '.join(sorted(sets[r.label]))} (different scenarios?){hint}")
    return sorted(sets[ref.label], key=lambda b: [*ref.contents.filters, b].index(b))
