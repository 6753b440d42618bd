"""Pixel-level comparison of two mosaics (``_i2d.fits``) of the same filter.

Requires the **same grid**: the same array shape and a FITS WCS (the SCI header's) that
maps every pixel to the same sky position within :data:`GRID_TOLERANCE_MAS` (checked at
a 5 x 5 grid of points). Mosaics on different grids are not resampled: the comparison
says why it was not made (different shape, or the largest offset between the grids).

Statistics (surface brightness in MJy/sr, the i2d unit)
-------------------------------------------------------
Pixels used: finite in both mosaics with weight (``WHT``) > 0 in both.

* ``ratio``: B/A on pixels with S/N > ``snr_min`` (20) in A, each mosaic minus its own
  sky level first: ``(B - sky_B) / (A - sky_A)``; S/N = ``(A - sky_A) / ERR_A`` (A's sky
  standard deviation if A has no ERR). A photometric scale error of B reads as that
  factor (1.05 = B 5% brighter); a changed sky subtraction does not move it.
* ``difference``: B - A on sky pixels (outside the sources of either mosaic: the
  pipeline's segmentation images and 2-sigma thresholding, grown by 3 pixels, as the
  background metrics do); **positive = B brighter**. The sky levels themselves are not
  subtracted: a change of the background subtraction shows here.
* Both are sigma-clipped (3 sigma, MAD-based, up to 10 iterations) and summarised by
  the median and the NMAD (1.4826 x MAD) of the kept pixels, with the counts.
* ``sky_a``, ``sky_b``: sigma-clipped median of each mosaic's sky pixels.

The difference image B - A (NaN outside the common valid pixels) is kept for the
report, and can be written as ``diff_<FILTER>.fits`` (:func:`write_difference_fits`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simval.atomic import atomic_path
from simval.match import sky_offsets_mas
from simval.metrics.background import sky_level, source_mask

__all__ = ["GRID_TOLERANCE_MAS", "PixelComparison", "compare_mosaics", "same_grid",
           "write_difference_fits"]

#: Largest sky offset between two pixel grids still called "the same grid", mas.
GRID_TOLERANCE_MAS = 1.0
#: Default S/N cut (in A) of the ratio pixels.
SNR_MIN = 20.0


@dataclass(frozen=True)
class _Image:
    data: np.ndarray
    err: np.ndarray | None
    wht: np.ndarray | None
    header: Any
    segm: np.ndarray | None


def _read(path: Path) -> _Image:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        names = {h.name for h in hdul}
        if "SCI" not in names:
            raise ValueError(f"{path.name} has no SCI extension")

        def get(name: str) -> np.ndarray | None:
            return np.asarray(hdul[name].data, np.float64) if name in names else None

        data = get("SCI")
        if data.ndim != 2:
            raise ValueError(f"{path.name}: SCI is {data.ndim}-D, expected 2-D")
        header = hdul["SCI"].header.copy()
        err, wht = get("ERR"), get("WHT")
    segm = None
    seg_path = path.with_name(path.name.replace("_i2d.fits", "_segm.fits"))
    if seg_path != path and seg_path.is_file():
        segm = np.asarray(fits.getdata(seg_path, "SCI"))
        if segm.shape != data.shape:
            segm = None
    return _Image(data, err, wht, header, segm)


def same_grid(shape_a: tuple[int, ...], header_a: Any, shape_b: tuple[int, ...],
              header_b: Any, tolerance_mas: float = GRID_TOLERANCE_MAS
              ) -> tuple[bool, str | None, float | None]:
    """(same grid?, why not, largest offset between the grids in mas).

    Shapes must be equal; the celestial FITS WCS of both headers must then place a 5 x 5
    grid of pixels (corners, edges, centre) within ``tolerance_mas`` of each other. With
    no celestial WCS in either header, equal shapes are taken as the same grid (the
    reason says so); with a WCS in one only, the grids are called different.
    """
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    if tuple(shape_a) != tuple(shape_b):
        return False, (f"different mosaic shapes: A is {shape_a[1]} x {shape_a[0]} pixels, "
                       f"B is {shape_b[1]} x {shape_b[0]} (x by y)"), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wa, wb = WCS(header_a), WCS(header_b)
    if not wa.has_celestial and not wb.has_celestial:
        return True, "no celestial FITS WCS in either mosaic: same shape taken as same grid", \
            None
    if wa.has_celestial != wb.has_celestial:
        return False, "only one of the mosaics has a celestial FITS WCS", None
    ny, nx = shape_a
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    ra_a, dec_a = wa.celestial.all_pix2world(gx.ravel(), gy.ravel(), 0)
    ra_b, dec_b = wb.celestial.all_pix2world(gx.ravel(), gy.ravel(), 0)

    dx, dy = sky_offsets_mas(ra_b, dec_b, ra_a, dec_a)
    offset = float(np.max(np.hypot(dx, dy)))
    if offset > tolerance_mas:
        return False, (f"the pixel grids differ: the same pixel is up to {offset:.3g} mas "
                       f"apart on the sky (tolerance {tolerance_mas:g} mas); the mosaics "
                       "are not resampled onto each other"), offset
    return True, None, offset


def _clipped(values: np.ndarray) -> tuple[float | None, float | None, int]:
    """Sigma-clipped (3 sigma, MAD std) median and NMAD of ``values``, and how many kept."""
    from astropy.stats import mad_std, sigma_clip

    v = values[np.isfinite(values)]
    if v.size == 0:
        return None, None, 0
    kept = sigma_clip(v, sigma=3.0, maxiters=10, stdfunc="mad_std", masked=True).compressed()
    if kept.size == 0:
        return None, None, 0
    return float(np.median(kept)), float(mad_std(kept)), int(kept.size)


@dataclass
class PixelComparison:
    """The pixel-level comparison of one filter (see the module docstring).

    ``same_grid`` False: nothing else is measured and ``reason`` says why. Ratios are
    dimensionless; differences and sky levels in MJy/sr.
    """

    same_grid: bool
    reason: str | None = None
    grid_offset_mas: float | None = None
    shape: tuple[int, int] | None = None
    snr_min: float = SNR_MIN
    snr_source: str = ""
    ratio_median: float | None = None
    ratio_nmad: float | None = None
    ratio_n: int = 0
    diff_median_mjysr: float | None = None
    diff_nmad_mjysr: float | None = None
    diff_n: int = 0
    sky_a_mjysr: float | None = None
    sky_b_mjysr: float | None = None
    n_valid: int = 0
    diff_fits: str | None = None
    difference: np.ndarray | None = field(default=None, repr=False)
    ratio_image: np.ndarray | None = field(default=None, repr=False)
    header: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "same_grid": self.same_grid, "reason": self.reason,
            "grid_offset_mas": self.grid_offset_mas,
            "shape": None if self.shape is None else list(self.shape),
            "ratio": {"median": self.ratio_median, "nmad": self.ratio_nmad,
                      "n": self.ratio_n, "snr_min": self.snr_min,
                      "snr_source": self.snr_source},
            "difference": {"median_mjysr": self.diff_median_mjysr,
                           "nmad_mjysr": self.diff_nmad_mjysr, "n": self.diff_n},
            "sky_a_mjysr": self.sky_a_mjysr, "sky_b_mjysr": self.sky_b_mjysr,
            "n_valid": self.n_valid, "diff_fits": self.diff_fits,
        }


def compare_mosaics(path_a: str | os.PathLike, path_b: str | os.PathLike, *,
                    snr_min: float = SNR_MIN) -> PixelComparison:
    """Compare mosaic B with mosaic A pixel by pixel (see the module docstring).

    Raises
    ------
    OSError, ValueError
        If a mosaic cannot be read or has no 2-D SCI extension.
    """
    import warnings

    a, b = _read(Path(path_a)), _read(Path(path_b))
    ok, reason, offset = same_grid(a.data.shape, a.header, b.data.shape, b.header)
    if not ok:
        return PixelComparison(False, reason, offset, snr_min=snr_min)
    valid = np.isfinite(a.data) & np.isfinite(b.data)
    for w in (a.wht, b.wht):
        if w is not None and w.shape == valid.shape:
            valid &= np.isfinite(w) & (w > 0)
    mask = np.zeros(valid.shape, bool)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No sources were found")
        for img in (a, b):
            mask |= source_mask(img.data, valid=valid)
            if img.segm is not None:
                mask |= source_mask(img.data, segmentation=img.segm, valid=valid)
    sky_a, std_a, _ = sky_level(a.data, mask=mask | ~valid)
    sky_b, _, _ = sky_level(b.data, mask=mask | ~valid)
    net_a = a.data - sky_a
    if a.err is not None and a.err.shape == valid.shape:
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(a.err > 0, net_a / a.err, np.nan)
        source = "(A - sky_A) / ERR_A"
    else:
        snr = net_a / std_a if std_a and np.isfinite(std_a) and std_a > 0 else \
            np.full(valid.shape, np.nan)
        source = "(A - sky_A) / sky standard deviation of A (A has no ERR)"
    with np.errstate(invalid="ignore", divide="ignore"):
        bright = valid & (snr > snr_min) & (net_a > 0)
        ratio_img = np.where(bright, (b.data - sky_b) / net_a, np.nan)
    diff = np.where(valid, b.data - a.data, np.nan)
    r_med, r_nmad, r_n = _clipped(ratio_img[bright])
    d_med, d_nmad, d_n = _clipped(diff[valid & ~mask])
    return PixelComparison(
        True, reason, offset, tuple(int(s) for s in valid.shape), snr_min, source,
        r_med, r_nmad, r_n, d_med, d_nmad, d_n,
        sky_a if np.isfinite(sky_a) else None, sky_b if np.isfinite(sky_b) else None,
        int(valid.sum()), None, diff, ratio_img, a.header)


def write_difference_fits(path: str | os.PathLike, comparison: PixelComparison, *,
                          band: str, run_a: str, run_b: str) -> Path:
    """Write ``DIFF`` (B - A, MJy/sr) and ``RATIO`` ((B - sky_B)/(A - sky_A) on the S/N
    pixels, else NaN) with A's celestial WCS, atomically; return the path."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    if comparison.difference is None:
        raise ValueError("no difference image: the mosaics are not on the same grid")
    wcs_cards = fits.Header()
    if comparison.header is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            w = WCS(comparison.header)
        if w.has_celestial:
            wcs_cards = w.celestial.to_header(relax=True)
    primary = fits.PrimaryHDU()
    primary.header["FILTER"] = (band, "filter compared")
    primary.header["RUN_A"] = (str(run_a)[-56:], "run A")  # the end of long paths
    primary.header["RUN_B"] = (str(run_b)[-56:], "run B")
    primary.header["SKY_A"] = (comparison.sky_a_mjysr, "[MJy/sr] clipped sky median of A")
    primary.header["SKY_B"] = (comparison.sky_b_mjysr, "[MJy/sr] clipped sky median of B")
    primary.header["SNRMIN"] = (comparison.snr_min, "S/N cut in A of the RATIO pixels")
    diff = fits.ImageHDU(comparison.difference.astype(np.float32), header=wcs_cards.copy(),
                         name="DIFF")
    diff.header["BUNIT"] = "MJy/sr"
    diff.header["COMMENT"] = "B - A; NaN outside the pixels valid in both mosaics"
    ratio = fits.ImageHDU(comparison.ratio_image.astype(np.float32), header=wcs_cards.copy(),
                          name="RATIO")
    ratio.header["COMMENT"] = "(B - SKY_B) / (A - SKY_A) where S/N in A > SNRMIN, else NaN"
    with atomic_path(path) as tmp:
        fits.HDUList([primary, diff, ratio]).writeto(tmp)
    return Path(path)
