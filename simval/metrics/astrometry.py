"""Astrometric offsets of measured positions from the truth, in milliarcseconds.

Definitions (matched stars; offsets from :func:`simval.match.sky_offsets_mas`)
------------------------------------------------------------------------------
* ``dra_cosdec = (RA_measured - RA_true) * cos(Dec)`` (gnomonic xi about the truth),
  **positive = measured east** of the truth; ``ddec = Dec_measured - Dec_true``,
  **positive = measured north**; mas.
* ``astrom_dra_mas``, ``astrom_ddec_mas``: medians of the two components, uncertainty
  ``sqrt(pi / 2) * NMAD / sqrt(n)``;
* ``astrom_offset_mas``: length of the median offset vector;
* ``astrom_rms_mas``: ``sqrt(mean(dra_cosdec**2 + ddec**2))`` — the 2-D RMS *about zero*,
  so a systematic shift counts (a 20 mas shift reads 20 mas; a shifted distortion fails
  a threshold on it); uncertainty from the delta method,
  ``std(r**2) / (2 * rms * sqrt(n))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.match import sky_offsets_mas
from simval.metrics.photometry import MEDIAN_ERR_FACTOR, nmad
from simval.metrics_schema import Measurement

__all__ = ["AstrometryResult", "astrometric_offsets"]


@dataclass(frozen=True)
class AstrometryResult:
    """Astrometric offsets measured - truth of a matched sample, mas.

    Attributes
    ----------
    offsets_ra_mas, offsets_dec_mas : ndarray
        Per-source offsets dra_cosdec and ddec (finite ones only).
    dra_mas, dra_err_mas, ddec_mas, ddec_err_mas : float
        Medians and their uncertainties.
    nmad_ra_mas, nmad_dec_mas : float
        Robust scatter per axis.
    offset_mas : float
        Length of the median offset vector.
    rms_mas, rms_err_mas : float
        2-D RMS about zero and its uncertainty.
    n : int
    """

    offsets_ra_mas: NDArray[np.float64]
    offsets_dec_mas: NDArray[np.float64]
    dra_mas: float
    dra_err_mas: float
    ddec_mas: float
    ddec_err_mas: float
    nmad_ra_mas: float
    nmad_dec_mas: float
    offset_mas: float
    rms_mas: float
    rms_err_mas: float
    n: int

    def details(self) -> dict[str, Any]:
        return {"nmad_ra_mas": self.nmad_ra_mas, "nmad_dec_mas": self.nmad_dec_mas}

    def measurements(self) -> dict[str, Measurement]:
        """``astrom_dra_mas``, ``astrom_ddec_mas``, ``astrom_offset_mas``,
        ``astrom_rms_mas``."""
        d = self.details()
        off_err = float(np.hypot(self.dra_err_mas, self.ddec_err_mas))
        return {
            "astrom_dra_mas": Measurement.of("astrom_dra_mas", self.dra_mas,
                                             self.dra_err_mas, self.n, d),
            "astrom_ddec_mas": Measurement.of("astrom_ddec_mas", self.ddec_mas,
                                              self.ddec_err_mas, self.n, d),
            "astrom_offset_mas": Measurement.of("astrom_offset_mas", self.offset_mas,
                                                off_err, self.n),
            "astrom_rms_mas": Measurement.of("astrom_rms_mas", self.rms_mas,
                                             self.rms_err_mas, self.n, d),
        }


def astrometric_offsets(measured_ra: ArrayLike, measured_dec: ArrayLike,
                        true_ra: ArrayLike, true_dec: ArrayLike) -> AstrometryResult:
    """Median offsets and RMS of measured positions about their true positions.

    Parameters
    ----------
    measured_ra, measured_dec : array_like
        Measured ICRS positions of matched sources, deg.
    true_ra, true_dec : array_like
        Their true positions, deg (same shape).

    Returns
    -------
    AstrometryResult
        All in mas; NaN values with n = 0 for an empty sample.
    """

    dx, dy = sky_offsets_mas(measured_ra, measured_dec, true_ra, true_dec)
    dx, dy = np.atleast_1d(dx), np.atleast_1d(dy)
    ok = np.isfinite(dx) & np.isfinite(dy)
    dx, dy = dx[ok], dy[ok]
    n = int(dx.size)
    if n == 0:
        nan = float("nan")
        return AstrometryResult(dx, dy, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0)
    mx, my = float(np.median(dx)), float(np.median(dy))
    sx, sy = nmad(dx), nmad(dy)
    r2 = dx**2 + dy**2
    rms = float(np.sqrt(np.mean(r2)))
    rms_err = float(np.std(r2) / (2.0 * rms * np.sqrt(n))) if rms > 0 else 0.0
    root_n = np.sqrt(n)
    return AstrometryResult(dx, dy, mx, MEDIAN_ERR_FACTOR * sx / root_n, my,
                            MEDIAN_ERR_FACTOR * sy / root_n, sx, sy,
                            float(np.hypot(mx, my)), rms, rms_err, n)
