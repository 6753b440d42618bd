"""Smearing: the bright stars' image in the mosaic against the same stars in the truth mosaic.

Exposures resampled with WCSs that disagree (an uncorrected pointing error, or tweakreg
"correcting" exposures that were already aligned) lay copies of each star side by side and
broaden it. The noiseless truth mosaic is the same stars resampled with the true WCSs, on
the same grid with the same kernel, so the ratio isolates what the alignment did. Per star
(the bright, isolated, fully covered sample), on a stamp around its true position less the
median of an annulus, centred on the star's own peak in each image (so that a mosaic offset
as a whole, which ``align_abs_mas`` reports, is not smearing):

* FWHM of a circular Gaussian fitted with photutils' ``fit_fwhm`` (pixels);
* encircled energy ``EE = F(r_in) / F(r_out)`` in circular apertures.

Exposures misaligned by more than the PSF's width give separate copies: the Gaussian fit
then follows one copy and the FWHM ratio stays near 1, while EE drops. EE is the robust
reading; the FWHM ratio shows a broadened core.

``smear_fwhm_ratio`` is the median of FWHM_mosaic / FWHM_truth (1 = no smearing; 1.1 = 10 %
broader) and ``smear_ee_ratio`` the median of EE_mosaic / EE_truth (below 1 = light pushed
out of the core).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics.photometry import MEDIAN_ERR_FACTOR, nmad
from simval.metrics_schema import Measurement

__all__ = ["EE_RADII_PIX", "STAMP_HALF_PIX", "SmearResult", "psf_smearing"]

#: Encircled-energy radii (pixels of the mosaic): core and total.
EE_RADII_PIX = (2.0, 6.0)
#: Sky annulus (pixels).
ANNULUS_PIX = (8.0, 12.0)
#: Half size of the stamp around each star (pixels).
STAMP_HALF_PIX = 12
#: Side of the Gaussian fit box (pixels, odd).
FIT_SHAPE = 7
#: A star's peak is looked for within this radius of its true position (pixels): a mosaic
#: offset from the sky (no absolute alignment) must not read as smearing.
SEARCH_PIX = 10.0


@dataclass(frozen=True)
class SmearResult:
    """Per star: FWHM (pixels) and EE in the mosaic and the truth mosaic."""

    fwhm_mosaic: NDArray[np.float64]
    fwhm_truth: NDArray[np.float64]
    ee_mosaic: NDArray[np.float64]
    ee_truth: NDArray[np.float64]

    @property
    def n(self) -> int:
        ok = np.isfinite(self.fwhm_mosaic / self.fwhm_truth)
        return int(ok.sum())

    def _median_ratio(self, a: NDArray, b: NDArray) -> tuple[float, float | None]:
        r = a / b
        r = r[np.isfinite(r)]
        if r.size == 0:
            return float("nan"), None
        err = MEDIAN_ERR_FACTOR * nmad(r) / np.sqrt(r.size) if r.size > 1 else None
        return float(np.median(r)), err

    def measurements(self) -> dict[str, Measurement]:
        """``smear_fwhm_ratio`` and ``smear_ee_ratio``."""
        f, f_err = self._median_ratio(self.fwhm_mosaic, self.fwhm_truth)
        e, e_err = self._median_ratio(self.ee_mosaic, self.ee_truth)
        d = {"fwhm_truth_pix_median": float(np.nanmedian(self.fwhm_truth))
             if self.fwhm_truth.size else None,
             "fwhm_mosaic_pix_median": float(np.nanmedian(self.fwhm_mosaic))
             if self.fwhm_mosaic.size else None,
             "ee_radii_pix": list(EE_RADII_PIX)}
        return {"smear_fwhm_ratio": Measurement.of("smear_fwhm_ratio", f, f_err, self.n, d),
                "smear_ee_ratio": Measurement.of("smear_ee_ratio", e, e_err, self.n, d)}


def _stamp(img: NDArray, x: float, y: float, h: int = STAMP_HALF_PIX
           ) -> tuple[NDArray, float, float] | None:
    """The ``(2h + 1)``-pixel square around ``(x, y)`` and the position in it; None if it
    leaves the image or holds a NaN."""
    ix, iy = round(x), round(y)
    if iy - h < 0 or ix - h < 0 or iy + h + 1 > img.shape[0] or ix + h + 1 > img.shape[1]:
        return None
    cut = np.asarray(img[iy - h:iy + h + 1, ix - h:ix + h + 1], np.float64)
    if not np.isfinite(cut).all():
        return None
    return cut, x - (ix - h), y - (iy - h)


def _own_stamp(img: NDArray, x: float, y: float) -> tuple[NDArray, float, float] | None:
    """The stamp around the star's own centre: the brightest pixel (less the local median)
    within :data:`SEARCH_PIX` of its true position ``(x, y)``, refined by a quadratic fit to
    its 3 x 3 neighbourhood (photutils); None where a stamp leaves the image or holds NaN."""
    from photutils.centroids import centroid_quadratic

    wide = _stamp(img, x, y, STAMP_HALF_PIX + int(SEARCH_PIX))
    if wide is None:
        return None
    data, sx, sy = wide
    data = data - float(np.median(data))
    yy, xx = np.indices(data.shape)
    near = np.hypot(xx - sx, yy - sy) <= SEARCH_PIX
    iy, ix = np.unravel_index(np.argmax(np.where(near, data, -np.inf)), data.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cx, cy = centroid_quadratic(data, xpeak=int(ix), ypeak=int(iy), fit_boxsize=3)
    if not (np.isfinite(cx) and np.isfinite(cy)) or np.hypot(cx - ix, cy - iy) > 1.0:
        cx, cy = float(ix), float(iy)
    return _stamp(img, x + (cx - sx), y + (cy - sy))


def _ee_fwhm(cut: NDArray, x: float, y: float) -> tuple[float, float]:
    from photutils.aperture import CircularAnnulus, CircularAperture, aperture_photometry
    from photutils.psf import fit_fwhm

    sky = CircularAnnulus((x, y), *ANNULUS_PIX).to_mask(method="center").get_values(cut)
    data = cut - float(np.median(sky))
    fluxes = aperture_photometry(data, [CircularAperture((x, y), r) for r in EE_RADII_PIX])
    core, total = (float(fluxes[f"aperture_sum_{i}"][0]) for i in range(2))
    ee = core / total if total > 0 else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a poor fit is a NaN, counted out below
        try:
            fwhm = float(np.atleast_1d(fit_fwhm(data, xypos=[(x, y)],
                                                fit_shape=FIT_SHAPE))[0])
        except Exception:
            fwhm = float("nan")
    return ee, fwhm if np.isfinite(fwhm) and fwhm > 0 else float("nan")


def psf_smearing(mosaic: ArrayLike, truth: ArrayLike, x: ArrayLike, y: ArrayLike
                 ) -> SmearResult:
    """FWHM and encircled energy of the stars at ``(x, y)`` (0-based mosaic pixels, true
    positions) in ``mosaic`` and in the noiseless ``truth`` mosaic on the same grid.

    Stars whose stamp leaves the image or holds a NaN in either image are left out.
    """
    img, tru = np.asarray(mosaic), np.asarray(truth)
    if img.shape != tru.shape:
        raise ValueError(f"mosaic {img.shape} and truth mosaic {tru.shape} differ in shape")
    rows: list[tuple[float, float, float, float]] = []
    for xi, yi in zip(np.atleast_1d(x), np.atleast_1d(y), strict=True):
        a, b = _own_stamp(img, float(xi), float(yi)), _own_stamp(tru, float(xi), float(yi))
        if a is None or b is None:
            continue
        ee_m, fwhm_m = _ee_fwhm(*a)
        ee_t, fwhm_t = _ee_fwhm(*b)
        rows.append((fwhm_m, fwhm_t, ee_m, ee_t))
    arr = np.asarray(rows, float).reshape(-1, 4)
    return SmearResult(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
