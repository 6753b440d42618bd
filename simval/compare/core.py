"""Compare runs: each run against the first, filter by filter.

:func:`compare_runs` reads the runs (:mod:`simval.compare.runs`), and for every pair
(A, B), (A, C), ... and every filter computes

* the metric table (:mod:`simval.compare.metrics_diff`): values, B - A, uncertainty;
* the catalog comparison (:mod:`simval.compare.catalogs`): median flux ratio B/A;
* the pixel comparison (:mod:`simval.compare.pixels`): ratio and difference statistics;

and per pair the provenance diff (:mod:`simval.compare.provenance`) and the threshold
verdicts that changed. The **checks** decide the exit code: ``tolerances`` (metric ->
largest allowed |B - A|, every filter) and ``fail_on_flux_ratio`` (largest allowed
|median flux ratio - 1|). :meth:`CompareResult.to_json` is ``compare.json``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import write_text
from simval.compare.catalogs import compare_catalogs
from simval.compare.html import render_html
from simval.compare.metrics_diff import N_BOOT, MetricDiff, metric_diffs
from simval.compare.pixels import compare_mosaics, write_difference_fits
from simval.compare.provenance import provenance_diff
from simval.compare.runs import CompareInputError, CompareRun, common_filters, load_runs
from simval.metrics_schema import REGISTRY, UnknownMetricError, check_metric_names, jsonable
from simval.provenance import now_utc, package_version
from simval.report.rundir import diff_text, format_value, ratio_text
from simval.verdict import evaluate_thresholds

if TYPE_CHECKING:
    from simval.compare.catalogs import CatalogComparison
    from simval.compare.pixels import PixelComparison
    from simval.compare.provenance import ProvenanceDiff

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "Check", "CompareResult", "FilterComparison",
           "PairComparison", "VerdictChange", "compare_runs", "default_output",
           "diff_text", "parse_tolerances", "ratio_text", "write_compare"]

SCHEMA_NAME = "simval.compare"
SCHEMA_VERSION = 1
#: Pseudo-metric name of the flux-ratio check.
FLUX_RATIO = "flux_ratio"


@dataclass(frozen=True)
class Check:
    """One pass/fail check of a pair (what the exit code is made of).

    ``kind`` is ``tolerance`` (``metric`` is a registry name; ``a``, ``b`` its values,
    ``difference`` B - A) or ``flux_ratio`` (``metric`` = ``flux_ratio``; ``b`` and
    ``difference`` are the median flux ratio B/A and ratio - 1). ``limit`` is the largest
    allowed |difference|.
    """

    pair: str
    kind: str
    filter: str
    metric: str
    unit: str
    a: float | None
    b: float | None
    difference: float | None
    uncertainty: float | None
    limit: float
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("pair", "kind", "filter", "metric", "unit",
                                              "a", "b", "difference", "uncertainty",
                                              "limit", "passed", "message")}


@dataclass(frozen=True)
class VerdictChange:
    """A threshold verdict (same thresholds applied to both runs) that changed."""

    filter: str
    metric: str
    limit: str
    a_passed: bool
    b_passed: bool
    a_value: float | None
    b_value: float | None
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"filter": self.filter, "metric": self.metric, "limit": self.limit,
                "a_passed": self.a_passed, "b_passed": self.b_passed,
                "a_value": self.a_value, "b_value": self.b_value, "unit": self.unit}


@dataclass
class FilterComparison:
    """One filter of one pair."""

    filter: str
    metrics: dict[str, MetricDiff] = field(default_factory=dict)
    catalog: CatalogComparison | None = None
    pixels: PixelComparison | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": {k: v.to_json() for k, v in self.metrics.items()},
                "catalog": None if self.catalog is None else self.catalog.to_json(),
                "pixels": None if self.pixels is None else self.pixels.to_json(),
                "notes": self.notes}


@dataclass
class PairComparison:
    """Run B against the reference run A."""

    a: CompareRun
    b: CompareRun
    filters: dict[str, FilterComparison] = field(default_factory=dict)
    provenance: ProvenanceDiff | None = None
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    verdict_changes: list[VerdictChange] = field(default_factory=list)
    thresholds_from: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``<A>_vs_<B>`` (directory names)."""
        return f"{self.a.name}_vs_{self.b.name}"

    @property
    def label(self) -> str:
        return f"{self.b.label}-{self.a.label}"

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a.label, "b": self.b.label, "name": self.name,
                "passed": self.passed,
                "filters": {k: v.to_json() for k, v in self.filters.items()},
                "verdicts": self.verdicts, "thresholds_from": self.thresholds_from,
                "verdict_changes": [v.to_json() for v in self.verdict_changes],
                "provenance": None if self.provenance is None else self.provenance.to_json(),
                "checks": [c.to_json() for c in self.checks]}


