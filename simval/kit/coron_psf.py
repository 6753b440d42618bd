"""Coronagraphic PSFs of NIRCam's round band-limited masks, computed offline with poppy.

The optical train is poppy's (``OpticalSystem`` with FFT propagation between planes):

1. the JWST-like entrance pupil of :func:`simval.kit.pupil.jwst_pupil` with a wavefront
   error (OPD, nm) given by the caller, so the target and the reference star can be
   observed with slightly different optics (drift);
2. the image-plane mask, poppy's ``BandLimitedCoronagraph`` (circular, the mask's sigma,
   :mod:`simval.instruments.nircam_coron`), centred on the optical axis; the source sits
   ``offset`` arcsec from it (poppy's ``source_offset_r/theta``: an off-axis companion, or
   the star's small-grid dither);
3. the Lyot stop of the mask's pupil element: an approximation of NIRCam's round Lyot stop
   (:func:`lyot_stop`: the pupil's outer edge undersized, the secondary obscuration and the
   struts oversized), sized to pass 54 % of the pupil's light as the prototype of
   ``../shared/docs/coron-facts.md`` did;
4. the detector at the long-wave channel's scale, ``fov_pixels`` square, ``oversample``
   samples per pixel.

Values are the flux per sample of a source of unit flux entering the telescope (poppy's
``normalize='first'``): the occulted star's residual, or a companion's image through the
mask and the stop. PSFs are cached on disk by content (:func:`cached_psf`): the same optics,
source position and band give the same file, so a second run reuses them (poppy took ~12 s
and 1.3 GB for a 5-wavelength PSF).

Units: arcsec, microns, nm, metres.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from simval.atomic import atomic_path
from simval.instruments.nircam_coron import LW_SCALE_ARCSEC, CoronMask
from simval.kit.detectors import get_detector
from simval.kit.pupil import (
    GRID_DIAMETER_M,
    SECONDARY_RADIUS_M,
    STRUT_ANGLES_DEG,
    jwst_pupil,
    wavefront_model,
)

__all__ = ["LYOT", "CoronOptics", "LyotStop", "cached_psf", "coron_psf", "lyot_stop",
           "lyot_throughput"]

#: JWST's aperture for lambda/D, m (the metric FWHMs; the optics use the pupil itself).
TELESCOPE_DIAMETER_M = 6.5
#: Pupil samples across :data:`simval.kit.pupil.GRID_DIAMETER_M`, and poppy's padding.
PUPIL_NPIX = 256
PUPIL_PADDING = 4


@dataclass(frozen=True)
class LyotStop:
    """An annular Lyot stop with struts, metres (module docstring, item 3)."""

    outer_radius_m: float = 2.52
    inner_radius_m: float = 1.10
    strut_width_m: float = 0.40


#: The approximation of NIRCam's round Lyot stop used for every round mask.
LYOT = LyotStop()


def lyot_throughput(stop: LyotStop = LYOT) -> float:
    """The fraction of the pupil's light the stop passes (0.54 for :data:`LYOT`)."""
    pupil = jwst_pupil(PUPIL_NPIX).amplitude ** 2
    return float((pupil * lyot_stop(PUPIL_NPIX, stop)).sum() / pupil.sum())


def lyot_stop(npix: int, stop: LyotStop = LYOT) -> np.ndarray:
    """The stop's transmission (0/1) on the pupil grid (``npix`` over GRID_DIAMETER_M)."""
    c = (np.arange(npix) - (npix - 1) / 2.0) * GRID_DIAMETER_M / npix
    x, y = np.meshgrid(c, c)
    r = np.hypot(x, y)
    open_ = (r <= stop.outer_radius_m) & (r >= max(stop.inner_radius_m, SECONDARY_RADIUS_M))
    for angle in STRUT_ANGLES_DEG:  # struts from the centre outwards, angle from +y
        a = np.radians(angle)
        along = -x * np.sin(a) + y * np.cos(a)
        across = x * np.cos(a) + y * np.sin(a)
        open_ &= ~((along > 0) & (np.abs(across) < stop.strut_width_m / 2.0))
    return open_.astype(float)


