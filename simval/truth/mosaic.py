"""The noiseless truth mosaic: MIRAGE's seed images drizzled onto the pipeline mosaic's grid.

A perfect pipeline turns each exposure's noiseless seed image (ADU/s, sky + sources, no
flat, no noise) into ``seed x PHOTMJSR`` MJy/sr in the cal frame (PHOTMJSR of the photom
reference MIRAGE simulated with, so that a calibration with a wrong photom is seen), and
resample puts that on the ``_i2d`` grid. This module does exactly that with jwst's own
resample (same WCS from the image2 cal files — the simulated, true WCS — same DQ-based
weights, same kernel and pixfrac as the ``_i2d`` records; with an error in an exposure's
recorded pointing, its cal WCS corrected by that error), so that any statistic measured
on the mosaic can be measured the same way on the truth. The background metric uses it: the
light of faint, undetected galaxies and of extended wings in "sky" pixels is part of what a
perfect pipeline returns (measured on the quickstart: +0.4% to +6.6% of the sky in MIRAGE's
own source-free seed pixels), so the expected level comes from the truth mosaic and not
from the injected sky alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.atomic import atomic_path
from simval.pointing_errors import true_wcs
from simval.truth.exposures import mirage_photmjsr
from simval.truth.rundir import file_ending

if TYPE_CHECKING:
    from simval.layout import RunLayout
    from simval.plan import Plan, Product

__all__ = ["TruthMosaicError", "noiseless_mosaic", "product_truth_mosaic", "write_truth_mosaic"]

RESAMPLE_GOOD_BITS = "~DO_NOT_USE+NON_SCIENCE"  # jwst.resample.resample_step.GOOD_BITS


class TruthMosaicError(RuntimeError):
    """A truth mosaic cannot be made; the message names the missing file."""


def _seed_image(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path) as hdul:
        units = str(hdul[1].header.get("UNITS", hdul[0].header.get("UNITS", "ADU/sec")))
        if units.strip().lower() not in ("adu/sec", "adu/s"):
            raise TruthMosaicError(f"{path}: seed image UNITS = {units!r}; expected ADU/sec")
        return np.asarray(hdul[1].data, np.float64)


def noiseless_mosaic(cal_files: Sequence[str | os.PathLike],
                     seed_images: Sequence[str | os.PathLike],
                     i2d: str | os.PathLike,
                     photmjsr: Sequence[float | None] | None = None,
                     pointing_errors_mas: Sequence[Sequence[float]] | None = None
                     ) -> np.ndarray:
    """Noiseless seed images resampled onto the grid of ``i2d``, MJy/sr.

    Parameters
    ----------
    cal_files : sequence of path
        Image2 ``_cal.fits`` of each exposure (their WCS, DQ, VAR_RNOISE and PHOTMJSR).
    seed_images : sequence of path
        MIRAGE ``*_final_seed_image.fits`` of the same exposures (ADU/s, detector frame).
    i2d : path
        The pipeline mosaic whose grid, kernel, pixfrac and weighting are reproduced.
    photmjsr : sequence of float or None, optional
        Per exposure, the simulator's MJy/sr per ADU/s (None: the cal file's PHOTMJSR).
    pointing_errors_mas : sequence of (float, float), optional
        Per exposure, the error of its recorded pointing (:mod:`simval.pointing_errors`):
        the seed image goes through the cal WCS corrected by it, the true WCS.

    Returns
    -------
    ndarray
        The truth mosaic (NaN where no exposure contributes).
    """
    from jwst.datamodels import ModelLibrary
    from jwst.resample.resample import ResampleImage
    from stdatamodels.jwst import datamodels

    if len(cal_files) != len(seed_images) or not cal_files:
        raise TruthMosaicError(f"{len(cal_files)} cal files for {len(seed_images)} seed images")
    models = []
    conversions = list(photmjsr) if photmjsr is not None else [None] * len(cal_files)
    errors = list(pointing_errors_mas) if pointing_errors_mas is not None else \
        [(0.0, 0.0)] * len(cal_files)
    for cal, seed, simulated, error in zip(cal_files, seed_images, conversions, errors,
                                           strict=True):
        for path in (cal, seed):
            if not Path(path).is_file():
                raise TruthMosaicError(f"{path}: missing (needed for the truth mosaic)")
        model = datamodels.ImageModel(str(cal))
        data = _seed_image(Path(seed))
        if data.shape != model.data.shape:
            raise TruthMosaicError(f"{seed}: shape {data.shape} differs from {cal} "
                                   f"{model.data.shape}")
        factor = simulated if simulated is not None else \
            model.meta.photometry.conversion_megajanskys
        if factor is None:
            raise TruthMosaicError(f"{cal}: no PHOTMJSR (photom step not run?)")
        model.data = (data * factor).astype(np.float32)
        model.meta.background.level = None  # nothing to subtract: the truth keeps its sky
        model.meta.background.subtracted = None
        model.meta.wcs = true_wcs(model.meta.wcs, error)
        models.append(model)
    with datamodels.open(str(i2d)) as ref:
        wcs = ref.meta.wcs
        shape = ref.data.shape
        pars = ref.meta.resample
        kernel = pars.kernel or "square"
        pixfrac = float(pars.pixfrac or 1.0)
        weight = pars.weight_type or "ivm"
        area = ref.meta.photometry.pixelarea_arcsecsq
    wcs.array_shape = shape
    scale = float(np.sqrt(area)) if area else None
    library = ModelLibrary(models, on_disk=False)
    resampler = ResampleImage(library, pixfrac=pixfrac, kernel=kernel, fillval="NAN",
                              weight_type=weight, good_bits=RESAMPLE_GOOD_BITS,
                              blendheaders=False, output_wcs={"wcs": wcs, "pixel_scale": scale},
                              enable_ctx=False, enable_var=False, report_var=False,
                              compute_err=None)
    out = resampler.resample_many_to_one()
    return np.asarray(out.data, np.float64)


def write_truth_mosaic(data: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a truth mosaic (MJy/sr) as a one-extension FITS file, atomically."""
    from astropy.io import fits

    path = Path(path)
    hdu = fits.ImageHDU(np.asarray(data, np.float32), name="SCI")
    hdu.header["BUNIT"] = "MJy/sr"
    hdu.header["COMMENT"] = "noiseless MIRAGE seed images resampled onto the pipeline mosaic"
    with atomic_path(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
    return path


def product_truth_mosaic(layout: RunLayout, plan: Plan, product: Product,
                         i2d: str | os.PathLike) -> tuple[np.ndarray | None, str]:
    """The truth mosaic of one product of a run, or ``(None, reason)`` when an exposure has
    no seed image or cal file. Reads each member's image2 cal file and MIRAGE seed image
    from the run directory (the truth stage declares them as its inputs)."""

    cals, seeds, conversions, errors = [], [], [], []
    for e in plan.exposures_in(product):
        seed = file_ending(layout.exposure_dir(e.base_name), "_final_seed_image.fits") \
            if layout.exposure_dir(e.base_name).is_dir() else None
        cal = layout.image2 / e.cal_name
        if seed is None or not cal.is_file():
            missing = "seed image" if seed is None else "cal file"
            return None, f"no truth mosaic: {e.base_name} has no {missing}"
        cals.append(cal)
        seeds.append(seed)
        conversions.append(mirage_photmjsr(layout, e))
        errors.append((e.pointing_error_ra_mas, e.pointing_error_dec_mas))
    return noiseless_mosaic(cals, seeds, i2d, conversions, errors), "computed"
