"""The noiseless MIRI scene: what reaches each pixel of a subarray, DN/s, before the
detector's effects (the input of :func:`simval.simulate.miri_ramps.miri_ramps`).

Calibration is the kit's, read from its files like MIRAGE reads the NIRCam kit: a surface
brightness ``S`` (MJy/sr) gives ``S / PHOTMJSR`` DN/s, a point source of ``F`` uJy gives
``F * 1e-12 / (PIXAR_SR * PHOTMJSR)`` DN/s in all (PHOTMJSR from the PHOTOM reference,
PIXAR_SR from AREA); both are multiplied by the detector model's pixel response (the
FLAT divides it out). Positions go through the kit's DISTORTION (V2/V3 -> pixel, its
fitted inverse) from the attitude, the same transform assign_wcs inverts.

Units: DN/s, uJy, MJy/sr, AB mag, 0-based pixels.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from simval import offline
from simval.instruments import miri
from simval.instruments.miri_detector import MiriDetectorModel
from simval.instruments.miri_psf_file import read_miri_psf

__all__ = ["MiriCalibration", "ab_to_ujy", "distortion_model", "kit_files", "render_stars",
           "scene_rate", "sky_rate", "star_pixels"]

#: A point source is pasted over this many native pixels around its centre (the kit PSF's
#: stamp is 101 px).
STAMP_HALF_PIX = 50


def ab_to_ujy(mag: np.ndarray | float) -> np.ndarray:
    """AB magnitude -> flux density, uJy."""
    return 3631e6 * 10.0 ** (-0.4 * np.asarray(mag, float))


@dataclass(frozen=True)
class MiriCalibration:
    """What the scene needs from a MIRI kit for one filter: PHOTMJSR ((MJy/sr)/(DN/s)),
    PIXAR_SR (sr), the PSF file and the distortion file."""

    photmjsr: float
    pixar_sr: float
    psf_path: str
    distortion_path: str

    @classmethod
    def from_files(cls, filter_name: str, files: dict[str, str]) -> MiriCalibration:
        """Read the values from the kit files ``files`` (:func:`kit_files`)."""
        from stdatamodels.jwst import datamodels

        filt = miri.check_filter(filter_name)
        with datamodels.MirImgPhotomModel(files["photom"]) as pm:
            rows = [r for r in pm.phot_table if r["filter"] == filt]
            if not rows:
                raise ValueError(f"{files['photom']}: the PHOTOM reference has no row for "
                                 f"{filt}")
            photmjsr = float(rows[0]["photmjsr"])
        with datamodels.PixelAreaModel(files["area"]) as am:
            pixar_sr = float(am.meta.photometry.pixelarea_steradians)
        return cls(photmjsr, pixar_sr, files["psf"], files["distortion"])

    @classmethod
    def from_kit(cls, kit, filter_name: str) -> MiriCalibration:
        """Read the values from a built MIRI kit's PHOTOM, AREA, PSF and DISTORTION."""
        return cls.from_files(filter_name, kit_files(kit, filter_name))

    def rate_per_ujy(self) -> float:
        """DN/s of a 1 uJy point source (summed over its PSF)."""
        return 1e-12 / (self.pixar_sr * self.photmjsr)


def kit_files(kit, filter_name: str) -> dict[str, str]:
    """The files of a built MIRI kit (:class:`simval.kit.build.Kit`) the simulator reads
    for ``filter_name``: photom, area, psf, distortion (absolute paths)."""
    filt = miri.check_filter(filter_name)
    return {"photom": str(kit.output("photom")), "area": str(kit.output("area/MIRIMAGE")),
            "psf": str(kit.output(f"psf/{filt}")),
            "distortion": str(kit.output("distortion/MIRIMAGE"))}


@functools.lru_cache(maxsize=4)
def distortion_model(path: str):
    """The DISTORTION reference's model, read once per process (a worker simulates many
    exposures with one kit)."""
    import asdf

    with asdf.open(path, lazy_load=False, memmap=False) as af:
        return af.tree["model"]


def star_pixels(ra: np.ndarray, dec: np.ndarray, attitude: np.ndarray, subarray: str,
                distortion_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel (x, y) of sky positions (deg) in ``subarray``: attitude -> V2/V3 ->
    the DISTORTION reference's inverse -> full frame -> subarray."""
    if np.size(ra) == 0:
        return np.zeros(0), np.zeros(0)
    rot = offline.siaf_rotations()
    v2, v3 = rot.getv2v3(attitude, np.asarray(ra, float), np.asarray(dec, float))
    x, y = distortion_model(str(distortion_path)).inverse(np.atleast_1d(v2), np.atleast_1d(v3),
                                                     with_bounding_box=False)
    sub = miri.get_subarray(subarray)
    return np.asarray(x) - (sub.xstart - 1), np.asarray(y) - (sub.ystart - 1)


def render_stars(shape: tuple[int, int], x: np.ndarray, y: np.ndarray,
                 rate_dn_s: np.ndarray, psf_path: str | os.PathLike) -> np.ndarray:
    """Point sources of total ``rate_dn_s`` at pixel ``(x, y)`` on an image of ``shape``
    (ny, nx), pixel-integrated PSF evaluated at each source's sub-pixel position; sources
    up to :data:`STAMP_HALF_PIX` outside the image add their wings."""
    model = read_miri_psf(psf_path)
    ny, nx = shape
    image = np.zeros(shape)
    for x0, y0, flux in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(rate_dn_s),
                            strict=True):
        ix, iy = int(np.floor(x0 + 0.5)), int(np.floor(y0 + 0.5))
        xa, xb = max(ix - STAMP_HALF_PIX, 0), min(ix + STAMP_HALF_PIX + 1, nx)
        ya, yb = max(iy - STAMP_HALF_PIX, 0), min(iy + STAMP_HALF_PIX + 1, ny)
        if xa >= xb or ya >= yb:
            continue
        yy, xx = np.mgrid[ya:yb, xa:xb].astype(float)
        image[ya:yb, xa:xb] += model.evaluate(xx, yy, float(flux), float(x0), float(y0))
    return image


def sky_rate(shape: tuple[int, int], sky_mjy_sr: float, cal: MiriCalibration) -> np.ndarray:
    """A uniform sky (MJy/sr) as DN/s per pixel, before the pixel response."""
    return np.full(shape, sky_mjy_sr / cal.photmjsr)


def scene_rate(subarray: str, sky_mjy_sr: float, star_ra: np.ndarray,
               star_dec: np.ndarray, star_mag_ab: np.ndarray, attitude: np.ndarray,
               cal: MiriCalibration, detector: MiriDetectorModel
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The subarray's rate image (DN/s, the pixel response applied; 0 in the reference
    columns) and the stars' pixel positions (x, y)."""
    sub = miri.get_subarray(subarray)
    shape = (sub.ysize, sub.xsize)
    x, y = star_pixels(star_ra, star_dec, attitude, subarray, cal.distortion_path)
    stars = render_stars(shape, x, y, ab_to_ujy(star_mag_ab) * cal.rate_per_ujy(),
                         cal.psf_path)
    rate = (sky_rate(shape, sky_mjy_sr, cal) + stars) * detector.cut(detector.pixel_flat,
                                                                     subarray)
    return np.where(detector.cut(detector.lit, subarray), rate, 0.0), x, y