@dataclass(frozen=True)
class CoronOptics:
    """What a coronagraphic PSF depends on (the cache key).

    mask : DMS mask name; sigma its size parameter (arcsec^-1).
    wavelengths_um, weights : the band (weights sum to 1).
    wfe_seed, wfe_scale : the OPD is :func:`wavefront_opd` of this seed times the scale
        (0: a perfect telescope); a drift between target and reference is another scale or
        seed.
    fov_pixels, oversample : detector stamp, native pixels and samples per pixel.
    """

    mask: str
    sigma: float
    wavelengths_um: tuple[float, ...]
    weights: tuple[float, ...]
    wfe_seed: int = 0
    wfe_scale: float = 0.0
    fov_pixels: int = 161
    oversample: int = 1
    lyot: LyotStop = field(default_factory=LyotStop)

    @classmethod
    def for_mask(cls, mask: CoronMask, wavelengths_um, weights, **kw) -> CoronOptics:
        w = np.asarray(weights, float)
        return cls(mask.name, mask.sigma, tuple(float(v) for v in wavelengths_um),
                   tuple(float(v) for v in w / w.sum()), **kw)

    def to_params(self) -> dict:
        """JSON form (a stage's parameters); the Lyot stop is the kit's, not a parameter."""
        d = asdict(self)
        d.pop("lyot")
        return {**d, "wavelengths_um": list(d["wavelengths_um"]), "weights": list(d["weights"])}

    @classmethod
    def from_params(cls, d: dict) -> CoronOptics:
        """The optics of :meth:`to_params`."""
        return cls(d["mask"], float(d["sigma"]), tuple(d["wavelengths_um"]),
                   tuple(d["weights"]), int(d["wfe_seed"]), float(d["wfe_scale"]),
                   int(d["fov_pixels"]), int(d["oversample"]))

    @property
    def fwhm_px(self) -> float:
        """lambda/D at the band's mean wavelength (D = :data:`TELESCOPE_DIAMETER_M`),
        detector px."""
        lam_um = float(np.sum(np.asarray(self.wavelengths_um) * np.asarray(self.weights)))
        return lam_um * 1e-6 / TELESCOPE_DIAMETER_M * 206264.806 / LW_SCALE_ARCSEC

    def key(self, offset_arcsec: tuple[float, float]) -> str:
        """Content key of the PSF of a source at ``offset_arcsec`` (x, y) from the mask."""
        text = json.dumps({"optics": asdict(self), "offset": [round(float(v), 6)
                                                              for v in offset_arcsec],
                           "version": 1}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def wavefront_opd(npix: int, seed: int, scale: float) -> np.ndarray:
    """OPD (nm) on the pupil grid: the NIRCam kit's static wavefront model of NRCA5's
    centre for ``seed`` (~50 nm RMS), times ``scale``."""
    if scale == 0.0:
        return np.zeros((npix, npix))
    pupil = jwst_pupil(npix)
    model = wavefront_model(int(seed), get_detector("NRCA5"))
    return scale * model.opd_nm(pupil, 1023.5, 1023.5)


def coron_psf(optics: CoronOptics, offset_arcsec: tuple[float, float]) -> np.ndarray:
    """The detector image (``fov_pixels * oversample`` square, flux per sample of a unit
    source) of a source ``offset_arcsec`` (x, y) from the mask centre."""
    import astropy.units as u
    import poppy

    pupil = jwst_pupil(PUPIL_NPIX)
    opd_m = wavefront_opd(PUPIL_NPIX, optics.wfe_seed, optics.wfe_scale) * 1e-9
    pixel = GRID_DIAMETER_M / PUPIL_NPIX * u.m / u.pixel
    osys = poppy.OpticalSystem(oversample=PUPIL_PADDING, npix=PUPIL_NPIX,
                               pupil_diameter=GRID_DIAMETER_M * u.m)
    osys.add_pupil(poppy.ArrayOpticalElement(transmission=pupil.amplitude, opd=opd_m,
                                             pixelscale=pixel, name="JWST pupil"))
    osys.add_image(poppy.BandLimitedCoronagraph(name=optics.mask, kind="circular",
                                                sigma=optics.sigma))
    osys.add_pupil(poppy.ArrayOpticalElement(transmission=lyot_stop(PUPIL_NPIX, optics.lyot),
                                             pixelscale=pixel, name="Lyot stop"))
    osys.add_detector(pixelscale=LW_SCALE_ARCSEC, fov_pixels=optics.fov_pixels,
                      oversample=optics.oversample)
    dx, dy = (float(v) for v in offset_arcsec)
    osys.source_offset_r = float(np.hypot(dx, dy))
    osys.source_offset_theta = float(np.degrees(np.arctan2(-dx, dy)))  # deg E of +y
    source = {"wavelengths": np.asarray(optics.wavelengths_um) * 1e-6,
              "weights": np.asarray(optics.weights)}
    hdul = osys.calc_psf(source=source, normalize="first")
    return np.asarray(hdul[0].data, float)


def cached_psf(optics: CoronOptics, offset_arcsec: tuple[float, float],
               cache_dir: str | os.PathLike) -> tuple[np.ndarray, bool]:
    """:func:`coron_psf` read from ``cache_dir`` when computed before; (image, from cache).
    Files are ``coron_psf_<key>.fits`` written atomically, the optics in the header."""
    from astropy.io import fits

    path = Path(cache_dir) / f"coron_psf_{optics.key(offset_arcsec)}.fits"
    if path.is_file():
        return fits.getdata(path).astype(float), True
    # stored as float32, and returned as stored: a computed PSF and a cached one are the
    # same numbers, so a run's files do not depend on the cache's state
    image = coron_psf(optics, offset_arcsec).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.PrimaryHDU(image)
    hdu.header["CORONMSK"] = optics.mask
    hdu.header["OFFSETX"] = (float(offset_arcsec[0]), "source x offset from the mask, arcsec")
    hdu.header["OFFSETY"] = (float(offset_arcsec[1]), "source y offset from the mask, arcsec")
    hdu.header["WFESEED"], hdu.header["WFESCALE"] = optics.wfe_seed, optics.wfe_scale
    hdu.header["PIXSCALE"] = (LW_SCALE_ARCSEC / optics.oversample, "arcsec per sample")
    with atomic_path(path) as tmp:
        hdu.writeto(tmp)
    return image.astype(float), False
