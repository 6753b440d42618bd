"""Residual sky in the mosaic, and skymatch's per-exposure sky levels against the truth.

Definitions
-----------
* **Mosaic residual** ``bkg_residual_mjysr = level - expected`` (MJy/sr), where ``level``
  is the sigma-clipped (3 sigma) median of the valid, source-masked mosaic pixels and
  ``expected`` the sky the mosaic should still contain (:func:`expected_mosaic_level`:
  0 when the recipe removes the sky, the injected sky when skymatch only equalises).
  When the run kept MIRAGE's noiseless seed images, the truth is the noiseless mosaic
  (:mod:`simval.truth.mosaic`) and the residual is the clipped median of
  ``mosaic - truth + injected - expected``: the light of faint undetected galaxies in
  "sky" pixels (+0.4% to +6.6% of the quickstart's sky in MIRAGE's own source-free seed
  pixels) is then signal the mosaic must keep, not a sky error.
  **Positive = too much sky left** (sources' photometry biased faint by local background
  estimates is the usual consequence). ``bkg_residual_frac = residual / injected sky``.
  The uncertainty is the scatter of medians in 32 x 32 pixel tiles over sqrt(number of
  tiles), which includes the correlation of drizzled pixels and large-scale structure.
* **skymatch levels**: ``meta.background.level`` of each exposure (MJy/sr) against the
  injected sky of that exposure. For absolute methods (``local``, ``global``,
  ``global+match``) the error is ``level - injected``; ``match`` reports levels relative
  to a reference exposure, so the error is defined up to a constant: it is anchored at
  the exposure with the lowest ``level - injected`` (reported 0, as skymatch does with
  ``match_down``), and the largest error is the peak-to-peak of ``level - injected``.
  ``skymatch_error_max_frac`` divides by the median injected sky.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics_schema import Measurement

__all__ = [
    "BackgroundResidual",
    "SkymatchComparison",
    "background_residual",
    "expected_mosaic_level",
    "sky_level",
    "skymatch_comparison",
    "source_mask",
]

ABSOLUTE_SKYMETHODS = ("local", "global", "global+match")


def source_mask(data: ArrayLike, *, segmentation: Any = None,
                valid: ArrayLike | None = None, n_sigma: float = 2.0, n_pixels: int = 5,
                dilate_radius_pix: int = 3) -> NDArray[np.bool_]:
    """Pixels covered by sources (True), grown by a disk of ``dilate_radius_pix``.

    Parameters
    ----------
    data : array_like
        Image, e.g. the mosaic in MJy/sr.
    segmentation : array_like or photutils SegmentationImage, optional
        A segmentation image (e.g. the pipeline's ``_segm.fits``); non-zero = source.
        Without it sources are found by thresholding: pixels above the sigma-clipped
        median + ``n_sigma`` x the sigma-clipped standard deviation (:func:`sky_level`)
        in groups of at least ``n_pixels`` connected pixels
        (:func:`photutils.segmentation.detect_sources`).
    valid : array_like of bool, optional
        Pixels to use (default: finite ``data``).
    n_sigma, n_pixels : float, int
        Thresholding parameters.
    dilate_radius_pix : int
        Radius of the disk the mask is grown by, pixels (0: no growth).

    Returns
    -------
    ndarray of bool
        True on sources (to be excluded from sky statistics).
    """
    from photutils.segmentation import SegmentationImage, detect_sources
    from photutils.utils import circular_footprint
    from scipy.ndimage import binary_dilation

    img = np.asarray(data, np.float64)
    ok = np.isfinite(img) if valid is None else np.asarray(valid, bool) & np.isfinite(img)
    if segmentation is not None:
        seg = segmentation.data if isinstance(segmentation, SegmentationImage) else \
            np.asarray(segmentation)
        mask = seg > 0
    else:
        level, std, _ = sky_level(img, mask=~ok)
        filled = np.where(ok, img, level)
        segm = detect_sources(filled, level + n_sigma * std, n_pixels, mask=~ok)
        mask = np.zeros(img.shape, bool) if segm is None else segm.data > 0
    if dilate_radius_pix > 0 and mask.any():
        mask = binary_dilation(mask, structure=circular_footprint(dilate_radius_pix))
    return mask


def usable_pixels(img: NDArray[np.float64], valid: ArrayLike | None = None,
                  mask: ArrayLike | None = None) -> NDArray[np.bool_]:
    """Finite pixels of ``img`` that are ``valid`` (if given) and not in ``mask`` (if given)."""
    use = np.isfinite(img)
    if valid is not None:
        use &= np.asarray(valid, bool)
    if mask is not None:
        use &= ~np.asarray(mask, bool)
    return use


def sky_level(data: ArrayLike, *, mask: ArrayLike | None = None, sigma: float = 3.0,
              maxiters: int = 10) -> tuple[float, float, int]:
    """Sigma-clipped (median, std, n used) of the finite pixels not in ``mask``."""
    from astropy.stats import sigma_clip

    img = np.asarray(data, np.float64)
    bad = ~np.isfinite(img)
    if mask is not None:
        bad |= np.asarray(mask, bool)
    vals = img[~bad]
    if vals.size == 0:
        return float("nan"), float("nan"), 0
    clipped = sigma_clip(vals, sigma=sigma, maxiters=maxiters, masked=True)
    kept = clipped.compressed()
    return float(np.median(kept)), float(np.std(kept)), int(kept.size)


def _tile_error(img: NDArray[np.float64], use: NDArray[np.bool_], lo: float, hi: float,
                tile: int) -> float:
    ny, nx = (s // tile * tile for s in img.shape)
    if ny == 0 or nx == 0:
        return float("nan")
    vals = np.where(use & (img >= lo) & (img <= hi), img, np.nan)[:ny, :nx]
    blocks = vals.reshape(ny // tile, tile, nx // tile, tile).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(ny // tile, nx // tile, tile * tile)
    count = np.isfinite(blocks).sum(axis=2)
    good = count >= 0.5 * tile * tile
    if good.sum() < 4:
        return float("nan")
    rows = np.sort(blocks[good], axis=1)  # NaN sort last: row medians without a loop
    k = count[good]
    lo = np.take_along_axis(rows, ((k - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(rows, (k // 2)[:, None], axis=1)[:, 0]
    meds = 0.5 * (lo + hi)
    return float(np.std(meds, ddof=1) / np.sqrt(meds.size))


@dataclass(frozen=True)
class BackgroundResidual:
    """Residual sky of a mosaic (MJy/sr unless stated).

    Attributes
    ----------
    level_mjysr : float
        Sigma-clipped median of valid, source-free pixels.
    expected_mjysr : float
        Level the mosaic should have.
    residual_mjysr, residual_err_mjysr : float
        ``level - expected`` and its uncertainty (tile medians).
    injected_sky_mjysr : float or None
        The injected sky (for the fraction).
    residual_frac : float
        ``residual / injected`` (NaN without an injected sky).
    clipped_std_mjysr : float
        Standard deviation of the clipped pixels.
    n_pixels : int
    """

    level_mjysr: float
    expected_mjysr: float
    residual_mjysr: float
    residual_err_mjysr: float
    injected_sky_mjysr: float | None
    residual_frac: float
    clipped_std_mjysr: float
    n_pixels: int

    def measurements(self) -> dict[str, Measurement]:
        """``bkg_residual_mjysr`` and ``bkg_residual_frac``."""
        d = {"level_mjysr": self.level_mjysr, "expected_mjysr": self.expected_mjysr,
             "injected_sky_mjysr": self.injected_sky_mjysr,
             "clipped_std_mjysr": self.clipped_std_mjysr}
        inj = self.injected_sky_mjysr
        frac_err = self.residual_err_mjysr / inj if inj else None
        return {
            "bkg_residual_mjysr": Measurement.of("bkg_residual_mjysr", self.residual_mjysr,
                                                 self.residual_err_mjysr, self.n_pixels, d),
            "bkg_residual_frac": Measurement.of("bkg_residual_frac", self.residual_frac,
                                                frac_err, self.n_pixels, d),
        }


def background_residual(data: ArrayLike, *, mask: ArrayLike | None = None,
                        valid: ArrayLike | None = None, expected_mjysr: float = 0.0,
                        injected_sky_mjysr: float | None = None, sigma: float = 3.0,
                        maxiters: int = 10, tile_pix: int = 32,
                        truth: ArrayLike | None = None) -> BackgroundResidual:
    """Residual sky of a mosaic against the expected level.

    Without ``truth`` the residual is ``level - expected_mjysr``. With ``truth`` (the
    noiseless mosaic, :mod:`simval.truth.mosaic`, which holds the injected sky plus the
    light of every source) the mosaic is compared pixel by pixel with what it should be,
    ``truth - injected + expected``: the residual is the sigma-clipped median of
    ``data - truth + injected - expected`` over the same pixels, so faint undetected
    sources and extended wings in "sky" pixels count as signal, not as sky error. The
    reported ``expected_mjysr`` is then ``level - residual``.

    Parameters
    ----------
    data : array_like
        Mosaic, MJy/sr.
    mask : array_like of bool, optional
        Source mask (True = source; :func:`source_mask`).
    valid : array_like of bool, optional
        Pixels to use (e.g. inside the footprint with weight > 0); default finite.
    expected_mjysr : float
        Level the mosaic should have (:func:`expected_mosaic_level`), MJy/sr.
    injected_sky_mjysr : float, optional
        Injected sky, MJy/sr, for ``residual_frac``.
    sigma, maxiters : float, int
        Sigma clipping (:func:`astropy.stats.sigma_clip`).
    tile_pix : int
        Tile size for the uncertainty, pixels.
    truth : array_like, optional
        Noiseless mosaic on the same grid, MJy/sr (needs ``injected_sky_mjysr``).

    Returns
    -------
    BackgroundResidual
    """
    img = np.asarray(data, np.float64)
    use = usable_pixels(img, valid, mask)
    if truth is not None:
        if injected_sky_mjysr is None:
            raise ValueError("a truth mosaic needs injected_sky_mjysr (the sky it holds)")
        t = np.asarray(truth, np.float64)
        if t.shape != img.shape:
            raise ValueError(f"truth mosaic shape {t.shape} differs from the mosaic's "
                             f"{img.shape}")
        use &= np.isfinite(t)
        level, std, n = sky_level(img, mask=~use, sigma=sigma, maxiters=maxiters)
        diff = img - t + (injected_sky_mjysr - expected_mjysr)
        resid, dstd, _ = sky_level(diff, mask=~use, sigma=sigma, maxiters=maxiters)
        err = _tile_error(diff, use, resid - sigma * dstd, resid + sigma * dstd, tile_pix) \
            if n else float("nan")
        frac = resid / injected_sky_mjysr if injected_sky_mjysr else float("nan")
        return BackgroundResidual(level, level - resid, resid, err, float(injected_sky_mjysr),
                                  frac, std, n)
    level, std, n = sky_level(img, mask=~use, sigma=sigma, maxiters=maxiters)
    err = _tile_error(img, use, level - sigma * std, level + sigma * std, tile_pix) \
        if n else float("nan")
    resid = level - expected_mjysr
    frac = resid / injected_sky_mjysr if injected_sky_mjysr else float("nan")
    return BackgroundResidual(level, float(expected_mjysr), resid, err,
                              None if injected_sky_mjysr is None else
                              float(injected_sky_mjysr), frac, std, n)


def expected_mosaic_level(injected_sky_mjysr: float | ArrayLike, *,
                          background_recipe: str = "skymatch",
                          skymethod: str | None = "match", match_down: bool = True) -> float:
    """Sky level a mosaic should keep after the pipeline's background handling, MJy/sr.

    jwst's resample subtracts each exposure's ``meta.background.level`` unless skymatch
    already subtracted it, so what remains is ``injected - level``:

    * ``background_recipe="median_masked"`` (simval subtracts a per-exposure sky): 0;
    * skymatch with ``local``, ``global`` or ``global+match``: 0 (absolute levels);
    * skymatch with ``match``: levels are relative to a reference exposure (reported 0),
      so the reference's sky stays: the lowest injected sky (``match_down=True``) or the
      highest;
    * ``skymethod=None`` (skymatch skipped): the injected sky (lowest, if several).

    Parameters
    ----------
    injected_sky_mjysr : float or array_like
        Injected sky per exposure (or one value), MJy/sr.
    background_recipe : {"skymatch", "median_masked"}
        The scenario's ``background_recipe``.
    skymethod : str or None
        skymatch's ``skymethod`` (jwst default ``match``); None if skymatch was skipped.
    match_down : bool
        skymatch's ``match_down``.

    Returns
    -------
    float
    """
    sky = np.atleast_1d(np.asarray(injected_sky_mjysr, np.float64))
    if background_recipe == "median_masked":
        return 0.0
    if background_recipe != "skymatch":
        raise ValueError(f"unknown background_recipe {background_recipe!r}; "
                         "expected skymatch or median_masked")
    if skymethod in ABSOLUTE_SKYMETHODS:
        return 0.0
    if skymethod == "match":
        return float(sky.min() if match_down else sky.max())
    if skymethod is None:
        return float(sky.min())
    raise ValueError(f"cannot predict the mosaic sky for skymethod {skymethod!r}; give the "
                     "expected level explicitly")


@dataclass(frozen=True)
class SkymatchComparison:
    """skymatch's per-exposure sky levels against the injected sky (MJy/sr).

    Attributes
    ----------
    names : list of str
        Exposure names (or indices as text).
    measured_mjysr, injected_mjysr : ndarray
        ``meta.background.level`` and the injected sky per exposure.
    error_mjysr : ndarray
        ``level - injected`` (absolute methods) or that minus its minimum (``match``).
    ratio : ndarray or None
        ``level / injected`` for absolute methods; None for ``match``.
    relative : bool
        Levels were relative (``match``).
    error_max_mjysr, error_max_frac : float
        Largest |error| (peak-to-peak for ``match``), and divided by the median injected
        sky.
    """

    names: list[str]
    measured_mjysr: NDArray[np.float64]
    injected_mjysr: NDArray[np.float64]
    error_mjysr: NDArray[np.float64]
    ratio: NDArray[np.float64] | None
    relative: bool
    skymethod: str
    error_max_mjysr: float
    error_max_frac: float

    def measurements(self) -> dict[str, Measurement]:
        """``skymatch_error_max_mjysr`` and ``skymatch_error_max_frac``."""
        d = {"skymethod": self.skymethod, "relative": self.relative, "exposures": self.names,
             "level_mjysr": self.measured_mjysr, "injected_mjysr": self.injected_mjysr,
             "error_mjysr": self.error_mjysr,
             "ratio": None if self.ratio is None else self.ratio}
        n = len(self.names)
        return {
            "skymatch_error_max_mjysr": Measurement.of(
                "skymatch_error_max_mjysr", self.error_max_mjysr, None, n, d),
            "skymatch_error_max_frac": Measurement.of(
                "skymatch_error_max_frac", self.error_max_frac, None, n),
        }


def skymatch_comparison(measured_mjysr: ArrayLike, injected_mjysr: ArrayLike | float, *,
                        skymethod: str = "match",
                        names: Sequence[str] | None = None) -> SkymatchComparison:
    """Compare skymatch's sky levels with the injected sky, per exposure.

    Parameters
    ----------
    measured_mjysr : array_like
        ``meta.background.level`` of each exposure after skymatch, MJy/sr.
    injected_mjysr : array_like or float
        Injected sky per exposure (or one value for all), MJy/sr.
    skymethod : str
        skymatch's ``skymethod``: ``match`` means relative levels (see module docs).
    names : sequence of str, optional
        Exposure names for the details.

    Returns
    -------
    SkymatchComparison
    """
    m = np.atleast_1d(np.asarray(measured_mjysr, np.float64))
    t = np.broadcast_to(np.asarray(injected_mjysr, np.float64), m.shape).copy()
    labels = [str(x) for x in (names if names is not None else range(m.size))]
    if len(labels) != m.size:
        raise ValueError(f"{len(labels)} names for {m.size} exposures")
    relative = skymethod == "match"
    d = m - t
    if m.size == 0:
        return SkymatchComparison(labels, m, t, d, None, relative, skymethod, float("nan"),
                                  float("nan"))
    if relative:
        err = d - np.nanmin(d)
        emax = float(np.nanmax(err))
        ratio = None
    else:
        err = d
        emax = float(np.nanmax(np.abs(d)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = m / t
    sky = float(np.median(t))
    frac = emax / sky if sky > 0 else float("nan")
    return SkymatchComparison(labels, m, t, err, ratio, relative, skymethod, emax, frac)
