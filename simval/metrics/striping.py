"""Striping: row- and column-correlated residuals in the calibrated exposures.

NIRCam's 1/f noise is correlated along the fast-read direction: in a cal file (DMS
orientation) each amplifier's rows carry a common offset. For one exposure, on pixels that
are valid and source-free (3-sigma clipped about the median, the clipped pixels grown by
:data:`GROW_PIX`), the mean of each row within each amplifier (and of each column) is taken;
their scatter, less what white noise alone gives a mean of that many pixels, is the stripe
amplitude::

    amp = sqrt(max(0, var_robust(line means) - median(sigma_pix**2 / n_line)))

in the image's unit (MJy/sr for a cal file) and as a fraction of ``sigma_pix``, the pixel
noise of the same clipped pixels. White noise reads ~0; rows offset by N(0, s) read s.

In the mosaic (:func:`mosaic_stripes`) the same statistic runs on the mosaic less the
noiseless truth mosaic (noise alone, sources and all), turned so that the exposures' detector
rows lie along its rows. Drizzle correlates neighbouring pixels, so even white noise reads a
floor there; the column amplitude, across the fast-read direction where 1/f noise has no
structure, measures that floor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from simval.metrics_schema import Measurement

__all__ = ["GROW_PIX", "MIN_LINE_PIX", "MosaicStripes", "StripeResult", "Striping",
           "amplifier_edges", "mosaic_stripes", "stripe_amplitudes", "striping_measurements"]

#: Clipped (source) pixels are grown by this many pixels before lines are averaged.
GROW_PIX = 2
#: Lines with fewer usable pixels are left out.
MIN_LINE_PIX = 20
#: NIRCam's four amplifiers each read 512 columns of the 2048-column full frame.
AMPLIFIER_WIDTH = 512


def amplifier_edges(width: int, noutputs: int, xstart: int = 1) -> list[int]:
    """Column edges of the amplifier segments of an array ``width`` wide whose first column
    is full-frame column ``xstart`` (1-based, SUBSTRT1): one segment unless the exposure
    was read through 4 outputs."""
    if noutputs <= 1:
        return [0, width]
    x0 = xstart - 1
    inner = [k * AMPLIFIER_WIDTH - x0 for k in range(1, 4)]
    return [0, *[e for e in inner if 0 < e < width], width]


@dataclass(frozen=True)
class StripeResult:
    """One image's stripe amplitudes (image units), pixel noise, and lines used."""

    row_amp: float
    col_amp: float
    sigma_pix: float
    n_rows: int
    n_cols: int

    @property
    def row_frac(self) -> float:
        return self.row_amp / self.sigma_pix if self.sigma_pix > 0 else float("nan")

    @property
    def col_frac(self) -> float:
        return self.col_amp / self.sigma_pix if self.sigma_pix > 0 else float("nan")


def _line_amplitude(resid: NDArray[np.floating], usable: NDArray[np.bool_],
                    sigma2: float) -> tuple[float, int]:
    """Excess scatter of the per-row means of ``resid`` (rows along axis 0) over usable
    pixels; the number of rows used."""
    n = usable.sum(axis=1)
    keep = n >= MIN_LINE_PIX
    if keep.sum() < 3:
        return float("nan"), 0
    sums = np.where(usable, resid, 0.0).sum(axis=1)
    means = sums[keep] / n[keep]
    mad = np.median(np.abs(means - np.median(means)))
    var_obs = (1.4826 * mad) ** 2
    expected = float(np.median(sigma2 / n[keep]))
    return float(np.sqrt(max(var_obs - expected, 0.0))), int(keep.sum())


def stripe_amplitudes(data: NDArray[np.floating], valid: NDArray[np.bool_] | None = None,
                      edges: Sequence[int] | None = None) -> StripeResult:
    """Row (within each amplifier segment, ``edges`` in columns) and column stripe
    amplitudes of one image (module docstring)."""
    img = np.asarray(data, dtype=float)
    ok = np.isfinite(img) if valid is None else (np.asarray(valid, bool) & np.isfinite(img))
    if ok.sum() < MIN_LINE_PIX * 3:
        return StripeResult(float("nan"), float("nan"), float("nan"), 0, 0)
    resid = img - np.median(img[ok])
    sigma = 1.4826 * np.median(np.abs(resid[ok]))
    bright = ok & (np.abs(resid) > 3.0 * sigma)
    if GROW_PIX:
        bright = ndimage.binary_dilation(bright, iterations=GROW_PIX)
    usable = ok & ~bright
    sigma2 = float(np.var(resid[usable]))
    edges = list(edges) if edges is not None else [0, img.shape[1]]
    rows, n_rows = [], 0
    for x0, x1 in itertools.pairwise(edges):
        amp, n = _line_amplitude(resid[:, x0:x1], usable[:, x0:x1], sigma2)
        if n:
            rows.append(amp)
            n_rows += n
    col_amp, n_cols = _line_amplitude(resid.T, usable.T, sigma2)
    row_amp = float(np.median(rows)) if rows else float("nan")
    return StripeResult(row_amp, col_amp, float(np.sqrt(sigma2)), n_rows, n_cols)


