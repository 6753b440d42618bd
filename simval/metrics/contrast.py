"""A 5-sigma contrast curve of a coronagraphic image, with the small-sample correction of
Mawet et al. (2014, ApJ 792, 97).

At each separation r (pixels from the star) the annulus of width one resolution element
holds ``n = floor(2 pi r / fwhm)`` independent apertures of diameter ``fwhm``; their sums
(apertures touching masked pixels dropped: known companions, NaN) are the noise sample of
size ``n``. Mawet's test (as the VIP package applies it): the detection threshold at the
false-positive fraction of a Gaussian 5 sigma (2.87e-7) is the sample's mean plus

    tau = t_ppf(1 - FPF, n - 1) * s * sqrt(1 + 1 / n)

with s the standard deviation of the sums (Student's t, ``n - 1`` degrees of freedom).
The contrast is ``(mean + tau) / (F_star * EE * T(r))``: the star's unocculted flux in the
same units as the image, the fraction of an off-axis point source's light in one aperture
(``EE``), and the mask's intensity transmission ``T(r)`` at that separation (the
companion's own loss). The uncorrected (Gaussian) contrast is ``5 s / (...)``; the two
meet for large ``n`` (at 1 lambda/D, n = 6, the correction is ~2x).

Units: pixels; fluxes in the image's units x pixels (the caller converts MJy/sr).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["FPF_5SIGMA", "ContrastCurve", "contrast_curve", "ring_sums", "threshold"]

#: The false-positive fraction of a 5-sigma Gaussian detection (one-sided).
FPF_5SIGMA = 2.866515719e-7


def threshold(sums: ArrayLike, fpf: float = FPF_5SIGMA) -> float:
    """Mawet et al.'s detection threshold above the sample's mean for the aperture sums
    ``sums`` (the noise sample; needs at least 3)."""
    from scipy.stats import t

    s = np.asarray(sums, float)
    s = s[np.isfinite(s)]
    n2 = s.size
    if n2 < 3:
        return float("nan")
    return float(t.ppf(1.0 - fpf, n2 - 1) * np.std(s, ddof=1) * np.sqrt(1.0 + 1.0 / n2))


@dataclass(frozen=True)
class ContrastCurve:
    """Separations (pixels), 5-sigma contrast, noise apertures used, and the uncorrected
    (Gaussian 5 sigma) contrast."""

    separation_px: np.ndarray
    contrast: np.ndarray
    n_apertures: np.ndarray
    contrast_gaussian: np.ndarray

    def at(self, separation_px: float) -> float:
        """Contrast interpolated (in log) at ``separation_px``."""
        ok = np.isfinite(self.contrast) & (self.contrast > 0)
        return float(np.exp(np.interp(separation_px, self.separation_px[ok],
                                      np.log(self.contrast[ok]))))


def ring_sums(clean: np.ndarray, bad: np.ndarray, centre: tuple[float, float], r: float,
              fwhm_px: float) -> np.ndarray | None:
    """Sums of the ``floor(2 pi r / fwhm)`` apertures of diameter ``fwhm_px`` around
    ``centre`` at radius ``r`` (px) that touch no ``bad`` pixel (``clean``: the image with
    bad pixels zeroed); None where the ring holds fewer than 3 apertures."""
    from photutils.aperture import CircularAperture, aperture_photometry

    n = int(np.floor(2.0 * np.pi * r / fwhm_px))
    if n < 3:
        return None
    angles = 2.0 * np.pi * np.arange(n) / n
    xy = np.c_[centre[0] + r * np.cos(angles), centre[1] + r * np.sin(angles)]
    aps = CircularAperture(xy, r=fwhm_px / 2.0)
    sums = np.asarray(aperture_photometry(clean, aps)["aperture_sum"], float)
    hit = np.asarray(aperture_photometry(bad.astype(float), aps)["aperture_sum"], float)
    return sums[hit == 0]


def contrast_curve(image: ArrayLike, centre: tuple[float, float], fwhm_px: float, *,
                   star_flux: float, ee: float, transmission: Callable[[np.ndarray], np.ndarray],
                   separations_px: ArrayLike, mask: ArrayLike | None = None) -> ContrastCurve:
    """The 5-sigma contrast at ``separations_px`` (module docstring). ``mask`` (True =
    excluded) removes known sources; an aperture touching a masked or NaN pixel is
    dropped."""
    img = np.asarray(image, float)
    bad = ~np.isfinite(img) if mask is None else (~np.isfinite(img) | np.asarray(mask, bool))
    clean = np.where(bad, 0.0, img)
    seps = np.asarray(separations_px, float)
    contrast, gaussian, used = [], [], []
    for r in seps:
        sums = ring_sums(clean, bad, centre, r, fwhm_px)
        if sums is None:
            contrast.append(np.nan), gaussian.append(np.nan), used.append(0)
            continue
        denominator = star_flux * ee * float(transmission(np.array([r]))[0])
        tau = threshold(sums)
        contrast.append((tau + float(np.mean(sums))) / denominator if sums.size >= 3
                        else np.nan)
        gaussian.append(5.0 * float(np.std(sums, ddof=1)) / denominator if sums.size >= 3
                        else np.nan)
        used.append(int(sums.size))
    return ContrastCurve(seps, np.array(contrast), np.array(used), np.array(gaussian))
