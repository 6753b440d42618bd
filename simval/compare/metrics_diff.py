"""Metric by metric: value per run, difference B - A, and the uncertainty of the difference.

Values come from each run's ``metrics.json`` (what the evaluation recorded); the
difference is always **B - A** in the metric's unit (for ``mag`` metrics, negative = B
measures brighter than A).

Uncertainty of the difference
-----------------------------
* **Catalog metrics** (:data:`simval.evaluate.CATALOG_METRICS`: completeness, purity,
  photometry, astrometry) — a bootstrap over sources. The resampling unit is a *source*:
  each truth row together with its matched detection (if any), and each spurious
  detection. A resample draws sources with replacement, rebuilds the truth table, the
  catalog and their (one-to-one, by construction) match, and recomputes every catalog
  metric with :func:`simval.metrics.catalog_metrics` and the options the evaluation used.

  - ``paired`` (the runs share the same truth: same sources, positions and magnitudes —
    e.g. the same simulation calibrated twice): one draw of truth rows serves both runs,
    so the noise both runs share cancels; the uncertainty is the standard deviation of
    B - A over the resamples. A run compared with itself gets exactly 0.
  - ``independent`` (different truth): each run is resampled on its own and the
    standard deviations add in quadrature.

  The bootstrap uses a seeded :class:`numpy.random.Generator` (same seed, same numbers).
* **Other metrics** (background, noise, mosaic) — ``quadrature``: the recorded
  uncertainties added in quadrature, sqrt(u_A² + u_B²); None when either run recorded
  none. When both runs calibrated the same simulated exposures their noise is
  correlated and this overestimates the uncertainty of the difference: the method then
  reads ``quadrature, upper bound``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.match import MatchResult, column, flag_bright_neighbours, match_sky, radec_of
from simval.metrics import catalog_metrics
from simval.metrics_schema import REGISTRY, Measurement, group_metrics

if TYPE_CHECKING:
    from simval.compare.runs import CompareRun

__all__ = ["MetricDiff", "bootstrap_catalog_metrics", "metric_diffs", "same_truth"]

#: Default number of bootstrap resamples.
N_BOOT = 200

_TRUTH_COLUMNS = ("ra", "dec", "mag_true_ab", "type", "in_footprint", "n_exposures",
                  "has_bright_neighbour", "snr_expected")
_MEASURED_COLUMNS = ("aper_total_abmag", "isophotal_abmag", "aper_total_flux",
                     "aper_total_flux_err", "isophotal_flux", "isophotal_flux_err")


@dataclass(frozen=True)
class MetricDiff:
    """One metric of one filter in two runs.

    Attributes
    ----------
    metric, unit : str
    a, b : Measurement or None
        The entries of ``metrics.json`` (None: the metric is absent from that run).
    difference : float or None
        ``b.value - a.value`` in ``unit`` (None if either value is missing).
    uncertainty : float or None
        1-sigma uncertainty of ``difference``.
    method : str or None
        ``paired bootstrap``, ``independent bootstrap`` or ``quadrature``.
    n_boot : int
        Resamples in which the metric was measurable in both runs (bootstrap only).
    """

    metric: str
    unit: str
    a: Measurement | None
    b: Measurement | None
    difference: float | None
    uncertainty: float | None
    method: str | None
    n_boot: int = 0

    @property
    def a_value(self) -> float | None:
        return None if self.a is None else self.a.value

    @property
    def b_value(self) -> float | None:
        return None if self.b is None else self.b.value

    def to_json(self) -> dict[str, Any]:
        def entry(m: Measurement | None) -> dict[str, Any] | None:
            return None if m is None else {"value": m.value, "uncertainty": m.uncertainty,
                                           "n": m.n}

        return {"unit": self.unit, "a": entry(self.a), "b": entry(self.b),
                "difference": self.difference, "uncertainty": self.uncertainty,
                "uncertainty_method": self.method, "n_boot": self.n_boot}


# --- the bootstrap ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Sample:
    """One run's sources as plain arrays (fast to resample)."""

    truth: dict[str, np.ndarray]
    measured: dict[str, np.ndarray]
    t2m: np.ndarray              # truth row -> measured row, -1 = missed
    spurious: np.ndarray         # measured rows without a truth counterpart
    radius_mas: float
    prefer: str
    options: dict[str, Any]