@dataclass
class Striping:
    """Per-exposure stripe results of one product, and the metrics they make."""

    names: list[str] = field(default_factory=list)
    results: list[StripeResult] = field(default_factory=list)

    def measurements(self) -> dict[str, Measurement]:
        """The median over exposures of each amplitude and fraction; every exposure's
        values in ``details.exposures``."""
        def med(values: list[float]) -> float | None:
            finite = [v for v in values if np.isfinite(v)]
            return float(np.median(finite)) if finite else None

        details = {"exposures": {
            n: {"row_amp_mjysr": r.row_amp, "col_amp_mjysr": r.col_amp,
                "sigma_pix_mjysr": r.sigma_pix, "rows": r.n_rows, "cols": r.n_cols}
            for n, r in zip(self.names, self.results, strict=True)}}
        n = sum(1 for r in self.results if r.n_rows)
        values = {"stripe_row_amp_mjysr": [r.row_amp for r in self.results],
                  "stripe_row_frac": [r.row_frac for r in self.results],
                  "stripe_col_amp_mjysr": [r.col_amp for r in self.results],
                  "stripe_col_frac": [r.col_frac for r in self.results]}
        return {name: Measurement.of(name, med(v), None, n, details)
                for name, v in values.items()}


def striping_measurements(paths: Sequence[str], names: Sequence[str]) -> Striping:
    """Stripe amplitudes of each cal file (SCI, MJy/sr; DQ DO_NOT_USE excluded; amplifier
    segments from NOUTPUTS and SUBSTRT1)."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import dqflags

    out = Striping()
    bad = dqflags.pixel["DO_NOT_USE"]
    for path, name in zip(paths, names, strict=True):
        with fits.open(path) as hdul:
            sci = hdul["SCI"].data.astype(float)
            dq = hdul["DQ"].data
            header = hdul[0].header
        edges = amplifier_edges(sci.shape[1], int(header.get("NOUTPUTS", 1) or 1),
                                int(header.get("SUBSTRT1", 1) or 1))
        out.names.append(name)
        out.results.append(stripe_amplitudes(sci, (dq & bad) == 0, edges))
    return out


@dataclass(frozen=True)
class MosaicStripes:
    """Stripe amplitudes of the mosaic's noise along the detector rows (``angle_deg``: the
    detector x axis in the mosaic, deg counter-clockwise from the mosaic x axis)."""

    result: StripeResult
    angle_deg: float

    def measurements(self) -> dict[str, Measurement]:
        """``stripe_mosaic_row_frac`` and ``stripe_mosaic_col_frac`` (the floor)."""
        r = self.result
        d = {"angle_deg": self.angle_deg, "row_amp_mjysr": r.row_amp,
             "col_amp_mjysr": r.col_amp, "sigma_pix_mjysr": r.sigma_pix,
             "rows": r.n_rows, "cols": r.n_cols}
        return {"stripe_mosaic_row_frac": Measurement.of("stripe_mosaic_row_frac",
                                                         r.row_frac, None, r.n_rows, d),
                "stripe_mosaic_col_frac": Measurement.of("stripe_mosaic_col_frac",
                                                         r.col_frac, None, r.n_cols, d)}


def mosaic_stripes(noise: NDArray[np.floating], valid: NDArray[np.bool_],
                   angle_deg: float) -> MosaicStripes:
    """Row and column stripe amplitudes of ``noise`` (mosaic - truth mosaic, MJy/sr; False
    in ``valid`` for pixels to leave out) after turning it by ``-angle_deg`` so that the
    detector rows run along the array's rows (bilinear; pixels touching an invalid one are
    left out)."""
    img = np.where(valid & np.isfinite(noise), noise, 0.0).astype(float)
    bad = (~(valid & np.isfinite(noise))).astype(float)
    if abs(angle_deg) > 0.05:
        img = ndimage.rotate(img, -angle_deg, reshape=True, order=1, cval=0.0)
        bad = ndimage.rotate(bad, -angle_deg, reshape=True, order=1, cval=1.0)
    return MosaicStripes(stripe_amplitudes(img, bad < 1e-6), float(angle_deg))
