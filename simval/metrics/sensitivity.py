"""Point-source sensitivity as the pre-launch tables define it, measured on the mosaic.

The NIRCam sensitivity tables give the flux density of a point source detected at 10 sigma
in an aperture of radius "the larger of 2.5 pixels or 1.2 lambda/D" (STScI, "JWST
Sensitivity"; the pandeia-verification scripts use 2.5 px at F150W). Measured here:
sigma_ap, the clipped scatter of random source-free aperture sums of that radius in the
mosaic (so drizzle's correlation and every noise the simulation put in are counted), and
EE, the fraction of a bright isolated star's true total flux inside the same aperture on
the noiseless truth mosaic (the drizzled PSF as simulated). The limit is
``10 sigma_ap / EE``. The source's own Poisson noise and the sky annulus are left out (both
small at the limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.metrics.noise import random_aperture_depth
from simval.metrics_schema import Measurement

__all__ = ["JWST_DIAMETER_M", "SensitivityLimit", "aperture_radius_arcsec",
           "encircled_energy", "sensitivity_limit"]

#: Telescope diameter of the 1.2 lambda/D radius rule, m.
JWST_DIAMETER_M = 6.5
#: Significance of the tables' limits.
N_SIGMA = 10.0
_RAD_TO_ARCSEC = 180.0 / np.pi * 3600.0


def aperture_radius_arcsec(pivot_um: float, native_scale_arcsec: float) -> float:
    """The larger of 2.5 native pixels or 1.2 lambda/D, arcsec."""
    return max(2.5 * native_scale_arcsec, 1.2 * pivot_um * 1e-6 / JWST_DIAMETER_M
               * _RAD_TO_ARCSEC)


def encircled_energy(truth: ArrayLike, x: ArrayLike, y: ArrayLike, flux_jy: ArrayLike, *,
                     radius_pix: float, sky_mjysr: float, pixar_sr: float
                     ) -> NDArray[np.float64]:
    """Per star: flux within ``radius_pix`` of (x, y) on the truth mosaic (MJy/sr, its sky
    ``sky_mjysr`` removed) / the star's true total flux ``flux_jy``."""
    from photutils.aperture import CircularAperture, aperture_photometry

    img = np.nan_to_num(np.asarray(truth, float) - sky_mjysr) * (1e6 * pixar_sr)  # Jy/pix
    ap = CircularAperture(np.column_stack([np.asarray(x, float), np.asarray(y, float)]),
                          r=radius_pix)
    sums = np.asarray(aperture_photometry(img, ap)["aperture_sum"], float)
    return sums / np.asarray(flux_jy, float)


@dataclass(frozen=True)
class SensitivityLimit:
    """``limit_njy`` = N_SIGMA x ``sigma_ap_njy`` / ``ee``."""

    limit_njy: float
    sigma_ap_njy: float
    ee: float
    ee_spread: float
    n_stars: int
    n_apertures: int
    radius_arcsec: float
    radius_pix: float

    def measurements(self) -> dict[str, Measurement]:
        d = {"sigma_ap_njy": self.sigma_ap_njy, "ee": self.ee, "ee_nmad": self.ee_spread,
             "stars": self.n_stars, "radius_arcsec": self.radius_arcsec,
             "radius_pix": self.radius_pix, "n_sigma": N_SIGMA}
        return {"limit_10sigma_njy": Measurement.of("limit_10sigma_njy", self.limit_njy,
                                                    None, self.n_apertures, d)}


def sensitivity_limit(img: ArrayLike, truth: ArrayLike, *, x: ArrayLike, y: ArrayLike,
                      flux_jy: ArrayLike, radius_arcsec: float, pixar_sr: float,
                      sky_mjysr: float, rng: np.random.Generator,
                      mask: ArrayLike | None = None, valid: ArrayLike | None = None
                      ) -> SensitivityLimit:
    """10-sigma point-source limit of the mosaic ``img`` (MJy/sr), nJy.

    ``x, y, flux_jy``: bright isolated stars (mosaic pixels, true total flux in Jy) for EE;
    ``mask``: sources; ``valid``: usable pixels.
    """

    scale = float(np.sqrt(pixar_sr)) * _RAD_TO_ARCSEC
    radius_pix = radius_arcsec / scale
    ee = encircled_energy(truth, x, y, flux_jy, radius_pix=radius_pix, sky_mjysr=sky_mjysr,
                          pixar_sr=pixar_sr)
    ee = ee[np.isfinite(ee) & (ee > 0)]
    nan = float("nan")
    if not ee.size:
        return SensitivityLimit(nan, nan, nan, nan, 0, 0, radius_arcsec, radius_pix)
    depth = random_aperture_depth(img, radius_pix=radius_pix, pixar_sr=pixar_sr, rng=rng,
                                  mask=mask, valid=valid, apcorr=1.0, n_sigma=1.0)
    sigma_njy = depth.flux_limit_jy * 1e9
    ee_med = float(np.median(ee))
    spread = float(1.4826 * np.median(np.abs(ee - ee_med)))
    return SensitivityLimit(N_SIGMA * sigma_njy / ee_med, sigma_njy, ee_med, spread,
                            int(ee.size), depth.n_apertures, radius_arcsec, radius_pix)