@dataclass
class CompareResult:
    """The outcome of :func:`compare_runs` (``compare.json`` via :meth:`to_json`)."""

    runs: list[CompareRun]
    filters: list[str]
    pairs: list[PairComparison]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    created_utc: str = field(default_factory=now_utc)

    @property
    def checks(self) -> list[Check]:
        return [c for p in self.pairs for c in p.checks]

    @property
    def passed(self) -> bool:
        """True if every check passed (and for no checks)."""
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_json(self) -> dict[str, Any]:
        simval_version = package_version("simval", "unknown")
        return jsonable({
            "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION,
            "created_utc": self.created_utc, "simval": simval_version,
            "runs": [r.describe() for r in self.runs], "filters": self.filters,
            "settings": self.settings, "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
            "comparisons": [p.to_json() for p in self.pairs], "notes": self.notes,
        })


# --- checks -------------------------------------------------------------------------------

def parse_tolerances(items: Iterable[str]) -> dict[str, float]:
    """``["metric=VALUE", ...]`` -> {metric: VALUE} (absolute tolerance on |B - A|, in the
    metric's unit).

    Raises
    ------
    CompareInputError
        For a malformed item, a negative or non-finite value, or an unknown metric (the
        message lists the known ones).
    """

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        try:
            tol = float(value)
        except ValueError:
            tol = float("nan")
        if not sep or not name or not math.isfinite(tol) or tol < 0:
            raise CompareInputError(f"tolerance {item!r}: expected METRIC=VALUE with VALUE a "
                                    "number >= 0 (absolute, in the metric's unit), e.g. "
                                    "phot_bias_bright_star_mag=0.01")
        out[name] = tol
    try:
        check_metric_names(out, where="--tolerance")
    except UnknownMetricError as exc:
        raise CompareInputError(str(exc)) from exc
    return out


def _fmt(x: float | None, unit: str = "", signed: bool = False) -> str:
    if x is None:
        return "not measured"
    if signed:
        return diff_text(x, None, unit)
    return format_value(x, None, unit)


def tolerance_check(pair: str, band: str, d: MetricDiff | None, metric: str,
                    limit: float) -> Check:
    """|B - A| <= limit; a value missing in one run fails, in both passes. ``pair`` is
    ``"B-A"`` (the runs' labels, used in the message)."""
    lb, _, la = pair.partition("-")
    unit = REGISTRY[metric].unit
    a = None if d is None else d.a_value
    b = None if d is None else d.b_value
    diff = None if d is None else d.difference
    unc = None if d is None else d.uncertainty
    if a is None and b is None:
        passed, why = True, "not measured in either run"
    elif diff is None:
        passed = False
        why = f"not measured in {la if a is None else lb}"
    else:
        passed = abs(diff) <= limit
        why = ""
    msg = (f"{metric}[{band}]: {la} = {_fmt(a, unit)}, {lb} = {_fmt(b, unit)}, "
           f"{lb} - {la} = {diff_text(diff, unc, unit)}, tolerance |{lb} - {la}| <= "
           f"{limit:g}: {'PASS' if passed else 'FAIL'}" + (f" ({why})" if why else ""))
    return Check(pair, "tolerance", band, metric, unit, a, b, diff, unc, limit, passed, msg)


def flux_ratio_check(pair: str, band: str, cat: CatalogComparison | None,
                     limit: float) -> Check:
    """|median flux ratio B/A - 1| <= limit; no headline ratio fails."""
    lb, _, la = pair.partition("-")
    ratio = None if cat is None else cat.median_ratio
    unc = None if cat is None else cat.uncertainty
    diff = None if ratio is None else ratio - 1.0
    passed = diff is not None and abs(diff) <= limit
    if ratio is None:
        why = (cat.note if cat is not None and cat.note else "no catalog comparison")
        msg = (f"flux_ratio[{band}]: no median flux ratio {lb}/{la} ({why}): FAIL, required "
               f"|ratio - 1| <= {limit:g}")
    else:
        msg = (f"flux_ratio[{band}]: median {lb}/{la} = {ratio_text(ratio, unc)} "
               f"(n = {cat.n}, S/N > {cat.snr_min:g} in {la}), |ratio - 1| = {abs(diff):.3g}, "
               f"required <= {limit:g}: {'PASS' if passed else 'FAIL'}")
    return Check(pair, "flux_ratio", band, FLUX_RATIO, "ratio", 1.0, ratio, diff, unc,
                 limit, passed, msg)


