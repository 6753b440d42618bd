"""Photometric bias and robust scatter of measured against true AB magnitudes.

Definitions
-----------
* ``dmag = measured - true`` (AB mag). **Negative = measured brighter** than injected.
  A flux ratio ``r = F_measured / F_true`` gives ``dmag = -2.5 log10 r`` (1.05 -> -0.0530).
* bias = median(dmag); its uncertainty ``sqrt(pi / 2) * NMAD / sqrt(n)`` (the asymptotic
  error of a median of a Gaussian sample);
* scatter = NMAD = ``1.4826 * median(|dmag - median(dmag)|)``
  (:func:`astropy.stats.mad_std`), equal to sigma for a Gaussian; its uncertainty
  ``1.1664 * NMAD / sqrt(n)`` (MAD has 36.75% Gaussian efficiency);
* outliers: ``|dmag - median| > outlier_mag`` (0.1 mag default), as a fraction with a
  Wilson interval. This is what shows ``outlier_detection`` clipping the cores of a few
  bright undersampled stars (0.1-0.3 mag too faint) while the median stays small.

Samples (from the truth ``type``; the measured ``is_extended`` is not used):
stars use ``aper_total_abmag`` (aperture-corrected total), galaxies ``isophotal_abmag``,
and the *bright isolated star* sample is selected by :func:`select_bright_isolated_stars`.
The galaxies' isophotal-minus-total magnitude mixes calibration with the catalog's
definition; :mod:`simval.metrics.galaxy_photometry` splits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.match import column, flag_bright_neighbours, radec_of
from simval.metrics.completeness import as_bin_edges, fraction_with_interval
from simval.metrics_schema import Measurement

__all__ = [
    "BinnedDeltaMag",
    "PhotometryResult",
    "delta_mag",
    "nmad",
    "photometric_bias",
    "select_bright_isolated_stars",
]

#: sqrt(pi/2): asymptotic error of a Gaussian sample's median in units of sigma/sqrt(n).
MEDIAN_ERR_FACTOR = float(np.sqrt(np.pi / 2.0))
#: Asymptotic error of the NMAD of a Gaussian sample in units of sigma/sqrt(n).
NMAD_ERR_FACTOR = 1.1664

SAMPLES = {"star": "star", "galaxy": "galaxy", "bright_star": "bright_star"}


def nmad(x: ArrayLike) -> float:
    """Normalised median absolute deviation, ``1.4826 * median(|x - median(x)|)``.

    NaN values are ignored; NaN for an empty sample. Same unit as ``x``.
    """
    from astropy.stats import mad_std

    a = np.asarray(x, np.float64)
    a = a[np.isfinite(a)]
    return float(mad_std(a)) if a.size else float("nan")


def delta_mag(measured_mag: ArrayLike, true_mag: ArrayLike) -> NDArray[np.float64]:
    """``measured - true`` in mag (negative = measured brighter)."""
    return np.asarray(measured_mag, np.float64) - np.asarray(true_mag, np.float64)


@dataclass(frozen=True)
class BinnedDeltaMag:
    """Median and NMAD of dmag per bin of true AB magnitude (NaN in empty bins)."""

    bin_edges: NDArray[np.float64]
    n: NDArray[np.int64]
    median: NDArray[np.float64]
    median_err: NDArray[np.float64]
    nmad: NDArray[np.float64]

    def details(self) -> dict[str, Any]:
        return {"bin_edges_mag": self.bin_edges, "n": self.n, "median_mag": self.median,
                "median_err_mag": self.median_err, "nmad_mag": self.nmad}


@dataclass(frozen=True)
class PhotometryResult:
    """Photometric bias and scatter of one sample.

    Attributes
    ----------
    sample : {"star", "galaxy", "bright_star"}
    bias_mag, bias_err_mag : float
        median(measured - true) and its uncertainty, mag (negative = measured brighter).
    nmad_mag, nmad_err_mag : float
        Robust scatter and its uncertainty, mag.
    n : int
        Sources with finite measured and true magnitudes.
    outlier_frac : float
        Fraction with ``|dmag - bias| > outlier_mag``.
    outlier_mag : float
    outliers : list of dict
        ``{"index", "true_mag", "dmag"}`` of each outlier (index into the input arrays).
    binned : BinnedDeltaMag
    """

    sample: str
    bias_mag: float
    bias_err_mag: float
    nmad_mag: float
    nmad_err_mag: float
    n: int
    outlier_frac: float
    outlier_frac_err: float
    outlier_mag: float
    outliers: list[dict[str, float]]
    binned: BinnedDeltaMag

    def measurements(self) -> dict[str, Measurement]:
        """``phot_bias_<sample>_mag``, ``phot_nmad_<sample>_mag`` (and, for the bright
        star sample, ``phot_outlier_frac_bright_star``)."""
        d = self.binned.details()
        out = {
            f"phot_bias_{self.sample}_mag": Measurement.of(
                f"phot_bias_{self.sample}_mag", self.bias_mag, self.bias_err_mag, self.n, d),
            f"phot_nmad_{self.sample}_mag": Measurement.of(
                f"phot_nmad_{self.sample}_mag", self.nmad_mag, self.nmad_err_mag, self.n),
        }
        if self.sample == "bright_star":
            out["phot_outlier_frac_bright_star"] = Measurement.of(
                "phot_outlier_frac_bright_star", self.outlier_frac, self.outlier_frac_err,
                self.n, {"outlier_mag": self.outlier_mag, "outliers": self.outliers})
        return out


def _binned(m: NDArray[np.float64], dm: NDArray[np.float64],
            edges: NDArray[np.float64]) -> BinnedDeltaMag:
    nb = edges.size - 1
    idx = np.digitize(m, edges) - 1
    n = np.zeros(nb, np.int64)
    med = np.full(nb, np.nan)
    sc = np.full(nb, np.nan)
    for b in range(nb):
        v = dm[idx == b]
        n[b] = v.size
        if v.size:
            med[b] = np.median(v)
            sc[b] = nmad(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = MEDIAN_ERR_FACTOR * sc / np.sqrt(n)
    return BinnedDeltaMag(edges, n, med, err, sc)


def photometric_bias(measured_mag: ArrayLike, true_mag: ArrayLike, *,
                     sample: str = "star", bins: float | ArrayLike = 0.5,
                     outlier_mag: float = 0.1) -> PhotometryResult:
    """Bias (median dmag) and NMAD of a matched sample, overall and per true-mag bin.

    Parameters
    ----------
    measured_mag : array_like
        Measured AB magnitudes of the matched counterparts (NaN = not measured; dropped).
    true_mag : array_like
        True AB magnitudes, same shape.
    sample : {"star", "galaxy", "bright_star"}
        Names the metrics (``phot_bias_<sample>_mag``).
    bins : float or array_like
        Bin width (mag) or edges of true magnitude for the binned statistics.
    outlier_mag : float
        Outlier threshold on ``|dmag - median|``, mag.

    Returns
    -------
    PhotometryResult
    """

    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {', '.join(SAMPLES)}, not {sample!r}")
    mm = np.asarray(measured_mag, np.float64)
    mt = np.asarray(true_mag, np.float64)
    if mm.shape != mt.shape:
        raise ValueError(f"measured_mag {mm.shape} and true_mag {mt.shape} differ in shape")
    ok = np.isfinite(mm) & np.isfinite(mt)
    index = np.flatnonzero(ok)
    dm = (mm - mt)[ok]
    n = int(dm.size)
    bias = float(np.median(dm)) if n else float("nan")
    sc = nmad(dm)
    root_n = np.sqrt(n) if n else np.nan
    out_mask = np.abs(dm - bias) > outlier_mag
    frac = fraction_with_interval(int(out_mask.sum()), n)
    outliers = [{"index": int(index[k]), "true_mag": float(mt[index[k]]),
                 "dmag": float(dm[k])} for k in np.flatnonzero(out_mask)]
    binned = _binned(mt[ok], dm, as_bin_edges(bins, mt[ok]))
    return PhotometryResult(sample, bias, MEDIAN_ERR_FACTOR * sc / root_n, sc,
                            NMAD_ERR_FACTOR * sc / root_n, n, frac.value, frac.uncertainty,
                            outlier_mag, outliers, binned)


def _typical_coverage(nexp: NDArray[np.int64]) -> int:
    """The most common exposure count (the larger on a tie), 0 for none."""
    if not nexp.size:
        return 0
    values, counts = np.unique(nexp, return_counts=True)
    return int(values[counts == counts.max()].max())


def select_bright_isolated_stars(truth: Any, *, mag_max: float | None = None,
                                 snr: ArrayLike | None = None, snr_min: float | None = None,
                                 min_exposures: int | None = None,
                                 blend_radius_mas: float = 500.0,
                                 blend_delta_mag: float = 0.0) -> NDArray[np.bool_]:
    """Mask of truth rows in the bright isolated star sample.

    A source qualifies if all hold:

    * ``type == "star"``;
    * ``in_footprint`` (if the column exists);
    * full coverage: ``n_exposures >= min_exposures`` (default: the most common
      ``n_exposures`` among in-footprint stars, the larger on a tie: the dithers of one
      visit on a mosaic whose visits overlap, where the largest count is met only in the
      overlaps; skipped without the column);
    * isolated: not ``has_bright_neighbour`` (computed with
      :func:`simval.match.flag_bright_neighbours` within ``blend_radius_mas`` and
      ``blend_delta_mag`` over the whole truth table if the column is absent);
    * bright: ``mag_true_ab < mag_max`` if given, and ``snr >= snr_min`` if given (``snr``
      per truth row; default the truth column ``snr_expected``). At least one of
      ``mag_max`` / ``snr_min`` must be given.

    Parameters
    ----------
    truth : Table
        Truth table (column contract in :mod:`simval.match`).
    mag_max : float, optional
        Faint limit, AB mag.
    snr, snr_min : array_like, float, optional
        S/N per truth row and its lower limit.
    min_exposures : int, optional
        Minimum number of covering exposures.
    blend_radius_mas, blend_delta_mag : float
        Blending radius (mas) and magnitude margin for the isolation flag if computed.

    Returns
    -------
    ndarray of bool
    """

    if mag_max is None and snr_min is None:
        raise ValueError("give mag_max and/or snr_min to define 'bright'")
    names = list(truth.colnames) if hasattr(truth, "colnames") else list(truth)
    kind = np.char.lower(np.asarray(truth["type"]).astype(str))
    mag = column(truth, "mag_true_ab")
    sel = kind == "star"
    if "in_footprint" in names:
        sel &= column(truth, "in_footprint", bool)
    if "n_exposures" in names:
        nexp = column(truth, "n_exposures", np.int64)
        if min_exposures is None:
            min_exposures = _typical_coverage(nexp[sel & (nexp > 0)])
        sel &= nexp >= min_exposures
    if "has_bright_neighbour" in names:
        crowded = column(truth, "has_bright_neighbour", bool)
    else:
        ra, dec = radec_of(truth)
        crowded = flag_bright_neighbours(ra, dec, mag, blend_radius_mas, blend_delta_mag)
    sel &= ~crowded
    if mag_max is not None:
        sel &= mag < mag_max
    if snr_min is not None:
        s = column(truth, "snr_expected") if snr is None else np.asarray(snr, np.float64)
        with np.errstate(invalid="ignore"):
            sel &= s >= snr_min
    return sel
