"""MIRI imager PSFs, computed offline with poppy from the kit's JWST-like pupil.

One PSF per filter (the imager's PSF varies little over its 74" x 113" field at 5-25 um),
pixel-integrated and sampled :data:`OVERSAMPLE` times per native pixel over
:data:`FOV_PIXELS` native pixels, written as a FITS file the MIRI simulator and the kit's
aperture corrections both read: the simulator pastes it (photutils ``ImagePSF``), the
APCORR reference is computed from it drizzled (:mod:`simval.kit.apcorr`), so that
``aper_total_flux`` of a bright star gives back what was injected.

- Pupil: :func:`simval.kit.pupil.jwst_pupil` (18 segments, secondary obscuration, struts),
  no wavefront error: at 7.7 um the telescope's ~100 nm RMS costs 0.7 % of the Strehl ratio
  (``exp(-(2 pi 0.1 / 7.7)^2)``).
- The detector's cruciform scattering (strong below 10 um, JDox "MIRI Point Spread
  Functions"): :func:`with_cruciform` with the filter's
  :data:`simval.instruments.miri.CRUCIFORM_AMPLITUDE` (none from F1500W on). The arms
  reach past the stamp (e-folding 25 px, the stamp's half-width 50 px); what they carry
  beyond it is dropped with the rest of the light outside the stamp.
- Band: a top-hat of the filter's nominal width about its pivot wavelength
  (:data:`simval.instruments.miri.FILTERS`), weighted ``1 / lambda`` (a flat-f_nu source
  counted in photons), in :func:`simval.kit.psf.default_nlambda` wavelengths.
- Normalisation: the PSF *is* the stamp. Values are flux fractions per native pixel, the
  samples sum to ``OVERSAMPLE**2``; the optical PSF's light beyond the stamp (recorded as
  ``TRUNCFRA``) is dropped by definition, and the kit's total flux of a point source is the
  stamp's.

Units: microns, arcsec, native pixels.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from simval.atomic import atomic_path
from simval.instruments import miri
from simval.kit import psf
from simval.kit.pupil import jwst_pupil

__all__ = ["FOV_PIXELS", "OVERSAMPLE", "miri_bandpass", "miri_psf", "with_cruciform",
           "write_miri_psf"]

#: Native pixels on a side of the PSF stamp (11.2" at 0.11"/px).
FOV_PIXELS = 101
#: Samples per native pixel (Nyquist needs >= 1.4 at F560W's shortest wavelength).
OVERSAMPLE = 3


def miri_bandpass(filter_name: str, nlambda: int | None = None) -> psf.Bandpass:
    """The filter as a top-hat of its nominal width, photon-weighted (module docstring)."""
    f = miri.FILTERS[miri.check_filter(filter_name)]
    lo, hi = f.pivot_um - f.width_um / 2, f.pivot_um + f.width_um / 2
    n = nlambda or psf.default_nlambda(f.width_um / f.pivot_um)
    edges = np.linspace(lo, hi, n + 1)
    weight = np.log(edges[1:] / edges[:-1])             # integral of d(lambda) / lambda
    centre = np.diff(edges) / weight                    # weighted mean wavelength per bin
    return psf.Bandpass(wavelengths_um=centre, weights=weight / weight.sum())


@lru_cache(maxsize=16)
def miri_psf(filter_name: str, fov_pixels: int = FOV_PIXELS,
             oversample: int = OVERSAMPLE) -> tuple[np.ndarray, float]:
    """The pixel-integrated PSF (``fov_pixels * oversample`` samples square, centred) and
    the fraction of the optical PSF's light outside the stamp."""
    band = miri_bandpass(filter_name)
    scale = miri.PIXEL_SCALE_ARCSEC
    need = psf.min_oversample(scale, band)
    if oversample < need:
        raise ValueError(f"oversample={oversample} undersamples the MIRI PSF in "
                         f"{filter_name}; need >= {need:.2f}")
    opd = np.zeros_like(jwst_pupil(psf.DEFAULT_PUPIL_NPIX).amplitude)
    stamp = psf.integrated_stamp(scale, band, opd, fov_pixels, oversample,
                                 psf.DEFAULT_PUPIL_NPIX)
    inside = float(stamp.sum()) / oversample**2
    amplitude = miri.CRUCIFORM_AMPLITUDE.get(miri.check_filter(filter_name), 0.0)
    return with_cruciform(stamp / inside, amplitude, oversample), 1.0 - inside


def with_cruciform(stamp: np.ndarray, amplitude: float, oversample: int) -> np.ndarray:
    """``stamp`` plus itself convolved along rows and along columns with
    ``amplitude exp(-|x| / CRUCIFORM_EFOLD_PIX)`` per native pixel (``x`` in native pixels;
    the stamp sampled ``oversample`` times per pixel), rescaled to the stamp's sum."""
    if amplitude == 0.0:
        return stamp
    from scipy.signal import fftconvolve

    n = max(stamp.shape)
    x = np.arange(-(n - 1), n) / oversample
    kernel = amplitude * np.exp(-np.abs(x) / miri.CRUCIFORM_EFOLD_PIX) / oversample
    out = (stamp + fftconvolve(stamp, kernel[None, :], mode="same")
           + fftconvolve(stamp, kernel[:, None], mode="same"))
    return out * (stamp.sum() / out.sum())


def write_miri_psf(path: str | os.PathLike, filter_name: str,
                   fov_pixels: int = FOV_PIXELS, oversample: int = OVERSAMPLE) -> Path:
    """Write the PSF of ``filter_name`` as FITS (primary array, header OVERSAMP, FILTER,
    PIXSCALX/Y, TRUNCFRA, NLAMBDA)."""
    from astropy.io import fits

    filt = miri.check_filter(filter_name)
    data, trunc = miri_psf(filt, fov_pixels, oversample)
    band = miri_bandpass(filt)
    hdu = fits.PrimaryHDU(data.astype(np.float32))
    h = hdu.header
    h["INSTRUME"], h["DETECTOR"], h["FILTER"] = "MIRI", "MIRIMAGE", filt
    h["OVERSAMP"] = (oversample, "samples per native pixel")
    h["FOVPIX"] = (fov_pixels, "native pixels on a side")
    h["PIXSCALX"], h["PIXSCALY"] = miri.PIXEL_SCALE_ARCSEC
    h["TRUNCFRA"] = (trunc, "optical PSF light outside the stamp (dropped)")
    h["NLAMBDA"] = len(band.wavelengths_um)
    h["WFE_NM"] = (0.0, "RMS wavefront error")
    h["CRUCIAMP"] = (miri.CRUCIFORM_AMPLITUDE.get(filt, 0.0),
                     "cruciform amplitude A per native pixel")
    h["CRUCIFLD"] = (miri.CRUCIFORM_EFOLD_PIX, "cruciform e-folding, native pixels")
    with atomic_path(path) as tmp:
        hdu.writeto(tmp)
    return Path(path)
