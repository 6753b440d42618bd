"""Completeness (vs true magnitude), the 50%/90% completeness magnitudes, and purity.

Definitions
-----------
* completeness = (truth sources with a measured counterpart) / (truth sources), counted
  only over truth sources inside the mosaic footprint, per bin of *true* AB magnitude;
* purity = (measured sources with a truth counterpart) / (measured sources), per bin of
  *measured* AB magnitude; spurious fraction = 1 - purity;
* confidence intervals are binomial (Wilson score by default, 68.27% = 1 sigma), from
  :func:`astropy.stats.binom_conf_interval`;
* the magnitude of X% completeness is where the binned curve falls through X%: the
  faintest non-empty bin whose completeness is >= X% and the next non-empty fainter bin,
  interpolated linearly between bin centres (robust to a dip at the bright end, e.g. one
  saturated star). Its uncertainty is half the distance between the crossings of the lower
  and upper interval curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics_schema import Measurement

__all__ = [
    "CompletenessCurve",
    "FractionResult",
    "PurityCurve",
    "as_bin_edges",
    "completeness_above_snr",
    "completeness_curve",
    "estimate_truth_snr",
    "fraction_with_interval",
    "mag_bins",
    "magnitude_at_completeness",
    "purity_curve",
]

ONE_SIGMA = 0.682689


def mag_bins(mags: ArrayLike, width: float = 0.5) -> NDArray[np.float64]:
    """Bin edges of ``width`` mag on a grid of ``width`` covering the finite ``mags``."""
    m = np.asarray(mags, np.float64)
    m = m[np.isfinite(m)]
    if m.size == 0:
        return np.array([0.0, width])
    lo = np.floor(m.min() / width) * width
    hi = np.floor(m.max() / width) * width + width
    return np.arange(lo, hi + 0.5 * width, width)


def as_bin_edges(bins: float | ArrayLike, mags: ArrayLike) -> NDArray[np.float64]:
    """Bin edges from a width (:func:`mag_bins` of ``mags``) or validated explicit edges."""
    if np.ndim(bins) == 0:
        return mag_bins(mags, float(bins))  # type: ignore[arg-type]
    edges = np.asarray(bins, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be a width or increasing bin edges")
    return edges


def _interval(k: NDArray[Any], n: NDArray[Any], confidence_level: float,
              interval: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from astropy.stats import binom_conf_interval

    k = np.asarray(k, np.int64)
    n = np.asarray(n, np.int64)
    lo = np.full(k.shape, np.nan)
    hi = np.full(k.shape, np.nan)
    ok = n > 0
    if np.any(ok):
        ci = binom_conf_interval(k[ok], n[ok], confidence_level=confidence_level,
                                 interval=interval)
        lo[ok], hi[ok] = ci[0], ci[1]
    return lo, hi


@dataclass(frozen=True)
class FractionResult:
    """A binomial fraction k/n with its confidence interval (dimensionless, 0..1)."""

    value: float
    lower: float
    upper: float
    k: int
    n: int
    confidence_level: float

    @property
    def uncertainty(self) -> float:
        """Half the width of the interval (a symmetric 1-sigma equivalent)."""
        return 0.5 * (self.upper - self.lower)


def fraction_with_interval(k: int, n: int, *, confidence_level: float = ONE_SIGMA,
                           interval: str = "wilson") -> FractionResult:
    """k/n with a binomial confidence interval (NaN if n == 0)."""
    lo, hi = _interval(np.array([k]), np.array([n]), confidence_level, interval)
    value = k / n if n > 0 else np.nan
    return FractionResult(float(value), float(lo[0]), float(hi[0]), int(k), int(n),
                          confidence_level)


def magnitude_at_completeness(centres: ArrayLike, fraction: ArrayLike,
                              level: float) -> float:
    """Magnitude where a binned completeness curve falls through ``level``.

    Parameters
    ----------
    centres : array_like
        Bin centres, AB mag, increasing (bright to faint).
    fraction : array_like
        Completeness per bin (NaN for empty bins, which are skipped).
    level : float
        Completeness level, 0..1 (0.5 for the 50% magnitude).

    Returns
    -------
    float
        Interpolated magnitude between the faintest bin with completeness >= ``level``
        and the next non-empty bin; NaN if no bin reaches ``level`` or none falls below
        it on the faint side.
    """
    c = np.asarray(centres, np.float64)
    f = np.asarray(fraction, np.float64)
    ok = np.isfinite(f)
    c, f = c[ok], f[ok]
    above = np.flatnonzero(f >= level)
    if above.size == 0 or above[-1] == f.size - 1:
        return float("nan")
    k = above[-1]
    f0, f1 = f[k], f[k + 1]
    return float(c[k] + (f0 - level) / (f0 - f1) * (c[k + 1] - c[k]))


@dataclass(frozen=True)
class CompletenessCurve:
    """Completeness per bin of true AB magnitude.

    Attributes
    ----------
    bin_edges : ndarray
        AB mag, length nbins + 1.
    n_true, n_detected : ndarray of int
        Truth sources (inside the footprint) and how many of them were matched, per bin.
    fraction, lower, upper : ndarray
        Completeness (0..1) and its confidence interval per bin (NaN where n_true == 0).
    overall : FractionResult
        Over all truth sources given (the ``completeness`` metric).
    mag50, mag90 : float
        Magnitudes of 50% and 90% completeness, AB mag (NaN if not crossed).
    mag50_err, mag90_err : float
        Their uncertainties, mag (from the interval curves; NaN if undetermined).
    confidence_level : float
    """

    bin_edges: NDArray[np.float64]
    n_true: NDArray[np.int64]
    n_detected: NDArray[np.int64]
    fraction: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    overall: FractionResult
    mag50: float
    mag50_err: float
    mag90: float
    mag90_err: float
    confidence_level: float

    @property
    def bin_centres(self) -> NDArray[np.float64]:
        return 0.5 * (self.bin_edges[1:] + self.bin_edges[:-1])

    def details(self) -> dict[str, Any]:
        return {"bin_edges_mag": self.bin_edges, "n_true": self.n_true,
                "n_detected": self.n_detected, "fraction": self.fraction,
                "fraction_lower": self.lower, "fraction_upper": self.upper,
                "confidence_level": self.confidence_level}

    def measurements(self) -> dict[str, Measurement]:
        """``completeness``, ``completeness_50_mag``, ``completeness_90_mag``."""
        d = self.details()
        o = self.overall
        n = int(self.n_true.sum())
        return {
            "completeness": Measurement.of(
                "completeness", o.value, o.uncertainty, o.n,
                {"k": o.k, "lower": o.lower, "upper": o.upper, **d}),
            "completeness_50_mag": Measurement.of("completeness_50_mag", self.mag50,
                                                  self.mag50_err, n),
            "completeness_90_mag": Measurement.of("completeness_90_mag", self.mag90,
                                                  self.mag90_err, n),
        }


def _crossing_err(centres: NDArray[np.float64], lower: NDArray[np.float64],
                  upper: NDArray[np.float64], level: float) -> float:
    m_lo = magnitude_at_completeness(centres, lower, level)
    m_hi = magnitude_at_completeness(centres, upper, level)
    return 0.5 * abs(m_hi - m_lo) if np.isfinite(m_lo) and np.isfinite(m_hi) else np.nan


def completeness_curve(true_mag: ArrayLike, detected: ArrayLike, *,
                       bins: float | ArrayLike = 0.5, confidence_level: float = ONE_SIGMA,
                       interval: str = "wilson") -> CompletenessCurve:
    """Completeness vs true magnitude, with binomial intervals and 50%/90% magnitudes.

    Parameters
    ----------
    true_mag : array_like
        True AB magnitudes of the truth sources to count (select those inside the
        footprint first), shape (n,).
    detected : array_like of bool
        Whether each has a measured counterpart (``MatchResult.matched``), shape (n,).
    bins : float or array_like
        Bin width in mag (on a grid of that width), or bin edges.
    confidence_level : float
        Of the binomial intervals (default 1 sigma).
    interval : {"wilson", "jeffreys", "flat", "wald"}
        Interval method of :func:`astropy.stats.binom_conf_interval`.

    Returns
    -------
    CompletenessCurve
    """
    m = np.asarray(true_mag, np.float64)
    det = np.asarray(detected, bool)
    if m.shape != det.shape:
        raise ValueError(f"true_mag {m.shape} and detected {det.shape} differ in shape")
    edges = as_bin_edges(bins, m)
    n_true = np.histogram(m, edges)[0].astype(np.int64)
    n_det = np.histogram(m[det], edges)[0].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n_true > 0, n_det / np.maximum(n_true, 1), np.nan)
    lo, hi = _interval(n_det, n_true, confidence_level, interval)
    centres = 0.5 * (edges[1:] + edges[:-1])
    overall = fraction_with_interval(int(det.sum()), int(det.size),
                                     confidence_level=confidence_level, interval=interval)
    return CompletenessCurve(
        edges, n_true, n_det, frac, lo, hi, overall,
        magnitude_at_completeness(centres, frac, 0.5), _crossing_err(centres, lo, hi, 0.5),
        magnitude_at_completeness(centres, frac, 0.9), _crossing_err(centres, lo, hi, 0.9),
        confidence_level)


@dataclass(frozen=True)
class PurityCurve:
    """Purity (matched / measured) per bin of measured AB magnitude.

    ``n_nan`` measured sources have no finite magnitude (non-positive flux); they count
    in ``overall`` but in no bin.
    """

    bin_edges: NDArray[np.float64]
    n_measured: NDArray[np.int64]
    n_matched: NDArray[np.int64]
    purity: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    overall: FractionResult
    n_nan: int
    confidence_level: float

    def details(self) -> dict[str, Any]:
        return {"bin_edges_mag": self.bin_edges, "n_measured": self.n_measured,
                "n_matched": self.n_matched, "purity": self.purity,
                "purity_lower": self.lower, "purity_upper": self.upper,
                "n_no_magnitude": self.n_nan,
                "confidence_level": self.confidence_level}

    def measurements(self) -> dict[str, Measurement]:
        """``purity`` and ``spurious_fraction``."""
        o = self.overall
        d = {"k_matched": o.k, "lower": o.lower, "upper": o.upper, **self.details()}
        return {
            "purity": Measurement.of("purity", o.value, o.uncertainty, o.n, d),
            "spurious_fraction": Measurement.of(
                "spurious_fraction", 1.0 - o.value, o.uncertainty, o.n,
                {"n_spurious": o.n - o.k, "lower": 1.0 - o.upper, "upper": 1.0 - o.lower}),
        }


def purity_curve(measured_mag: ArrayLike, matched: ArrayLike, *,
                 bins: float | ArrayLike = 0.5, confidence_level: float = ONE_SIGMA,
                 interval: str = "wilson") -> PurityCurve:
    """Purity vs measured magnitude.

    Parameters
    ----------
    measured_mag : array_like
        Measured AB magnitudes of all detections (NaN allowed), shape (n,).
    matched : array_like of bool
        ``MatchResult.measured_matched``: the detection has a truth counterpart.
    bins, confidence_level, interval
        As in :func:`completeness_curve`.

    Returns
    -------
    PurityCurve
    """
    m = np.asarray(measured_mag, np.float64)
    ok = np.asarray(matched, bool)
    if m.shape != ok.shape:
        raise ValueError(f"measured_mag {m.shape} and matched {ok.shape} differ in shape")
    finite = np.isfinite(m)
    edges = as_bin_edges(bins, m[finite])
    n_meas = np.histogram(m[finite], edges)[0].astype(np.int64)
    n_ok = np.histogram(m[finite & ok], edges)[0].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pur = np.where(n_meas > 0, n_ok / np.maximum(n_meas, 1), np.nan)
    lo, hi = _interval(n_ok, n_meas, confidence_level, interval)
    overall = fraction_with_interval(int(ok.sum()), int(ok.size),
                                     confidence_level=confidence_level, interval=interval)
    return PurityCurve(edges, n_meas, n_ok, pur, lo, hi, overall, int((~finite).sum()),
                       confidence_level)


def estimate_truth_snr(true_mag: ArrayLike, measured_snr: ArrayLike, detected: ArrayLike,
                       groups: ArrayLike | None = None) -> NDArray[np.float64]:
    """Estimate the S/N of every truth source (missed ones too) from the matched ones.

    Per group (e.g. the truth ``type``), a robust straight line ``log10(S/N) = a + b m``
    (Theil-Sen, :func:`scipy.stats.theilslopes`) is fitted to the matched sources with
    positive S/N and evaluated at every source's true magnitude. A group with fewer than
    3 usable sources gets NaN.

    Parameters
    ----------
    true_mag : array_like
        True AB magnitudes, shape (n,).
    measured_snr : array_like
        Measured S/N (flux / flux_err) of the counterpart; ignored where not detected.
    detected : array_like of bool
        Whether each truth source was matched.
    groups : array_like, optional
        Group label per source (fits are separate per label).

    Returns
    -------
    ndarray
        Estimated S/N per truth source.
    """
    from scipy.stats import theilslopes

    m = np.asarray(true_mag, np.float64)
    snr = np.asarray(measured_snr, np.float64)
    det = np.asarray(detected, bool)
    g = np.zeros(m.shape, np.int64) if groups is None else np.asarray(groups)
    out = np.full(m.shape, np.nan)
    for label in np.unique(g):
        sel = g == label
        use = sel & det & np.isfinite(snr) & (snr > 0) & np.isfinite(m)
        if use.sum() < 3:
            continue
        slope, intercept, *_ = theilslopes(np.log10(snr[use]), m[use])
        out[sel] = 10.0 ** (intercept + slope * m[sel])
    return out


def completeness_above_snr(snr: ArrayLike, detected: ArrayLike, snr_min: float = 20.0, *,
                           confidence_level: float = ONE_SIGMA) -> FractionResult:
    """Completeness of the truth sources whose (expected) S/N is at least ``snr_min``.

    Parameters
    ----------
    snr : array_like
        S/N per truth source (``snr_expected`` of the truth, or
        :func:`estimate_truth_snr`), shape (n,); NaN never qualifies.
    detected : array_like of bool
        ``MatchResult.matched`` (restricted like ``snr``).
    snr_min : float
        Threshold (20 for the ``completeness_snr20`` metric).

    Returns
    -------
    FractionResult
    """
    s = np.asarray(snr, np.float64)
    det = np.asarray(detected, bool)
    with np.errstate(invalid="ignore"):
        sel = s >= snr_min
    return fraction_with_interval(int((det & sel).sum()), int(sel.sum()),
                                  confidence_level=confidence_level)
