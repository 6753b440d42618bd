"""The references calwebb_image2 and calwebb_coron3 read for NIRCam round-mask
coronagraphy, consistent with simval's coronagraphic simulator.

What each is (``../shared/docs/coron-facts.md`` lists the minimum that passed offline):

- DISTORTION: the NIRCam kit's construction (:func:`simval.kit.distortion.distortion_model`)
  on the mask's full-frame SIAF aperture (``NRCA5_FULL_MASK335R``), whose Sci2Idl
  polynomials and reference point differ from the imaging aperture's; the inverse is
  fitted, not SIAF's Idl2Sci (0.455 px off in y for MASK335R);
- AREA: full frame (photom slices it with SUBSTRT), the same aperture's Jacobian;
- FILTEROFFSET: zero offsets for the mask's filters with its pupil;
- FLAT: ones on the subarray (the simulator has no pixel response);
- PHOTOM: one row per filter with the mask's pupil: the CLEAR-pupil PHOTMJSR of the NIRCam
  kit (MIRAGE's PHOTFNU) divided by the Lyot stop's throughput, so an unocculted source
  calibrates to its true flux (the simulator's PSFs carry the stop's loss);
- PSFMASK: the mask's intensity transmission on the subarray (1 = full weight), which
  align_refs weights its fit with and klip multiplies by.

Units: arcsec, sr, MJy/sr per DN/s.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from simval import offline
from simval.atomic import save_model
from simval.instruments.nircam_coron import get_mask
from simval.kit.detector_refs import FILE_DATE
from simval.kit.detectors import get_detector
from simval.kit.distortion import SR_PER_ARCSEC2, distortion_model, pixel_area_arcsec2
from simval.kit.photometry import zeropoint_row
from simval.kit.refmeta import stamp

__all__ = ["CORON_EXP_TYPES", "write_coron_area", "write_coron_distortion",
           "write_coron_filteroffset", "write_coron_flat", "write_coron_photom",
           "write_coron_psfmask"]

#: EXP_TYPE pattern of the coronagraphic references.
CORON_EXP_TYPES = "NRC_CORON|NRC_TACQ|NRC_TACONFIRM|"


def _coron_meta(model, mask_name: str, *, pupil: bool = True) -> None:
    mask = get_mask(mask_name)
    model.meta.exposure.type = "NRC_CORON"
    if hasattr(model.meta.exposure, "p_exptype"):
        model.meta.exposure.p_exptype = CORON_EXP_TYPES
    if pupil:
        model.meta.instrument.pupil = mask.pupil
        if hasattr(model.meta.instrument, "p_pupil"):
            model.meta.instrument.p_pupil = mask.pupil + "|"
    if hasattr(model.meta.instrument, "coronagraph"):
        model.meta.instrument.coronagraph = mask.name
    if hasattr(model.meta, "subarray"):  # CRDS's PSFMASK spec requires the readout axes
        model.meta.subarray.fastaxis = mask.fastaxis
        model.meta.subarray.slowaxis = mask.slowaxis


def _subarray(mask_name: str) -> tuple[str, int, int, int, int]:
    m = get_mask(mask_name)
    return (m.subarray, m.substrt[0], m.substrt[1], m.size, m.size)


def write_coron_distortion(path: str | os.PathLike, mask_name: str) -> Path:
    """DISTORTION of the mask's detector from its full-frame SIAF aperture."""
    from stdatamodels.jwst.datamodels import DistortionModel

    mask = get_mask(mask_name)
    det = get_detector(mask.detector)
    model = distortion_model(det, aperture=mask.full_aperture)
    with DistortionModel(model=model, input_units="pixel", output_units="arcsec") as dm:
        stamp(dm, det, "distortion",
              f"{det.name} pixel -> V2/V3 from SIAF {mask.full_aperture}",
              history=f"Sci2Idl + planar Idl2Tel of {mask.full_aperture}; fitted inverse.")
        _coron_meta(dm, mask.name)
        return save_model(dm, path, date=FILE_DATE)


@functools.lru_cache(maxsize=4)
def coron_pixel_area(mask_name: str) -> tuple[np.ndarray, float]:
    """Full-frame pixel area map (arcsec^2, read-only) of the mask's aperture and its mean;
    computed once per process (AREA and every PHOTOM row need it)."""
    mask = get_mask(mask_name)
    area = pixel_area_arcsec2(mask.detector, aperture=mask.full_aperture)
    area.setflags(write=False)
    return area, float(area.mean())


def write_coron_area(path: str | os.PathLike, mask_name: str) -> Path:
    """Full-frame AREA (area / mean) with PIXAR_SR and PIXAR_A2 the mean."""
    from stdatamodels.jwst.datamodels import PixelAreaModel

    mask = get_mask(mask_name)
    area, pixar_a2 = coron_pixel_area(mask.name)
    with PixelAreaModel(data=(area / pixar_a2).astype(np.float32)) as pm:
        stamp(pm, get_detector(mask.detector), "area",
              f"{mask.detector} pixel area / nominal from SIAF {mask.full_aperture}")
        pm.meta.photometry.pixelarea_steradians = pixar_a2 * SR_PER_ARCSEC2
        pm.meta.photometry.pixelarea_arcsecsq = pixar_a2
        pm.meta.instrument.filter = "ANY"
        _coron_meta(pm, mask.name)
        return save_model(pm, path, date=FILE_DATE)


