"""A user's extended image (a debris disk, say) through the coronagraph.

The image is the sky around the target: a 2-D FITS image with a celestial WCS and
``BUNIT = 'MJy/sr'`` (:func:`simval.simulate.miri_extended.read_emission_image`, the same
reader as MIRI's extended emission). For each exposure every subarray pixel centre
(padded by the kernel's half-width) goes through the SIAF's Sci2Idl and the attitude to
RA/Dec, where the image is sampled (box-averaged over a 0.063" pixel when finer); the
focal-plane mask multiplies it by its intensity transmission at that radius, and the
result is blurred by the optics' off-axis PSF (the simulator's own, at 80 px = 5.04" from
the mask, cut to :data:`KERNEL_HALF_PIX` and normalised) and converted to DN/s like the
uniform sky: MJy/sr / PHOTMJSR(CLEAR) x the Lyot stop's throughput. The rolls turn the
disk on the detector as they turn the companions.

Units: MJy/sr, DN/s, arcsec, 0-based pixels.
"""

from __future__ import annotations

import numpy as np

from simval import offline
from simval.instruments.nircam_coron import LW_SCALE_ARCSEC, CoronMask
from simval.simulate.coron_scene import OVERSAMPLE, PsfFor, grid_pixels, mask_centre
from simval.simulate.miri_extended import EmissionImage, sample_emission

__all__ = ["KERNEL_HALF_PIX", "KERNEL_OFFSET_PIX", "disk_rate", "offaxis_kernel"]

#: Half-width of the off-axis PSF kernel, native pixels.
KERNEL_HALF_PIX = 20
#: Where the kernel's PSF is taken: this many native pixels from the mask along +y (a
#: whole number, so the kernel is centred on a pixel; 5.04", where the mask passes 100 %).
KERNEL_OFFSET_PIX = 80


def offaxis_kernel(psf_for: PsfFor, mask: CoronMask) -> np.ndarray:
    """The optics' off-axis PSF on native pixels, (2 h + 1)^2, unit sum (module docstring);
    ``psf_for`` as the scene's (the optics' grid, :data:`OVERSAMPLE` samples per pixel)."""
    fov = grid_pixels(mask)
    psf = psf_for((0.0, round(KERNEL_OFFSET_PIX * LW_SCALE_ARCSEC, 6)))
    binned = psf.reshape(fov, OVERSAMPLE, fov, OVERSAMPLE).sum(axis=(1, 3))
    half, h = fov // 2, KERNEL_HALF_PIX
    y = half + KERNEL_OFFSET_PIX
    kernel = binned[y - h:y + h + 1, half - h:half + h + 1]
    return kernel / kernel.sum()


def disk_rate(image: EmissionImage, scale: float, mask: CoronMask, attitude: np.ndarray,
              kernel: np.ndarray, *, photmjsr_clear: float, lyot_throughput: float
              ) -> np.ndarray:
    """The image x ``scale`` on the mask's subarray as DN/s (module docstring)."""
    from scipy.signal import fftconvolve

    ap = offline.nircam_siaf()[mask.aperture]
    n, h = mask.size, kernel.shape[0] // 2
    yy, xx = np.mgrid[-h:n + h, -h:n + h].astype(float)
    x_idl, y_idl = ap.sci_to_idl(xx + 1.0, yy + 1.0)
    v2, v3 = ap.idl_to_tel(x_idl, y_idl)
    ra, dec = offline.siaf_rotations().pointing(attitude, np.ravel(v2), np.ravel(v3))
    sky = sample_emission(image, np.reshape(ra, xx.shape), np.reshape(dec, xx.shape),
                          LW_SCALE_ARCSEC) * scale
    xc, yc = mask_centre(mask)
    r = np.hypot(xx - xc, yy - yc) * LW_SCALE_ARCSEC
    blurred = fftconvolve(sky * mask.intensity(r), kernel, mode="same")
    return blurred[h:-h, h:-h] / photmjsr_clear * lyot_throughput