def _verdicts(pair: PairComparison, bands: Sequence[str]) -> None:
    """Apply the same thresholds (A's scenario, else B's) to both runs."""

    comp, source = pair.a.contents.comparison, pair.a.label
    if comp is None or not comp.thresholds:
        comp, source = pair.b.contents.comparison, pair.b.label
    if comp is None or not comp.thresholds:
        return
    pair.thresholds_from = source
    da = {b: pair.a.contents.metrics.filters.get(b, {}) for b in bands}
    db = {b: pair.b.contents.metrics.filters.get(b, {}) for b in bands}
    va = {(v.filter, v.metric): v for v in evaluate_thresholds(da, comp)}
    vb = {(v.filter, v.metric): v for v in evaluate_thresholds(db, comp)}
    for key in va:
        x, y = va[key], vb.get(key)
        if y is None:
            continue
        pair.verdicts.append({"filter": x.filter, "metric": x.metric, "limit": x.limit,
                              "a_passed": x.passed, "b_passed": y.passed,
                              "a_value": x.value, "b_value": y.value, "unit": x.unit,
                              "changed": x.passed != y.passed})
        if x.passed != y.passed:
            pair.verdict_changes.append(VerdictChange(x.filter, x.metric, x.limit, x.passed,
                                                      y.passed, x.value, y.value, x.unit))


# --- the comparison -----------------------------------------------------------------------

def _catalog(pair: PairComparison, band: str, fc: FilterComparison, *, flux_column: str,
             snr_min: float, n_boot: int, rng: np.random.Generator) -> None:
    fa, fb = pair.a.inputs(band), pair.b.inputs(band)
    if fa.measured is None or fb.measured is None:
        fc.notes.append("catalog comparison not made: a run's source catalog is missing "
                        "or unreadable")
        return
    radius = fa.radius_mas or fb.radius_mas
    try:
        fc.catalog = compare_catalogs(fa.measured, fb.measured, radius_mas=float(radius),
                                      flux_column=flux_column, snr_min=snr_min,
                                      n_boot=n_boot, rng=rng)
    except KeyError as exc:
        fc.notes.append(f"catalog comparison not made: {exc.args[0] if exc.args else exc}")


def _pixels(pair: PairComparison, band: str, fc: FilterComparison, *, snr_min: float) -> None:
    fa, fb = pair.a.inputs(band), pair.b.inputs(band)
    if fa.i2d is None or fb.i2d is None:
        fc.notes.append("pixel comparison not made: a run's mosaic (_i2d.fits) is missing")
        return
    try:
        fc.pixels = compare_mosaics(fa.i2d, fb.i2d, snr_min=snr_min)
    except (OSError, ValueError) as exc:
        fc.notes.append(f"pixel comparison not made: {type(exc).__name__}: {exc}")


