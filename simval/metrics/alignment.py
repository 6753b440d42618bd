"""Alignment: how far each exposure's final WCS puts the sky from the truth, after tweakreg.

Per exposure, the residual ``r = WCS_final(p) - WCS_true(p)`` (mas; RA cos Dec, Dec) is the
mean over a grid of detector pixels ``p`` (:func:`simval.pointing_errors.wcs_offsets_mas`):
``WCS_final`` is what image3 resampled with (tweakreg's output, or the cal file's WCS when
tweakreg was skipped) and ``WCS_true`` the cal file's WCS corrected by the injected error
of the recorded pointing. Without an ``abs_refcat`` tweakreg aligns the exposures to each
other, not to the sky, so two numbers answer two questions:

* ``align_rel_max_mas`` — the largest ``|r_i - median(r)|``: exposures misaligned with each
  other smear every source of the mosaic;
* ``align_abs_mas`` — ``|median(r)|``: the whole mosaic offset from the sky (what an absolute
  reference catalog fixes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simval.metrics_schema import Measurement

__all__ = ["AlignmentResult", "alignment_residuals"]


@dataclass(frozen=True)
class AlignmentResult:
    """Per-exposure residuals (mas) and their summary; ``source`` says which WCS was
    final (tweakreg's, or the cal file's when tweakreg was skipped)."""

    names: tuple[str, ...]
    d_ra_mas: np.ndarray
    d_dec_mas: np.ndarray
    injected_ra_mas: np.ndarray
    injected_dec_mas: np.ndarray
    source: str

    @property
    def median_mas(self) -> tuple[float, float]:
        return float(np.median(self.d_ra_mas)), float(np.median(self.d_dec_mas))

    @property
    def relative_mas(self) -> np.ndarray:
        m_ra, m_dec = self.median_mas
        return np.hypot(self.d_ra_mas - m_ra, self.d_dec_mas - m_dec)

    def measurements(self) -> dict[str, Measurement]:
        """``align_rel_max_mas``, ``align_rel_rms_mas`` and ``align_abs_mas``."""
        rel = self.relative_mas
        n = len(self.names)
        details = {
            "final_wcs": self.source,
            "per_exposure": {
                name: {"residual_mas": [round(float(a), 3), round(float(b), 3)],
                       "injected_error_mas": [round(float(c), 3), round(float(d), 3)]}
                for name, a, b, c, d in zip(self.names, self.d_ra_mas, self.d_dec_mas,
                                            self.injected_ra_mas, self.injected_dec_mas,
                                            strict=True)},
            "median_residual_mas": [round(v, 3) for v in self.median_mas],
        }
        return {
            "align_rel_max_mas": Measurement.of("align_rel_max_mas", float(np.max(rel)),
                                                None, n, details),
            "align_rel_rms_mas": Measurement.of("align_rel_rms_mas",
                                                float(np.sqrt(np.mean(rel ** 2))), None, n,
                                                details),
            "align_abs_mas": Measurement.of("align_abs_mas", float(np.hypot(*self.median_mas)),
                                            None, n, details),
        }


def alignment_residuals(names: Sequence[str], residual_mas: Sequence[tuple[float, float]],
                        injected_mas: Sequence[tuple[float, float]], source: str
                        ) -> AlignmentResult:
    """Collect per-exposure residuals ``(RA cos Dec, Dec)`` in mas (one per name) and the
    injected pointing errors, into an :class:`AlignmentResult`."""
    if not names:
        raise ValueError("no exposure to measure the alignment of")
    r = np.asarray(residual_mas, float).reshape(-1, 2)
    e = np.asarray(injected_mas, float).reshape(-1, 2)
    if len(r) != len(names) or len(e) != len(names):
        raise ValueError(f"{len(names)} exposures, {len(r)} residuals, {len(e)} errors")
    return AlignmentResult(tuple(names), r[:, 0], r[:, 1], e[:, 0], e[:, 1], source)
