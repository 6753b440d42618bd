"""The MIRI PSF file: the format the kit writes (:func:`simval.kit.miri_psf.write_miri_psf`)
and the simulator and the kit's aperture corrections read.

A FITS primary array of the pixel-integrated PSF sampled ``OVERSAMP`` times per native
pixel, values = flux fraction per native pixel (samples sum to ``OVERSAMP**2``: the stamp
is the unit of total flux).
"""

from __future__ import annotations

import functools
import os

import numpy as np

__all__ = ["read_miri_psf"]


def read_miri_psf(path: str | os.PathLike):
    """The PSF file as a photutils ``ImagePSF`` (flux 1 = the stamp's total), read once per
    process and path (the stars and the galaxies of every exposure use it)."""
    return _read(str(path))


@functools.lru_cache(maxsize=16)
def _read(path: str):
    from astropy.io import fits
    from photutils.psf import ImagePSF

    with fits.open(path) as hdul:
        data = np.array(hdul[0].data, dtype=float)
        oversample = int(hdul[0].header["OVERSAMP"])
    return ImagePSF(data, oversampling=oversample)