def write_coron_filteroffset(path: str | os.PathLike, mask_name: str,
                             filters: tuple[str, ...]) -> Path:
    """FILTEROFFSET with zero offsets for ``filters`` behind the mask's pupil."""
    from stdatamodels.jwst.datamodels import FilteroffsetModel

    mask = get_mask(mask_name)
    rows = [{"filter": f, "pupil": mask.pupil, "row_offset": 0.0, "column_offset": 0.0}
            for f in filters]
    with FilteroffsetModel(filters=rows, instrument="NIRCAM") as fm:
        stamp(fm, get_detector(mask.detector), "filteroffset",
              f"{mask.detector} zero filter offsets behind {mask.pupil}")
        fm.meta.input_units = "pixel"
        fm.meta.instrument.filter = "ANY"
        fm.meta.instrument.pfilter = "|".join(filters) + "|"
        _coron_meta(fm, mask.name)
        return save_model(fm, path, date=FILE_DATE)


def write_coron_flat(path: str | os.PathLike, mask_name: str, filter_name: str) -> Path:
    """FLAT of ones on the mask's subarray."""
    from stdatamodels.jwst.datamodels import FlatModel

    mask = get_mask(mask_name)
    shape = (mask.size, mask.size)
    model = FlatModel(data=np.ones(shape, np.float32), err=np.zeros(shape, np.float32),
                      dq=np.zeros(shape, np.uint32))
    return _save_subarray_ref(model, path, mask.name, filter_name, "flat",
                              f"{mask.detector} {filter_name} {mask.pupil} flat of ones")


def _save_subarray_ref(model, path: str | os.PathLike, mask_name: str, filter_name: str,
                       reftype: str, description: str) -> Path:
    """Stamp a reference on the mask's subarray for ``filter_name`` and save it."""
    mask = get_mask(mask_name)
    with model:
        stamp(model, get_detector(mask.detector), reftype, description,
              subarray=_subarray(mask.name))
        model.meta.instrument.filter = filter_name
        _coron_meta(model, mask.name)
        return save_model(model, path, date=FILE_DATE)


def coron_photmjsr(mask_name: str, filter_name: str, lyot_throughput: float) -> float:
    """PHOTMJSR of ``filter_name`` behind the mask's pupil, (MJy/sr) per (DN/s)."""
    mask = get_mask(mask_name)
    _, pixar_a2 = coron_pixel_area(mask.name)
    photfnu = zeropoint_row(get_detector(mask.detector), filter_name, "CLEAR").photfnu
    return photfnu * 1e23 / 1e6 / (pixar_a2 * SR_PER_ARCSEC2) / lyot_throughput


def write_coron_photom(path: str | os.PathLike, mask_name: str, filters: tuple[str, ...],
                       lyot_throughput: float) -> Path:
    """PHOTOM rows (filter, the mask's pupil) of :func:`coron_photmjsr`."""
    from stdatamodels.jwst.datamodels import NrcImgPhotomModel

    mask = get_mask(mask_name)
    table = np.zeros(len(filters), dtype=[("filter", "S12"), ("pupil", "S12"),
                                          ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    for k, f in enumerate(filters):
        table[k] = (f, mask.pupil, coron_photmjsr(mask.name, f, lyot_throughput), 0.0)
    _, pixar_a2 = coron_pixel_area(mask.name)
    with NrcImgPhotomModel(phot_table=table) as pm:
        stamp(pm, get_detector(mask.detector), "photom",
              f"{mask.detector} {mask.pupil} PHOTMJSR: CLEAR / Lyot throughput "
              f"{lyot_throughput:.4f}")
        pm.meta.photometry.pixelarea_steradians = pixar_a2 * SR_PER_ARCSEC2
        pm.meta.photometry.pixelarea_arcsecsq = pixar_a2
        _coron_meta(pm, mask.name, pupil=False)
        return save_model(pm, path, date=FILE_DATE)


def write_coron_psfmask(path: str | os.PathLike, mask_name: str, filter_name: str) -> Path:
    """PSFMASK: the mask's intensity transmission on its subarray, centred on the SIAF
    reference point."""
    from stdatamodels.jwst.datamodels import PsfMaskModel

    mask = get_mask(mask_name)
    ap = offline.nircam_siaf()[mask.aperture]
    yy, xx = np.mgrid[0:mask.size, 0:mask.size]
    r = np.hypot((xx - (ap.XSciRef - 1)) * ap.XSciScale, (yy - (ap.YSciRef - 1)) * ap.YSciScale)
    return _save_subarray_ref(PsfMaskModel(data=mask.intensity(r).astype(np.float32)), path,
                              mask.name, filter_name, "psfmask",
                              f"{mask.name} intensity transmission on {mask.subarray}")