def _sample(run: CompareRun, band: str) -> _Sample | None:
    f = run.inputs(band)
    if f.truth is None or f.measured is None or f.match is None:
        return None
    truth = {c: (np.char.lower(np.asarray(f.truth[c]).astype(str)) if c == "type" else
                 column(f.truth, c, bool if c in ("in_footprint", "has_bright_neighbour")
                        else np.int64 if c == "n_exposures" else np.float64))
             for c in _TRUTH_COLUMNS if c in f.truth.colnames}
    options = run.catalog_options()
    if "has_bright_neighbour" not in truth:  # a property of the field, not of a resample

        truth["has_bright_neighbour"] = flag_bright_neighbours(
            truth["ra"], truth["dec"], truth["mag_true_ab"],
            float(options.get("blend_radius_mas", 500.0)))
    if options.get("min_exposures") is None and "n_exposures" in truth:
        stars = truth["type"] == "star"
        if "in_footprint" in truth:
            stars &= truth["in_footprint"]
        options["min_exposures"] = int(truth["n_exposures"][stars].max()) if stars.any() \
            else 0
    ra, dec = radec_of(f.measured)
    measured = {"ra": ra, "dec": dec}
    wanted = set(_MEASURED_COLUMNS) | {str(options.get("purity_mag_column",
                                                       "isophotal_abmag"))}
    measured.update({c: column(f.measured, c) for c in wanted if c in f.measured.colnames})
    return _Sample(truth, measured, f.match.truth_to_measured,
                   np.flatnonzero(f.match.spurious), f.match.radius_mas, f.match.prefer,
                   options)


def _resampled_values(s: _Sample, truth_rows: np.ndarray, spurious_rows: np.ndarray
                      ) -> dict[str, float | None]:
    """Catalog metrics of the sources ``truth_rows`` (with their detections) and the
    spurious detections ``spurious_rows`` (rows of ``s.measured``)."""

    t2m = s.t2m[truth_rows]
    matched = t2m >= 0
    rows = np.concatenate([t2m[matched], spurious_rows]).astype(np.int64)
    truth = {k: v[truth_rows] for k, v in s.truth.items()}
    measured = {k: v[rows] for k, v in s.measured.items()}
    n_pairs = int(matched.sum())
    match = MatchResult(np.arange(n_pairs, dtype=np.int64),
                        np.flatnonzero(matched).astype(np.int64), np.zeros(n_pairs),
                        rows.size, truth_rows.size, s.radius_mas, s.prefer)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            got = catalog_metrics(truth, measured, match, **s.options).measurements()
        except Exception:  # a degenerate resample (e.g. no star at all)
            return {}
    return {k: m.value for k, m in got.items()}


def _spurious_units(a: _Sample, b: _Sample) -> tuple[np.ndarray, np.ndarray]:
    """Spurious detections of A and B as resampling units: (measured row of A or -1,
    measured row of B or -1) per unit; a detection both made (matched one-to-one on the
    sky within the match radius) is one unit."""

    m = match_sky(b.measured["ra"][b.spurious], b.measured["dec"][b.spurious],
                  a.measured["ra"][a.spurious], a.measured["dec"][a.spurious],
                  min(a.radius_mas, b.radius_mas))
    a_only = np.setdiff1d(np.arange(a.spurious.size), m.truth_index)
    b_only = np.setdiff1d(np.arange(b.spurious.size), m.measured_index)
    ua = np.concatenate([a.spurious[m.truth_index], a.spurious[a_only],
                         np.full(b_only.size, -1)]).astype(np.int64)
    ub = np.concatenate([b.spurious[m.measured_index], np.full(a_only.size, -1),
                         b.spurious[b_only]]).astype(np.int64)
    return ua, ub


def same_truth(a: _Sample | None, b: _Sample | None) -> bool:
    """True if both runs were compared with the same truth sources (paired bootstrap)."""
    if a is None or b is None:
        return False
    ta, tb = a.truth, b.truth
    if ta["ra"].size != tb["ra"].size:
        return False
    return bool(np.array_equal(ta["type"], tb["type"])
                and np.allclose(ta["ra"], tb["ra"], rtol=0, atol=1e-9)
                and np.allclose(ta["dec"], tb["dec"], rtol=0, atol=1e-9)
                and np.allclose(ta["mag_true_ab"], tb["mag_true_ab"], rtol=0, atol=1e-6,
                                equal_nan=True))