def compare_runs(paths: Sequence[str | os.PathLike] | Sequence[CompareRun], *,
                 tolerances: Mapping[str, float] | None = None,
                 fail_on_flux_ratio: float | None = None,
                 filters: Iterable[str] | None = None, n_boot: int = N_BOOT, seed: int = 0,
                 snr_min: float = 20.0, flux_column: str = "aper_total_flux",
                 catalogs: bool = True, pixels: bool = True
                 ) -> CompareResult:
    """Compare every run with the first (see the module docstring).

    Parameters
    ----------
    paths : sequence of path (or of CompareRun)
        Run directories, reference first.
    tolerances : mapping, optional
        metric -> largest allowed |B - A| (metric unit), checked in every filter.
    fail_on_flux_ratio : float, optional
        Largest allowed |median flux ratio B/A - 1| (sources with S/N > ``snr_min``).
    filters : iterable of str, optional
        Compare only these (every run must have them); default: all, which must agree.
    n_boot : int
        Bootstrap resamples (catalog metrics and the median flux ratio).
    seed : int
        Seed of the bootstrap generators (same seed, same numbers).
    snr_min : float
        S/N cut (in A) of the headline flux ratio and of the pixel ratio.
    flux_column : str
        Catalog flux column of the flux ratio.
    catalogs, pixels : bool
        Make the catalog / pixel comparisons.

    Raises
    ------
    CompareInputError
        Bad input: not a run, no metrics.json, different filters, unknown metric names,
        a negative tolerance.
    """
    tol = dict(tolerances or {})
    try:
        check_metric_names(tol, where="tolerances")
    except KeyError as exc:
        raise CompareInputError(str(exc)) from exc
    if any(not (v >= 0) for v in tol.values()):
        raise CompareInputError(f"tolerances must be >= 0: {tol}")
    if fail_on_flux_ratio is not None and not fail_on_flux_ratio >= 0:
        raise CompareInputError(f"the flux-ratio tolerance must be >= 0, got "
                                f"{fail_on_flux_ratio}")
    runs = list(paths) if paths and all(isinstance(p, CompareRun) for p in paths) else \
        load_runs(paths)  # type: ignore[arg-type]
    bands = common_filters(runs, filters)
    settings = {"n_boot": int(n_boot), "seed": int(seed), "snr_min": float(snr_min),
                "flux_column": flux_column, "tolerances": tol,
                "fail_on_flux_ratio": fail_on_flux_ratio, "catalogs": catalogs,
                "pixels": pixels}
    result = CompareResult(runs, bands, [], settings)
    names = {r.contents.metrics.scenario_name for r in runs}
    if len(names) > 1:
        result.notes.append(f"the runs come from different scenarios ({', '.join(sorted(names))})"
                            ": differences include the scenario change")

    for k, run_b in enumerate(runs[1:], start=1):
        pair = PairComparison(runs[0], run_b)
        pair.provenance = provenance_diff(pair.a.contents.manifest, pair.b.contents.manifest,
                                          path_a=pair.a.path, path_b=pair.b.path)
        shared = bool(pair.provenance.simulation.get("same_simulation"))
        for j, band in enumerate(bands):
            fc = FilterComparison(band)
            rng = np.random.default_rng([int(seed), k, j])
            fc.metrics = metric_diffs(pair.a, pair.b, band, n_boot=n_boot, rng=rng,
                                      shared_simulation=shared)
            if catalogs:
                _catalog(pair, band, fc, flux_column=flux_column, snr_min=snr_min,
                         n_boot=n_boot, rng=rng)
            if pixels:
                _pixels(pair, band, fc, snr_min=snr_min)
            pair.filters[band] = fc
            for metric, limit in tol.items():
                pair.checks.append(tolerance_check(pair.label, band, fc.metrics.get(metric),
                                                   metric, limit))
            if fail_on_flux_ratio is not None:
                pair.checks.append(flux_ratio_check(pair.label, band, fc.catalog,
                                                    fail_on_flux_ratio))
        _verdicts(pair, bands)
        result.pairs.append(pair)
    return result


def default_output(runs: Sequence[CompareRun] | Sequence[str | os.PathLike]) -> Path:
    """``compare/<A>_vs_<B>[_vs_<C>...]`` (directory names), relative to the working
    directory."""
    names = [r.name if isinstance(r, CompareRun) else Path(r).expanduser().absolute().name
             for r in runs]
    return Path("compare") / "_vs_".join(names)


def write_compare(result: CompareResult, out_dir: str | os.PathLike, *,
                  diff_fits: bool = False) -> dict[str, Path]:
    """Write ``compare.json``, ``compare.html`` (and with ``diff_fits`` the difference
    images ``diff_<FILTER>.fits``; ``diff_<FILTER>_<A>_vs_<B>.fits`` with more than two
    runs) into ``out_dir``, each atomically. Returns name -> path."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if diff_fits:
        for pair in result.pairs:
            for band, fc in pair.filters.items():
                pix = fc.pixels
                if pix is None or pix.difference is None:
                    continue
                name = f"diff_{band}.fits" if len(result.pairs) == 1 else \
                    f"diff_{band}_{pair.name}.fits"
                path = write_difference_fits(out / name, pix, band=band,
                                             run_a=str(pair.a.path), run_b=str(pair.b.path))
                pix.diff_fits = name
                written[name] = path
    written["compare.json"] = write_text(
        out / "compare.json", json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    written["compare.html"] = write_text(out / "compare.html", render_html(result))
    return written
