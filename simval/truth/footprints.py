"""Where each exposure of a mosaic lies: its image2 cal file's WCS, array shape and DQ.

An :class:`ExposureFrame` is one exposure as image2 calibrated it: the plan's identity of
the exposure (base name, detector, visit, dither position), the cal file's pixel array
shape and DQ array, and its WCS both ways (0-based pixels <-> ICRS deg). The WCS is the
cal file's gwcs (``meta.wcs``, read with stdatamodels; its forward and backward
transforms, without the bounding box, so positions just off the array map too); a cal
file without one falls back to the FITS WCS of its SCI header. The frames are what the
evaluation maps mosaic pixels and sources through (:mod:`simval.metrics.mosaic_defects`,
:mod:`simval.metrics.breakdown`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.truth.rundir import TruthError

if TYPE_CHECKING:
    from simval.layout import RunLayout
    from simval.plan import Exposure, Plan, Product

__all__ = ["ExposureFrame", "FrameError", "exposure_frames", "read_exposure_frame"]

Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class FrameError(TruthError):
    """An exposure's cal file is missing or has no usable WCS (the message names it)."""


@dataclass(frozen=True)
class ExposureFrame:
    """One exposure's detector frame (see the module docstring).

    Attributes
    ----------
    name : str
        Exposure base name (``jw..._nrcb1``).
    detector : str
        DMS detector name (``NRCB1``).
    visit, dither : int
        The plan's visit (mosaic tile) and dither position within it (1-based).
    shape : (ny, nx)
        Cal array shape, pixels.
    path : str
        The cal file (its DQ array is read from it when asked for, :attr:`dq`, so that a
        mosaic of many full-frame exposures does not hold every DQ array at once).
    pixel_to_world, world_to_pixel : callable
        ``(x, y) -> (ra, dec)`` and back; 0-based pixels, deg.
    wcs_source : str
        ``gwcs`` or ``FITS header``.
    """

    name: str
    detector: str
    visit: int
    dither: int
    shape: tuple[int, int]
    path: str
    pixel_to_world: Transform
    world_to_pixel: Transform
    wcs_source: str

    @property
    def dq(self) -> np.ndarray:
        """The cal file's DQ array (uint32; zeros if it has none)."""
        from astropy.io import fits

        with fits.open(self.path, memmap=False) as hdul:
            if "DQ" not in hdul:
                return np.zeros(self.shape, np.uint32)
            dq = np.array(hdul["DQ"].data, np.uint32)
        if dq.shape != self.shape:
            raise FrameError(f"{self.path}: DQ shape {dq.shape} differs from SCI {self.shape}")
        return dq


def _gwcs_transforms(wcs: Any) -> tuple[Transform, Transform]:
    forward = wcs.forward_transform
    try:
        backward = wcs.backward_transform
    except NotImplementedError:
        def backward(ra, dec):  # iterative inverse, bounding box off
            return wcs.invert(ra, dec, with_bounding_box=False)

    def to_world(x, y):
        ra, dec = forward(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(ra, float), np.asarray(dec, float)

    def to_pixel(ra, dec):
        x, y = backward(np.asarray(ra, float), np.asarray(dec, float))
        return np.asarray(x, float), np.asarray(y, float)

    return to_world, to_pixel


def _fits_transforms(header: Any, path: Path) -> tuple[Transform, Transform]:
    from astropy.wcs import WCS

    wcs = WCS(header)
    if not wcs.has_celestial:
        raise FrameError(f"{path}: no WCS (no gwcs in meta.wcs and no celestial FITS WCS in "
                         "the SCI header); was assign_wcs run?")
    wcs = wcs.celestial

    def to_world(x, y):
        ra, dec = wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return np.asarray(ra, float), np.asarray(dec, float)

    def to_pixel(ra, dec):
        x, y = wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
        return np.asarray(x, float), np.asarray(y, float)

    return to_world, to_pixel


def read_exposure_frame(path: str | os.PathLike, *, name: str, detector: str, visit: int,
                        dither: int) -> ExposureFrame:
    """The :class:`ExposureFrame` of one image2 ``_cal.fits``.

    Raises
    ------
    FrameError
        If the file is missing, has no 2-D SCI, or has no WCS.
    """
    from astropy.io import fits
    from stdatamodels.jwst import datamodels
    from stdatamodels.jwst.datamodels.util import NoTypeWarning

    path = Path(path)
    if not path.is_file():
        raise FrameError(f"{path}: the exposure's cal file is missing")
    try:
        header = fits.getheader(path, "SCI")
    except KeyError:
        raise FrameError(f"{path}: no SCI extension") from None
    if header.get("NAXIS") != 2:
        raise FrameError(f"{path}: SCI is {header.get('NAXIS')}-D, expected 2-D")
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    try:
        with warnings.catch_warnings():  # a file without DATAMODL opens as an ImageModel
            warnings.simplefilter("ignore", NoTypeWarning)
            with datamodels.open(str(path)) as model:
                wcs = model.meta.wcs
    except Exception as exc:  # not a datamodel at all: say which file
        raise FrameError(f"{path}: cannot be read as a JWST datamodel "
                         f"({type(exc).__name__}: {exc})") from exc
    if wcs is not None:
        to_world, to_pixel = _gwcs_transforms(wcs)
        source = "gwcs"
    else:
        to_world, to_pixel = _fits_transforms(header, path)
        source = "FITS header"
    return ExposureFrame(name, detector, int(visit), int(dither), shape, str(path), to_world,
                         to_pixel, source)


def exposure_frames(layout: RunLayout, plan: Plan, product: Product,
                    exposures: list[Exposure] | None = None) -> list[ExposureFrame]:
    """The frames of a product's exposures (plan order), from ``image2/<base>_cal.fits``.

    Raises
    ------
    FrameError
        Naming the first cal file that is missing or has no WCS.
    """
    chosen = exposures if exposures is not None else plan.exposures_in(product)
    return [read_exposure_frame(layout.image2 / e.cal_name, name=e.base_name,
                                detector=e.detector, visit=e.visit, dither=e.dither_position)
            for e in chosen]