def bootstrap_catalog_metrics(run_a: CompareRun, run_b: CompareRun, band: str, *,
                              n_boot: int = N_BOOT, rng: np.random.Generator
                              ) -> tuple[dict[str, tuple[float | None, int]], str | None]:
    """Bootstrap uncertainty of B - A for every catalog metric of one filter.

    Returns
    -------
    uncertainties : dict
        metric -> (standard deviation of B - A over the resamples, or None with fewer
        than 2 resamples where both were measurable; number of such resamples).
    method : str or None
        ``paired bootstrap`` or ``independent bootstrap``; None (and no uncertainties)
        if a run's truth table or catalog cannot be read.
    """
    sa, sb = _sample(run_a, band), _sample(run_b, band)
    if sa is None or sb is None or n_boot < 2:
        return {}, None
    paired = same_truth(sa, sb)
    units_a, units_b = _spurious_units(sa, sb) if paired else (None, None)
    n_t = sa.truth["ra"].size
    diffs: dict[str, list[float]] = {}
    for _ in range(n_boot):
        if paired:
            # the population: every truth source, and every spurious detection (one unit
            # for a spurious detection both runs made, matched on the sky)
            n = n_t + units_a.size
            pick = rng.integers(0, n, n)
            t_rows = pick[pick < n_t]
            u = pick[pick >= n_t] - n_t
            ra_, rb_ = units_a[u], units_b[u]
            va = _resampled_values(sa, t_rows, ra_[ra_ >= 0])
            vb = _resampled_values(sb, t_rows, rb_[rb_ >= 0])
        else:
            values = []
            for s in (sa, sb):
                n = s.truth["ra"].size
                pick = rng.integers(0, n + s.spurious.size, n + s.spurious.size)
                values.append(_resampled_values(s, pick[pick < n],
                                                s.spurious[pick[pick >= n] - n]))
            va, vb = values
        for name in set(va) & set(vb):
            x, y = va[name], vb[name]
            if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
                diffs.setdefault(name, []).append(y - x)
    out: dict[str, tuple[float | None, int]] = {}
    for name, d in diffs.items():
        arr = np.asarray(d)
        out[name] = (float(np.std(arr, ddof=1)) if arr.size >= 2 else None, int(arr.size))
    return out, "paired bootstrap" if paired else "independent bootstrap"


# --- the table ----------------------------------------------------------------------------

def _quadrature(a: Measurement | None, b: Measurement | None) -> float | None:
    if a is None or b is None or a.uncertainty is None or b.uncertainty is None:
        return None
    return float(math.hypot(a.uncertainty, b.uncertainty))


def metric_diffs(run_a: CompareRun, run_b: CompareRun, band: str, *, n_boot: int = N_BOOT,
                 rng: np.random.Generator | None = None, shared_simulation: bool = False
                 ) -> dict[str, MetricDiff]:
    """Every metric of one filter in both runs (registry order), with B - A and its
    uncertainty (see the module docstring).

    Parameters
    ----------
    run_a, run_b : CompareRun
        Reference and compared run.
    band : str
        Filter (upper case).
    n_boot : int
        Bootstrap resamples for the catalog metrics (0: quadrature for every metric).
    rng : numpy Generator, optional
        Default ``numpy.random.default_rng(0)``.
    shared_simulation : bool
        The runs calibrated the same simulated exposures: the quadrature uncertainties
        are then labelled as upper bounds (``quadrature, upper bound``).
    """

    CATALOG_METRICS = group_metrics("catalog")
    rng = np.random.default_rng(0) if rng is None else rng
    ma: Mapping[str, Measurement] = run_a.contents.metrics.filters.get(band, {})
    mb: Mapping[str, Measurement] = run_b.contents.metrics.filters.get(band, {})
    boot, method = ({}, None)
    if n_boot >= 2 and any(n in ma or n in mb for n in CATALOG_METRICS):
        boot, method = bootstrap_catalog_metrics(run_a, run_b, band, n_boot=n_boot, rng=rng)
    out: dict[str, MetricDiff] = {}
    for name in [n for n in REGISTRY if n in ma or n in mb]:
        a, b = ma.get(name), mb.get(name)
        diff = None
        if a is not None and b is not None and a.value is not None and b.value is not None:
            diff = float(b.value - a.value)
        if name in CATALOG_METRICS and method is not None:
            unc, n_ok = boot.get(name, (None, 0))
            out[name] = MetricDiff(name, REGISTRY[name].unit, a, b, diff,
                                   unc if diff is not None else None, method, n_ok)
        else:
            out[name] = MetricDiff(name, REGISTRY[name].unit, a, b, diff,
                                   _quadrature(a, b) if diff is not None else None,
                                   "quadrature, upper bound" if shared_simulation else
                                   "quadrature")
    return out
