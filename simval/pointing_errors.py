"""Errors in an exposure's recorded pointing: applying them, undoing them, measuring them.

An error ``e = (e_ra, e_dec)`` (mas; RA cos Dec and Dec) is the true pointing minus the
recorded one. The simulated pixels show the true sky; :func:`offset_recorded_pointing` moves
the aperture reference point the pipeline reads (``meta.wcsinfo.ra_ref``, ``dec_ref``) by
``-e``, so the WCS assign_wcs builds puts every source ``-e`` from where it is, which is what
tweakreg must undo. :func:`true_wcs` gives back the WCS the exposure should have (jwst's
``adjust_wcs`` moving the same reference point by ``+e``), and :func:`wcs_offsets_mas`
measures how far one WCS puts the detector's pixels from another.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MAS_PER_DEG", "WcsOffsets", "offset_recorded_pointing", "true_wcs",
           "wcs_offsets_mas"]

MAS_PER_DEG = 3.6e6


def _ref_shift_deg(error_mas: Sequence[float], dec_ref_deg: float) -> tuple[float, float]:
    """(dRA, dDec) of the reference point, deg, that moves the field by ``error_mas``."""
    e_ra, e_dec = (float(v) for v in error_mas)
    return (e_ra / MAS_PER_DEG / math.cos(math.radians(dec_ref_deg)), e_dec / MAS_PER_DEG)


def offset_recorded_pointing(src: str | os.PathLike, dst: str | os.PathLike,
                             error_mas: Sequence[float]) -> Path:
    """Copy the rate file ``src`` to ``dst`` with its recorded pointing off by ``-error_mas``
    (the reference point's RA_REF, DEC_REF moved; ROLL_REF kept). Returns ``dst``."""
    from stdatamodels.jwst import datamodels

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with datamodels.open(str(src)) as model:
        info = model.meta.wcsinfo
        if info.ra_ref is None or info.dec_ref is None:
            raise ValueError(f"{src}: meta.wcsinfo has no ra_ref/dec_ref (RA_REF, DEC_REF) to "
                             "offset")
        d_ra, d_dec = _ref_shift_deg(error_mas, info.dec_ref)
        info.ra_ref = float(info.ra_ref) - d_ra
        info.dec_ref = float(info.dec_ref) - d_dec
        model.save(str(dst))
    return dst


def true_wcs(wcs: Any, error_mas: Sequence[float]) -> Any:
    """The gwcs of a cal exposure whose recorded pointing was off by ``-error_mas``, moved
    back by ``+error_mas`` with ``jwst.tweakreg.utils.adjust_wcs``."""
    if not any(float(v) for v in error_mas):
        return wcs
    from jwst.tweakreg.utils import adjust_wcs

    dec_ref = _reference_dec(wcs)
    d_ra, d_dec = _ref_shift_deg(error_mas, dec_ref)
    return adjust_wcs(wcs, delta_ra=d_ra, delta_dec=d_dec)


def _reference_dec(wcs: Any) -> float:
    """Dec (deg) of the reference point in a cal gwcs's ``v23tosky`` transform."""
    for step in wcs.pipeline[::-1]:
        if getattr(step.transform, "name", None) == "v23tosky":
            return float(step.transform.parameters[-2])
    raise ValueError("the WCS has no v23tosky transform (not a cal-file imaging WCS)")


class WcsOffsets:
    """Where WCS ``b`` puts a grid of detector pixels relative to WCS ``a``: the mean offset
    (RA cos Dec, Dec) in mas, and the rms about it (rotation, scale), mas."""

    def __init__(self, d_ra_mas: np.ndarray, d_dec_mas: np.ndarray):
        self.d_ra_mas = d_ra_mas
        self.d_dec_mas = d_dec_mas

    @property
    def mean_mas(self) -> tuple[float, float]:
        return float(np.mean(self.d_ra_mas)), float(np.mean(self.d_dec_mas))

    @property
    def rms_about_mean_mas(self) -> float:
        m_ra, m_dec = self.mean_mas
        return float(np.sqrt(np.mean((self.d_ra_mas - m_ra) ** 2 +
                                     (self.d_dec_mas - m_dec) ** 2)))


def wcs_offsets_mas(a: Any, b: Any, shape: tuple[int, int], n: int = 5) -> WcsOffsets:
    """Sky offsets ``b(p) - a(p)`` (mas) at an ``n x n`` grid of pixels ``p`` spanning an
    image of ``shape`` (ny, nx), 5 % in from its edges."""
    ny, nx = shape
    gy, gx = np.meshgrid(np.linspace(0.05, 0.95, n) * (ny - 1),
                         np.linspace(0.05, 0.95, n) * (nx - 1), indexing="ij")
    ra_a, dec_a = a(gx.ravel(), gy.ravel(), with_bounding_box=False)
    ra_b, dec_b = b(gx.ravel(), gy.ravel(), with_bounding_box=False)
    d_ra = ((np.asarray(ra_b) - np.asarray(ra_a) + 180.0) % 360.0 - 180.0) * \
        np.cos(np.radians(np.asarray(dec_a))) * MAS_PER_DEG
    d_dec = (np.asarray(dec_b) - np.asarray(dec_a)) * MAS_PER_DEG
    return WcsOffsets(d_ra, d_dec)
