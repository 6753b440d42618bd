"""Catalog-level comparison: the same sources in the two pipeline catalogs.

B's catalog is matched to A's on the sky, one-to-one (:func:`simval.match.match_sky`,
closest pairs first) within the match radius the evaluation used (the scenario's
``comparison.match_radius_mas``, else the PSF FWHM of the filter). No truth is needed.

For every matched pair the flux ratio ``B / A`` of ``flux_column`` (default
``aper_total_flux``, the aperture-corrected total flux in Jy) is computed where both
fluxes are finite and A's is positive. The **headline** is the median ratio over the
pairs whose S/N in A (``flux / flux_err``) exceeds ``snr_min`` (20), with a bootstrap
uncertainty (standard deviation of the median over resamples of those pairs, seeded
:class:`numpy.random.Generator`). A ratio of 1.05 means B measures 5% more flux than A
(-0.053 mag). The running median and NMAD of the ratio against A's AB magnitude
(``-2.5 log10(flux / 3631 Jy)``) in equal-count bins (:func:`simval.report.plots.running_stats`)
show whether a change depends on brightness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simval.constants import AB_FLUX_JY
from simval.match import column, match_sky, radec_of
from simval.report.plots import running_stats

__all__ = ["CatalogComparison", "compare_catalogs"]

#: Defaults: flux column, S/N cut of the headline, bootstrap resamples.
FLUX_COLUMN = "aper_total_flux"
SNR_MIN = 20.0


@dataclass
class CatalogComparison:
    """See the module docstring. Ratios are dimensionless; magnitudes AB (A's flux)."""

    flux_column: str
    radius_mas: float
    snr_min: float
    n_a: int
    n_b: int
    n_matched: int
    median_ratio: float | None = None
    uncertainty: float | None = None
    n: int = 0
    n_boot: int = 0
    note: str | None = None
    mag_a: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    ratio: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    snr_a: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    running: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def median_ratio_mag(self) -> float | None:
        """The headline as a magnitude difference B - A, ``-2.5 log10(ratio)``."""
        if self.median_ratio is None or not self.median_ratio > 0:
            return None
        return float(-2.5 * np.log10(self.median_ratio))

    def to_json(self) -> dict[str, Any]:
        run = self.running
        return {
            "flux_column": self.flux_column, "radius_mas": self.radius_mas,
            "snr_min": self.snr_min, "n_a": self.n_a, "n_b": self.n_b,
            "n_matched": self.n_matched, "median_flux_ratio": self.median_ratio,
            "uncertainty": self.uncertainty, "n": self.n, "n_boot": self.n_boot,
            "median_flux_ratio_mag": self.median_ratio_mag, "note": self.note,
            "running": None if run is None else {"mag": run[0], "median": run[1],
                                                 "nmad": run[2]},
        }


def _flux(table: Any, name: str) -> np.ndarray:
    return column(table, name)


def compare_catalogs(cat_a: Any, cat_b: Any, *, radius_mas: float,
                     flux_column: str = FLUX_COLUMN, snr_min: float = SNR_MIN,
                     n_boot: int = 200, rng: np.random.Generator | None = None
                     ) -> CatalogComparison:
    """Match B's catalog to A's and compare fluxes (see the module docstring).

    Parameters
    ----------
    cat_a, cat_b : Table
        jwst ``source_catalog`` tables (``sky_centroid`` or ``ra``/``dec``).
    radius_mas : float
        Match radius, mas.
    flux_column : str
        Flux column (Jy) in both; its error is ``<flux_column>_err`` (for the S/N in A).
    snr_min : float
        S/N cut in A of the headline sample.
    n_boot : int
        Bootstrap resamples of the headline median (< 2: no uncertainty).
    rng : numpy Generator, optional
        Default ``numpy.random.default_rng(0)``.

    Raises
    ------
    KeyError
        If a catalog has no sky position or no ``flux_column``.
    """

    rng = np.random.default_rng(0) if rng is None else rng
    ra_a, dec_a = radec_of(cat_a)
    ra_b, dec_b = radec_of(cat_b)
    m = match_sky(ra_b, dec_b, ra_a, dec_a, radius_mas)
    ia, ib = m.truth_index, m.measured_index
    fa, fb = _flux(cat_a, flux_column)[ia], _flux(cat_b, flux_column)[ib]
    err_name = f"{flux_column}_err"
    names_a = cat_a.colnames if hasattr(cat_a, "colnames") else list(cat_a)
    note = None
    if err_name in names_a:
        ea = _flux(cat_a, err_name)[ia]
    else:
        ea = np.full(ia.size, np.nan)
        note = f"A's catalog has no {err_name}: no S/N, no headline"
    ok = np.isfinite(fa) & np.isfinite(fb) & (fa > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok, fb / fa, np.nan)
        snr = np.where(ok & (ea > 0), fa / ea, np.nan)
        mag = np.where(ok, -2.5 * np.log10(fa / AB_FLUX_JY), np.nan)
    out = CatalogComparison(flux_column, float(radius_mas), float(snr_min), len(ra_a),
                            len(ra_b), m.n_pairs, note=note, mag_a=mag, ratio=ratio,
                            snr_a=snr, running=running_stats(mag, ratio))
    with np.errstate(invalid="ignore"):
        head = np.isfinite(ratio) & (snr > snr_min)
    sel = ratio[head]
    out.n = int(sel.size)
    if sel.size:
        out.median_ratio = float(np.median(sel))
        if n_boot >= 2 and sel.size >= 2:
            picks = rng.integers(0, sel.size, (n_boot, sel.size))
            meds = np.median(sel[picks], axis=1)
            out.uncertainty, out.n_boot = float(np.std(meds, ddof=1)), int(n_boot)
    elif out.note is None:
        out.note = (f"no source matched in both catalogs has S/N > {snr_min:g} in A "
                    f"({m.n_pairs} matched)")
    return out
