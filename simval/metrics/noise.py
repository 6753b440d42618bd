"""Is the error array right, and how deep is the mosaic?

Definitions
-----------
* **ERR ratio**: ``r = (pixel - sky) / ERR`` over valid, source-free pixels, ``sky`` the
  sigma-clipped median of those pixels. ``err_ratio_median`` ~ 0 and
  ``err_ratio_nmad`` = NMAD(r) ~ 1 if ERR describes the pixel noise; 2 means ERR is half
  the real noise (underestimated), 0.5 twice it. Drizzled pixels are correlated, which
  lowers the pixel-to-pixel scatter relative to ERR (to 1/R = 0.67 for a right ERR at
  pixfrac 1 and the native scale), so on a mosaic read the drizzle-corrected ratios of
  :mod:`simval.metrics.aperture_noise`.
* **5-sigma depth** (:class:`photutils.utils.ImageDepth`): ``N`` circular apertures of
  radius ``r`` pixels are placed at random where the whole aperture is valid and
  source-free; their sums (MJy/sr x pixels) are converted to Jy with the pixel solid angle
  (``x 1e6 x PIXAR_SR``); with ``sigma_ap`` = the 3-sigma clipped MAD-based standard
  deviation of the sums (robust to faint undetected sources), the depth is
  ``m = -2.5 log10(n_sigma * sigma_ap * apcorr / 3631 Jy)`` AB. ``apcorr`` (>= 1) is the
  total / in-aperture flux of a point source (e.g. from the apcorr reference file), so the
  depth is for the *total* flux of a point source. For white noise ``sigma_ap =
  sigma_pix * sqrt(sum(w**2))``, w the aperture's pixel weights (``sqrt(N_pix)`` for
  whole pixels). The depth is the mean over ``n_iters`` sets of apertures; its uncertainty
  ``1.0857 * 1.1664 / sqrt(N)`` mag is that of one set of N apertures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.constants import AB_FLUX_JY as AB_ZEROPOINT_JY
from simval.metrics.background import sky_level, usable_pixels
from simval.metrics.photometry import MEDIAN_ERR_FACTOR, NMAD_ERR_FACTOR, nmad
from simval.metrics_schema import Measurement

__all__ = ["DepthResult", "ErrRatio", "error_ratio", "random_aperture_depth"]

MAG_PER_LN = 2.5 / np.log(10.0)  # 1.0857: d(mag) per relative flux error


@dataclass(frozen=True)
class ErrRatio:
    """Distribution of (pixel - sky) / ERR over source-free pixels (dimensionless)."""

    median: float
    median_err: float
    nmad: float
    nmad_err: float
    sky_mjysr: float
    n: int

    def measurements(self) -> dict[str, Measurement]:
        """``err_ratio_median`` and ``err_ratio_nmad``."""
        d = {"sky_mjysr": self.sky_mjysr}
        return {
            "err_ratio_median": Measurement.of("err_ratio_median", self.median,
                                               self.median_err, self.n, d),
            "err_ratio_nmad": Measurement.of("err_ratio_nmad", self.nmad, self.nmad_err,
                                             self.n, d),
        }


def error_ratio(data: ArrayLike, err: ArrayLike, *, mask: ArrayLike | None = None,
                valid: ArrayLike | None = None, sky_mjysr: float | None = None) -> ErrRatio:
    """Median and NMAD of ``(data - sky) / err`` over valid, source-free pixels.

    Parameters
    ----------
    data, err : array_like
        Image and its 1-sigma error array, same unit (MJy/sr).
    mask : array_like of bool, optional
        Source mask (True = source).
    valid : array_like of bool, optional
        Pixels to use; always restricted to finite data and finite, positive err.
    sky_mjysr : float, optional
        Sky level to subtract; default the sigma-clipped median of the used pixels.

    Returns
    -------
    ErrRatio
    """

    img = np.asarray(data, np.float64)
    e = np.asarray(err, np.float64)
    use = usable_pixels(img, valid, mask) & np.isfinite(e) & (e > 0)
    if sky_mjysr is None:
        sky_mjysr = sky_level(img, mask=~use)[0]
    r = (img[use] - sky_mjysr) / e[use]
    n = int(r.size)
    if n == 0:
        nan = float("nan")
        return ErrRatio(nan, nan, nan, nan, float(sky_mjysr), 0)
    s = nmad(r)
    return ErrRatio(float(np.median(r)), MEDIAN_ERR_FACTOR * s / np.sqrt(n), s,
                    NMAD_ERR_FACTOR * s / np.sqrt(n), float(sky_mjysr), n)


@dataclass(frozen=True)
class DepthResult:
    """Point-source depth from random apertures.

    Attributes
    ----------
    depth_mag, depth_err_mag : float
        ``n_sigma`` depth, AB mag (mean over the iterations), and its uncertainty.
    flux_limit_jy : float
        ``n_sigma`` x the clipped scatter of aperture sums x ``apcorr``, Jy.
    depth_per_iteration_mag : ndarray
        The depth of each iteration's set of apertures.
    n_apertures : int
        Apertures used per iteration (the smallest over the iterations).
    radius_pix, apcorr, n_sigma : float
    positions : ndarray, shape (n, 2)
        Aperture centres (x, y) of the first iteration, 0-based pixels.
    """

    depth_mag: float
    depth_err_mag: float
    flux_limit_jy: float
    depth_per_iteration_mag: NDArray[np.float64]
    n_apertures: int
    radius_pix: float
    apcorr: float
    n_sigma: float
    positions: NDArray[np.float64]

    def measurements(self) -> dict[str, Measurement]:
        """``depth_5sigma_mag`` (with ``n_sigma`` recorded in the details)."""
        d = {"flux_limit_jy": self.flux_limit_jy, "radius_pix": self.radius_pix,
             "apcorr": self.apcorr, "n_sigma": self.n_sigma,
             "depth_per_iteration_mag": self.depth_per_iteration_mag}
        return {"depth_5sigma_mag": Measurement.of("depth_5sigma_mag", self.depth_mag,
                                                   self.depth_err_mag, self.n_apertures, d)}


def random_aperture_depth(data: ArrayLike, *, radius_pix: float, pixar_sr: float,
                          rng: np.random.Generator, mask: ArrayLike | None = None,
                          valid: ArrayLike | None = None, n_apertures: int = 1000,
                          n_iters: int = 5, apcorr: float = 1.0,
                          n_sigma: float = 5.0) -> DepthResult:
    """``n_sigma`` point-source depth from apertures on random source-free positions.

    A thin layer over :class:`photutils.utils.ImageDepth`: the image is converted to Jy
    per pixel (x 1e6 x ``pixar_sr``) and multiplied by ``apcorr``; apertures avoid the
    masked pixels (sources and invalid pixels, dilated by the radius) and the image edges;
    the scatter of the sums is a 3-sigma clipped MAD-based standard deviation (robust to
    faint undetected sources); the zeropoint is 2.5 log10(3631 Jy).

    Parameters
    ----------
    data : array_like
        Mosaic, MJy/sr.
    radius_pix : float
        Aperture radius, pixels.
    pixar_sr : float
        Solid angle of one pixel, sr (``meta.photometry.pixelarea_steradians``).
    rng : numpy.random.Generator
        Seeds the aperture positions (seed it from the scenario).
    mask : array_like of bool, optional
        Source mask (True = source).
    valid : array_like of bool, optional
        Usable pixels (default finite).
    n_apertures, n_iters : int
        Apertures per iteration (they may overlap) and iterations (the depth is their
        mean).
    apcorr : float
        Total / in-aperture flux of a point source (>= 1).
    n_sigma : float
        Significance of the depth (5).

    Returns
    -------
    DepthResult
        NaN depth if no aperture fits.
    """
    from astropy.stats import SigmaClip
    from photutils.utils import ImageDepth

    img = np.asarray(data, np.float64)
    bad = ~np.isfinite(img)
    if valid is not None:
        bad |= ~np.asarray(valid, bool)
    if mask is not None:
        bad |= np.asarray(mask, bool)
    nan = float("nan")
    jy = np.where(bad, 0.0, img) * (1e6 * pixar_sr * apcorr)
    depth = ImageDepth(radius_pix, n_sigma=n_sigma, n_apertures=n_apertures, n_iters=n_iters,
                       overlap=True, seed=int(rng.integers(2**32)),
                       zeropoint=2.5 * np.log10(AB_ZEROPOINT_JY),
                       sigma_clip=SigmaClip(sigma=3.0, maxiters=10, stdfunc="mad_std"),
                       progress_bar=False)
    try:
        flux_lim, mag_lim = depth(jy, bad)
    except ValueError:  # no room for a single aperture
        return DepthResult(nan, nan, nan, np.zeros(0), 0, float(radius_pix), float(apcorr),
                           float(n_sigma), np.zeros((0, 2)))
    n = int(np.min(depth.n_apertures_used))
    err = MAG_PER_LN * NMAD_ERR_FACTOR / np.sqrt(n) if n else nan
    return DepthResult(float(mag_lim), float(err), float(flux_lim),
                       np.asarray(depth.mag_limits, np.float64), n, float(radius_pix),
                       float(apcorr), float(n_sigma),
                       np.asarray(depth.apertures[0].positions, np.float64))
