"""The noiseless coronagraphic scene of one NIRCam exposure: the star behind the mask (or
beside it, by its small-grid dither), its companions, and the sky, in DN/s on the mask's
subarray.

Geometry. The attitude puts the star at the aperture's reference point (the mask centre)
plus the exposure's dither offset; every source goes sky -> V2/V3 (the attitude) -> ideal
(the SIAF aperture) -> science pixels by inverting the SIAF's Sci2Idl polynomials
(:func:`ideal_to_sci`: the SIAF's Idl2Sci polynomials are not their inverse for coronagraph
apertures, 0.455 px in y for MASK335R; ``../shared/docs/coron-facts.md``). The optics
(:mod:`simval.kit.coron_psf`, handed in as ``psf_for``) see a source at the image-plane
offset of that pixel from the mask centre, so each PSF lands on the pixel the distortion
reference says, and the truth positions are those pixels.

Light. A source of F Jy gives ``F 1e-23 / PHOTFNU`` DN/s through the CLEAR pupil (MIRAGE's
zeropoint table for F335M, module A, the NIRCam kit's calibration), times the coronagraphic
PSF, which already holds the Lyot stop's and the mask's losses. The sky (MJy/sr) gives
``S / PHOTMJSR_clear`` DN/s per pixel times the stop's throughput and the mask's intensity
transmission at the pixel.

Sampling. The sources are summed on the optics' grid, centred on the optical axis and
sampled :data:`OVERSAMPLE` times per pixel, shifted (Fourier) by the mask centre's sub-pixel
position, binned to pixels and cut to the subarray.

Units: arcsec, deg, Jy, DN/s, 0-based subarray pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simval import offline
from simval.instruments.nircam_coron import LW_SCALE_ARCSEC, CoronMask

__all__ = ["OVERSAMPLE", "CoronScene", "PsfFor", "Source", "grid_pixels", "ideal_to_sci",
           "mask_centre", "render_scene", "source_pixels"]

#: Samples per pixel of the optics' grid (Nyquist at 3.3 um: 0.05" > 0.063" / 2).
OVERSAMPLE = 2


@dataclass(frozen=True)
class Source:
    """A point source: sky position (deg) and flux density (Jy)."""

    ra: float
    dec: float
    flux_jy: float


@dataclass(frozen=True)
class CoronScene:
    """A rendered scene: the rate image (DN/s), the sources' 0-based subarray pixels and
    their optics offsets (arcsec from the mask centre)."""

    rate: np.ndarray
    x: np.ndarray
    y: np.ndarray
    offsets: tuple[tuple[float, float], ...]


def ideal_to_sci(aperture, x_idl: np.ndarray, y_idl: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """1-based science pixels of ideal coordinates (arcsec): Newton's method on the SIAF's
    Sci2Idl polynomials (converges to < 1e-9 px in 4 steps)."""
    x_idl, y_idl = np.atleast_1d(np.asarray(x_idl, float)), np.atleast_1d(np.asarray(y_idl, float))
    x = aperture.XSciRef + x_idl / aperture.XSciScale
    y = aperture.YSciRef + y_idl / aperture.YSciScale
    h = 1e-3
    for _ in range(6):
        fx, fy = aperture.sci_to_idl(x, y)
        ax, ay = aperture.sci_to_idl(x + h, y)
        bx, by = aperture.sci_to_idl(x, y + h)
        j11, j21 = (ax - fx) / h, (ay - fy) / h
        j12, j22 = (bx - fx) / h, (by - fy) / h
        rx, ry = x_idl - fx, y_idl - fy
        det = j11 * j22 - j12 * j21
        x = x + (j22 * rx - j12 * ry) / det
        y = y + (j11 * ry - j21 * rx) / det
    return x, y


def source_pixels(mask: CoronMask, attitude: np.ndarray, ra: np.ndarray, dec: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """0-based subarray pixels of sky positions (deg) at ``attitude``."""
    ap = offline.nircam_siaf()[mask.aperture]
    v2, v3 = offline.siaf_rotations().getv2v3(attitude, np.atleast_1d(ra),
                                              np.atleast_1d(dec))
    x_idl, y_idl = ap.tel_to_idl(np.atleast_1d(v2), np.atleast_1d(v3))
    x, y = ideal_to_sci(ap, x_idl, y_idl)
    return x - 1.0, y - 1.0


def mask_centre(mask: CoronMask) -> tuple[float, float]:
    """The mask centre on the subarray: the aperture's reference pixel, 0-based."""
    ap = offline.nircam_siaf()[mask.aperture]
    return float(ap.XSciRef) - 1.0, float(ap.YSciRef) - 1.0


def grid_pixels(mask: CoronMask) -> int:
    """Pixels on a side of the optics' grid that covers the subarray around the mask."""
    xc, yc = mask_centre(mask)
    n = mask.size
    return 2 * (math.ceil(max(xc, yc, n - 1 - xc, n - 1 - yc)) + 2) + 1


#: ``psf_for(offset)``: the PSF of a unit source at ``offset`` (x, y arcsec from the mask
#: centre) on a grid of ``grid_pixels(mask) * OVERSAMPLE`` samples centred on the optical
#: axis (:func:`simval.kit.coron_psf.cached_psf` with ``fov_pixels`` and ``oversample``
#: set so).
PsfFor = Callable[[tuple[float, float]], np.ndarray]


def render_scene(mask: CoronMask, psf_for: PsfFor, sources: list[Source],
                 attitude: np.ndarray, *, photfnu: float, photmjsr_clear: float,
                 lyot_throughput: float, sky_mjysr: float) -> CoronScene:
    """The scene's rate image (module docstring)."""
    from scipy.ndimage import fourier_shift

    xc, yc = mask_centre(mask)
    n = mask.size
    fov = grid_pixels(mask)
    half = fov // 2
    x, y = source_pixels(mask, attitude, np.array([s.ra for s in sources]),
                         np.array([s.dec for s in sources]))
    sx = LW_SCALE_ARCSEC
    total = np.zeros((fov * OVERSAMPLE, fov * OVERSAMPLE))
    offsets = []
    for s, xs, ys in zip(sources, x, y, strict=True):
        offset = (round(float((xs - xc) * sx), 6), round(float((ys - yc) * sx), 6))
        offsets.append(offset)
        psf = psf_for(offset)
        if psf.shape != total.shape:
            raise ValueError(f"psf_for gave {psf.shape}; the grid is {total.shape}")
        total += psf * (s.flux_jy * 1e-23 / photfnu)
    # the optical axis is the grid's centre; on the detector it is (xc, yc)
    ix, iy = math.floor(xc), math.floor(yc)
    shift = ((yc - iy) * OVERSAMPLE, (xc - ix) * OVERSAMPLE)
    total = np.fft.ifft2(fourier_shift(np.fft.fft2(total), shift)).real
    binned = total.reshape(fov, OVERSAMPLE, fov, OVERSAMPLE).sum(axis=(1, 3))
    y0, x0 = half - iy, half - ix  # grid pixel of subarray pixel (0, 0)
    stars = binned[y0:y0 + n, x0:x0 + n]
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot((xx - xc) * sx, (yy - yc) * sx)
    sky = sky_mjysr / photmjsr_clear * lyot_throughput * mask.intensity(r)
    return CoronScene(stars + sky, x, y, tuple(offsets))
