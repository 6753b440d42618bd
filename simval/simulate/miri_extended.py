"""A user's extended-emission image on the pixels of a MIRI exposure.

The image is the sky above the telescope: a 2-D FITS image (the ``SCI`` extension, else
the primary HDU) with a celestial WCS in its header and ``BUNIT = 'MJy/sr'``. For each
exposure every detector pixel centre goes through the kit's DISTORTION (pixel -> V2/V3)
and the attitude to RA/Dec, then through the image's WCS to a position in the image,
where the image is sampled (bilinear; 0 outside it). An image finer than the MIRI pixels
is first box-averaged over about a MIRI pixel (the nearest odd number of its pixels, so
nothing shifts), so what is sampled is close to the pixel's mean. The
result, in MJy/sr, is convolved with the kit's PSF of the filter (the telescope blurs the
sky) on a grid padded by the PSF's half-width, so emission just off the array adds its
wings, and converted to DN/s with the kit's PHOTMJSR like the uniform sky.

Units: MJy/sr, DN/s, arcsec, 0-based pixels.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass

import numpy as np

from simval import offline
from simval.instruments import miri
from simval.instruments.miri_psf_file import read_miri_psf

__all__ = ["EmissionImage", "emission_rate", "native_psf_kernel", "read_emission_image",
           "sample_emission"]

#: Half-width of the native-pixel PSF kernel and of the padding around the array, pixels.
KERNEL_HALF_PIX = 25
#: BUNIT values read as MJy/sr (case and spaces ignored).
MJYSR_UNITS = ("mjy/sr", "mjy sr-1", "mjy/steradian", "mjy sr**-1")


@dataclass(frozen=True)
class EmissionImage:
    """An extended-emission image: data (MJy/sr), its celestial WCS, its mean pixel scale
    (arcsec) and the file it came from."""

    data: np.ndarray
    wcs: object
    scale_arcsec: float
    path: str


@functools.lru_cache(maxsize=2)
def read_emission_image(path: str | os.PathLike) -> EmissionImage:
    """Read and check an extended-emission FITS image (module docstring); ``ValueError``
    naming the file and what is expected otherwise. Cached per process."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    name = str(path)
    try:
        with fits.open(name) as hdul:
            hdu = hdul["SCI"] if "SCI" in hdul else hdul[0]
            data, header = hdu.data, hdu.header
            if data is None or np.ndim(data) != 2:
                found = np.shape(data) if data is not None else "no data"
                raise ValueError(f"{name}: expected a 2-D image in the SCI extension or the "
                                 f"primary HDU, found {found}")
            data = np.asarray(data, dtype=np.float64)
    except OSError as exc:
        raise ValueError(f"{name}: not a readable FITS file ({exc})") from None
    unit = str(header.get("BUNIT", "")).strip().lower()
    if unit not in MJYSR_UNITS:
        raise ValueError(f"{name}: BUNIT = {header.get('BUNIT')!r}; expected 'MJy/sr' (the "
                         "image is a surface brightness)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    if not wcs.has_celestial:
        raise ValueError(f"{name}: the header has no celestial WCS (CTYPE1/2 RA---TAN and "
                         "DEC--TAN, CRVAL, CRPIX and CD or CDELT)")
    if not np.all(np.isfinite(data)):
        data = np.where(np.isfinite(data), data, 0.0)
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)
    return EmissionImage(data, wcs.celestial, scale, name)


@functools.lru_cache(maxsize=4)
def native_psf_kernel(psf_path: str) -> np.ndarray:
    """The kit PSF integrated over native pixels, centred, (2 h + 1)^2 with h =
    :data:`KERNEL_HALF_PIX`, normalised to unit sum."""
    model = read_miri_psf(psf_path)
    h = KERNEL_HALF_PIX
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1].astype(float)
    kernel = model.evaluate(xx, yy, 1.0, 0.0, 0.0)
    return kernel / kernel.sum()


def _pixel_sky(attitude: np.ndarray, subarray: str, distortion, pad: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of the pixel centres of ``subarray`` grown by ``pad`` pixels."""
    sub = miri.get_subarray(subarray)
    yy, xx = np.mgrid[-pad:sub.ysize + pad, -pad:sub.xsize + pad].astype(float)
    v2, v3 = distortion(xx + (sub.xstart - 1), yy + (sub.ystart - 1), with_bounding_box=False)
    ra, dec = offline.siaf_rotations().pointing(attitude, np.ravel(v2), np.ravel(v3))
    return np.reshape(ra, xx.shape), np.reshape(dec, xx.shape)


def sample_emission(image: EmissionImage, ra: np.ndarray, dec: np.ndarray,
                    pixel_scale_arcsec: float) -> np.ndarray:
    """The image (MJy/sr) at sky positions ``ra``, ``dec`` (deg; any shape): box-averaged
    over about one detector pixel of ``pixel_scale_arcsec`` when finer (an odd box, so
    nothing shifts), sampled bilinearly, 0 outside the image."""
    from scipy.ndimage import map_coordinates, uniform_filter

    x, y = image.wcs.world_to_pixel_values(ra, dec)
    data = image.data
    ratio = pixel_scale_arcsec / image.scale_arcsec
    box = 2 * round((ratio - 1.0) / 2.0) + 1  # odd: an even box would shift by half a pixel
    if box >= 3:
        data = uniform_filter(data, size=box, mode="constant", cval=0.0)
    return map_coordinates(data, [np.ravel(y), np.ravel(x)], order=1, mode="constant",
                           cval=0.0, prefilter=False).reshape(np.shape(ra))


def emission_rate(image: EmissionImage, scale: float, attitude: np.ndarray, subarray: str,
                  distortion, psf_path: str, photmjsr: float) -> np.ndarray:
    """The image x ``scale`` on ``subarray``'s pixels as DN/s (before the pixel
    response), PSF-convolved (module docstring). ``distortion`` is the DISTORTION
    reference's model (pixel -> V2/V3, arcsec)."""
    from scipy.signal import fftconvolve

    pad = KERNEL_HALF_PIX
    ra, dec = _pixel_sky(attitude, subarray, distortion, pad)
    sky = sample_emission(image, ra, dec, float(np.mean(miri.PIXEL_SCALE_ARCSEC)))
    blurred = fftconvolve(sky * scale, native_psf_kernel(str(psf_path)), mode="same")
    return blurred[pad:-pad, pad:-pad] / photmjsr

