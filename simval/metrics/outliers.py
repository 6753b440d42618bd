"""outlier_detection on undersampled cores: how many bright-star core pixels it flagged.

outlier_detection compares each exposure with the median of the others blotted back to its
frame; a bright star's undersampled core (short-wave PSF FWHM ~ 1-2 pixels) differs between
dithers by more than ``snr`` allows, so its core pixels can be flagged OUTLIER and
DO_NOT_USE, and the mosaic loses core flux. Per exposure, read from image3's saved
``<exposure>_crf.fits``: the OUTLIER flags within ``CORE_RADIUS_PIX`` of each bright star
(its true position through the exposure's own WCS), and over every science pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from simval.metrics.jumps import science_pixels
from simval.metrics_schema import Measurement

__all__ = ["CORE_RADIUS_PIX", "OutlierFlags", "core_pixels", "outlier_flags"]

#: Core radius, detector pixels: the short-wave PSF's half maximum (FWHM ~ 1.5-2 pixels).
CORE_RADIUS_PIX = 1.5


@dataclass
class OutlierFlags:
    """Per exposure: core pixels and science pixels, and how many carry OUTLIER."""

    names: list[str] = field(default_factory=list)
    core_flagged: list[int] = field(default_factory=list)
    core_pixels: list[int] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)
    pixels: list[int] = field(default_factory=list)
    stars_flagged: int = 0
    stars: int = 0

    def measurements(self) -> dict[str, Measurement]:
        """``outlier_core_frac`` (core pixels flagged), ``outlier_core_star_frac`` (stars
        with any core pixel flagged in any exposure) and ``outlier_frac`` (all pixels)."""
        core, n_core = sum(self.core_flagged), sum(self.core_pixels)
        flagged, n_pix = sum(self.flagged), sum(self.pixels)
        d = {"core_radius_pix": CORE_RADIUS_PIX, "stars": self.stars,
             "per_exposure": {n: {"core_flagged": c, "core_pixels": cp, "flagged": f,
                                  "pixels": p}
                              for n, c, cp, f, p in zip(self.names, self.core_flagged,
                                                        self.core_pixels, self.flagged,
                                                        self.pixels, strict=True)}}
        return {
            "outlier_core_frac": Measurement.of("outlier_core_frac",
                                                core / n_core if n_core else None, None,
                                                n_core, d),
            "outlier_core_star_frac": Measurement.of(
                "outlier_core_star_frac", self.stars_flagged / self.stars if self.stars
                else None, None, self.stars, d),
            "outlier_frac": Measurement.of("outlier_frac", flagged / n_pix if n_pix else None,
                                           None, n_pix, d),
        }


def core_pixels(shape: tuple[int, int], x: NDArray[np.floating], y: NDArray[np.floating],
                radius: float = CORE_RADIUS_PIX) -> list[tuple[NDArray, NDArray]]:
    """Per position (0-based pixel x, y): the (row, column) indices of the pixels whose
    centres lie within ``radius`` pixels, clipped to the array."""
    out = []
    r = int(np.ceil(radius))
    for xc, yc in zip(np.asarray(x, float), np.asarray(y, float), strict=True):
        ix, iy = int(np.rint(xc)), int(np.rint(yc))
        rows, cols = np.mgrid[iy - r:iy + r + 1, ix - r:ix + r + 1]
        keep = ((cols - xc) ** 2 + (rows - yc) ** 2 <= radius ** 2) & (rows >= 0) & (
            cols >= 0) & (rows < shape[0]) & (cols < shape[1])
        out.append((rows[keep], cols[keep]))
    return out


def outlier_flags(paths: Sequence[str], names: Sequence[str], ra: NDArray[np.floating],
                  dec: NDArray[np.floating], radius: float = CORE_RADIUS_PIX
                  ) -> OutlierFlags:
    """OUTLIER flags of each ``_crf.fits`` (DQ) in the cores of the stars at (ra, dec), deg,
    placed with the file's own WCS, and over its science pixels."""
    from stdatamodels.jwst import datamodels
    from stdatamodels.jwst.datamodels import dqflags


    outlier = dqflags.pixel["OUTLIER"]
    out = OutlierFlags()
    hit = np.zeros(len(ra), bool)
    seen = np.zeros(len(ra), bool)
    for path, name in zip(paths, names, strict=True):
        with datamodels.open(str(path)) as model:
            dq = np.asarray(model.dq)
            x, y = model.meta.wcs.backward_transform(np.asarray(ra, float),
                                                     np.asarray(dec, float))
        flagged = (dq & outlier) != 0
        science = science_pixels(dq) | flagged
        x, y = np.asarray(x, float), np.asarray(y, float)
        inside = np.isfinite(x) & np.isfinite(y) & (x >= 2) & (y >= 2) & (
            x <= dq.shape[1] - 3) & (y <= dq.shape[0] - 3)
        n_core = n_hit = 0
        for i, (rows, cols) in zip(np.flatnonzero(inside),
                                   core_pixels(dq.shape, x[inside], y[inside], radius),
                                   strict=True):
            got = int(flagged[rows, cols].sum())
            n_core += rows.size
            n_hit += got
            seen[i] = True
            hit[i] |= got > 0
        out.names.append(name)
        out.core_pixels.append(n_core)
        out.core_flagged.append(n_hit)
        out.pixels.append(int(science.sum()))
        out.flagged.append(int((flagged & science).sum()))
    out.stars, out.stars_flagged = int(seen.sum()), int(hit[seen].sum())
    return out
