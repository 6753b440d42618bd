"""The MIRI imager's calibration references for calwebb_image2 and calwebb_image3, written
from the SIAF and the synthetic detector the MIRI simulator uses.

What each reference holds (``docs/miri.md``; shapes from ``../shared`` MIRI facts):

- DISTORTION (ASDF ``DistortionModel``): 0-based full-frame pixels -> V2/V3 (arcsec) from
  pysiaf's ``MIRIM_FULL`` Sci2Idl polynomials and the planar Idl2Tel step, with an explicit
  fitted inverse (the same construction as the NIRCam kit's,
  :mod:`simval.kit.distortion`) and a bounding box on the imager's field, so that
  assign_wcs fits its SIP approximation where there is sky.
- FILTEROFFSET: zero column/row offsets for every kit filter (the simulator places sources
  with the same distortion and no filter offset).
- AREA (``PixelAreaModel``): full-frame map of the distortion's Jacobian over the nominal
  area; PIXAR_SR/PIXAR_A2 = its mean over the imager's field.
- FLAT (``FlatModel``) per filter: the detector model's ``pixel_flat``; DO_NOT_USE and
  NON_SCIENCE left of the imager's field and on the reference columns.
- PHOTOM (``MirImgPhotomModel``): one row per filter and subarray with the kit's PHOTMJSR
  (:data:`simval.instruments.miri.FILTERS`); PHOTUJA2 follows from PIXAR_A2.
- ABVEGAOFFSET: AB - Vega per filter (:data:`simval.instruments.miri.FILTERS`).
- EMICORR (``EmiModel``): the tones the simulator injects by default, one period of each
  sampled as the reference waveform, for every subarray case of the read-clock model.

Units: pixels, arcsec, sr, MJy/sr per DN/s, DN.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from stdatamodels.jwst import datamodels

from simval.constants import SR_PER_ARCSEC2
from simval.instruments import miri
from simval.instruments.miri_detector import MiriDetectorModel, MiriEffects
from simval.instruments.miri_psf_file import read_miri_psf
from simval.kit import apcorr
from simval.kit import distortion as nircam_distortion
from simval.kit.detector_refs import dq_def_table
from simval.kit.miri_refs import finish_miri_ref
from simval.offline import import_pysiaf
from simval.seeding import component_rng

__all__ = ["EMI_WAVE_SAMPLES", "imaging_field_bbox", "miri_apcorr_rows",
           "miri_distortion_model", "miri_pixel_area", "write_miri_abvegaoffset",
           "write_miri_apcorr", "write_miri_area",
           "write_miri_distortion", "write_miri_emicorr", "write_miri_filteroffset",
           "write_miri_flat", "write_miri_photom"]

FLAG = datamodels.dqflags.pixel
DETECTOR = "MIRIMAGE"
#: Samples of one period in each EMICORR reference waveform.
EMI_WAVE_SAMPLES = 500


def _aperture() -> Any:
    return import_pysiaf().Siaf("MIRI")["MIRIM_FULL"]


def imaging_field_bbox() -> tuple[tuple[float, float], tuple[float, float]]:
    """Bounding box of the imager's field in 0-based full-frame pixels, ``((y0, y1), (x0,
    x1))`` (astropy's model order): rows 0-1023, columns 359-1027."""
    x0 = miri.IMAGER_FIRST_COLUMN - 1
    x1 = miri.FULL_COLUMNS - miri.REFERENCE_COLUMNS - 1
    return (-0.5, miri.FULL_ROWS - 0.5), (x0 - 0.5, x1 + 0.5)


def miri_distortion_model():
    """0-based full-frame pixels -> V2/V3 (arcsec), with an explicit inverse fitted over
    the full frame (+ 256 px margin) and the imager field's bounding box."""
    ap = _aperture()
    v2, v3 = float(ap.V2Ref), float(ap.V3Ref)
    forward = (nircam_distortion.pixel_to_ideal_model(ap)
               | nircam_distortion.ideal_to_tel_model(ap, v2, v3))
    forward.inverse = (nircam_distortion.tel_to_ideal_model(ap, v2, v3)
                       | nircam_distortion.fit_ideal_to_pixel_model(
                           ap, shape=(miri.FULL_ROWS, miri.FULL_COLUMNS)))
    forward.bounding_box = imaging_field_bbox()
    forward.name = "MIRIM_FULL_pixel_to_v2v3"
    return forward


def write_miri_distortion(path: str | os.PathLike) -> Path:
    """DISTORTION of the imager (module docstring)."""
    ap = _aperture()
    dm = datamodels.DistortionModel(model=miri_distortion_model(), input_units="pixel",
                                    output_units="arcsec")
    history = (f"Forward: pysiaf {nircam_distortion._pysiaf_version()} Sci2Idl + planar "
               f"Idl2Tel of MIRIM_FULL (V2Ref={ap.V2Ref} V3Ref={ap.V3Ref} arcsec, "
               f"V3IdlYAngle={ap.V3IdlYAngle} deg). Inverse: exact linear Tel2Idl + "
               f"degree-{nircam_distortion.INVERSE_DEGREE} least-squares Idl2pixel.")
    dm.meta.instrument.band = "N/A"
    dm.meta.instrument.channel = "N/A"
    return finish_miri_ref(dm, path, "distortion", "MIRIM pixel -> V2/V3 from SIAF MIRIM_FULL",
                   history=history)


def write_miri_filteroffset(path: str | os.PathLike, filters: Iterable[str]) -> Path:
    """FILTEROFFSET: zero offsets (px) for ``filters``."""
    rows = [{"filter": miri.check_filter(f), "column_offset": 0.0, "row_offset": 0.0}
            for f in sorted(set(filters))]
    fm = datamodels.FilteroffsetModel(filters=rows, instrument="MIRI")
    return finish_miri_ref(fm, path, "filteroffset", "MIRI imager filter offsets (zero)")


def miri_pixel_area() -> tuple[np.ndarray, float]:
    """Full-frame pixel area map, arcsec^2 (``[row, column]``), and its mean over the
    imager's field (the nominal PIXAR_A2)."""
    ap = _aperture()
    sx, sy = ap.distortion_transform("sci", "idl")
    d = [nircam_distortion._derivative(p, a) for p in (sx, sy) for a in (0, 1)]
    yy, xx = np.mgrid[0:miri.FULL_ROWS, 0:miri.FULL_COLUMNS].astype(float)
    u, v = xx + 1.0 - ap.XSciRef, yy + 1.0 - ap.YSciRef
    area = np.abs(d[0](u, v) * d[3](u, v) - d[1](u, v) * d[2](u, v))
    field = MiriDetectorModel(0).imager_field
    return area, float(area[field].mean())


def write_miri_area(path: str | os.PathLike) -> tuple[Path, float, float]:
    """AREA (module docstring); returns ``(path, PIXAR_SR, PIXAR_A2)``."""
    area, pixar_a2 = miri_pixel_area()
    pm = datamodels.PixelAreaModel(data=(area / pixar_a2).astype(np.float32))
    pm.meta.photometry.pixelarea_steradians = pixar_a2 * SR_PER_ARCSEC2
    pm.meta.photometry.pixelarea_arcsecsq = pixar_a2
    pm.meta.instrument.filter = "N/A"
    saved = finish_miri_ref(pm, path, "area", "MIRIM pixel area / nominal, from the SIAF Jacobian",
                    history=f"PIXAR_A2 = mean over the imager field = {pixar_a2:.9g} arcsec2")
    return saved, pixar_a2 * SR_PER_ARCSEC2, pixar_a2


def write_miri_flat(path: str | os.PathLike, filter_name: str, seed: int) -> Path:
    """FLAT of ``filter_name``: the detector model's pixel response (module docstring)."""
    filt = miri.check_filter(filter_name)
    model = MiriDetectorModel(seed)
    outside = ~model.imager_field
    dq = np.where(outside, FLAG["DO_NOT_USE"] | FLAG["NON_SCIENCE"], 0).astype(np.uint32)
    dq |= np.where(model.reference_columns, FLAG["REFERENCE_PIXEL"], 0).astype(np.uint32)
    fm = datamodels.FlatModel(data=model.pixel_flat.astype(np.float32),
                              err=np.zeros((miri.FULL_ROWS, miri.FULL_COLUMNS), np.float32),
                              dq=dq)
    fm.dq_def = dq_def_table(["DO_NOT_USE", "NON_SCIENCE", "REFERENCE_PIXEL"])
    fm.meta.instrument.filter = filt
    fm.meta.instrument.band = "N/A"
    fm.meta.exposure.readpatt = "ANY"
    return finish_miri_ref(fm, path, "flat", f"MIRIM pixel flat {filt}", seed=seed)


def write_miri_photom(path: str | os.PathLike, filters: Iterable[str]) -> Path:
    """PHOTOM: a row per filter and imaging subarray with the filter's PHOTMJSR (the same
    on every subarray: the synthetic detector has no subarray-dependent response)."""
    filts = sorted({miri.calibrated_filter(f).name for f in filters})
    pixar_a2 = miri_pixel_area()[1]
    rows = [(f, sub, miri.FILTERS[f].photmjsr, 0.0) for f in filts for sub in miri.SUBARRAYS]
    table = np.array(rows, dtype=[("filter", "S12"), ("subarray", "S15"),
                                  ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    pm = datamodels.MirImgPhotomModel(phot_table=table)
    pm.meta.photometry.pixelarea_arcsecsq = pixar_a2
    pm.meta.photometry.pixelarea_steradians = pixar_a2 * SR_PER_ARCSEC2
    return finish_miri_ref(pm, path, "photom", "MIRIM PHOTMJSR per filter and subarray",
                   history="PHOTMJSR: simval.instruments.miri.FILTERS")


def write_miri_abvegaoffset(path: str | os.PathLike, filters: Iterable[str]) -> Path:
    """ABVEGAOFFSET: AB - Vega magnitude per filter."""
    from astropy.table import Table

    filts = sorted({miri.check_filter(f) for f in filters})
    am = datamodels.ABVegaOffsetModel()
    am.abvega_offset = Table({"filter": filts,
                              "abvega_offset": [miri.FILTERS[f].ab_minus_vega for f in filts]})
    return finish_miri_ref(am, path, "abvegaoffset", "MIRI imager AB - Vega offsets")


def write_miri_emicorr(path: str | os.PathLike, effects: MiriEffects | None = None) -> Path:
    """EMICORR: the simulator's EMI tones (``effects.emi``) as reference waveforms, for
    every subarray (FULL as FULL_FAST and FULL_SLOW) and the MIRIMAGE detector."""
    tones = (effects or MiriEffects()).emi
    phase = np.arange(EMI_WAVE_SAMPLES) / EMI_WAVE_SAMPLES
    freqs = {f"Hz{freq:g}".replace(".", "p"): {
        "frequency": float(freq),
        "phase_amplitudes": (amp * np.sin(2 * np.pi * phase)).astype(np.float32)}
        for freq, amp, _ in tones}
    names = sorted(freqs)
    cases = {}
    for sub in miri.SUBARRAYS.values():
        key = "FULL_FAST" if sub.name == "FULL" else sub.name
        cases[key] = {"rowclocks": sub.rowclocks, "frameclocks": sub.frameclocks,
                      "freqs": {"FAST": names, "SLOW": {DETECTOR: names}}}
    slow = miri.FULL_SLOW
    cases["FULL_SLOW"] = {"rowclocks": slow.rowclocks, "frameclocks": slow.frameclocks,
                          "freqs": {"FAST": names, "SLOW": {DETECTOR: names}}}
    em = datamodels.EmiModel()
    em.frequencies, em.subarray_cases = freqs, cases
    return finish_miri_ref(em, path, "emicorr", "MIRI EMI tones of the simulator")


#: Sky annulus of the APCORR rows, native pixels: outside 97 % of F2100W's light.
MIRI_SKY_IN_PIX, MIRI_SKY_OUT_PIX = 20.0, 30.0
#: Where the drizzled PSF is evaluated (any pixel: the kit's MIRI PSF is the same everywhere).
_APCORR_POSITION = (693.0, 512.0)


def miri_apcorr_rows(filter_name: str, psf_path: str | os.PathLike, seed: int,
                     nreal: int = 36) -> list[tuple]:
    """APCORR rows (filter, subarray, eefraction, radius, apcorr, skyin, skyout) of one
    filter from its PSF file drizzled like calwebb_image3 (:func:`simval.kit.apcorr.
    drizzled_psf`, 4 exposures per realization), one set per imaging subarray."""
    filt = miri.check_filter(filter_name)
    model = read_miri_psf(psf_path)
    half = int(MIRI_SKY_OUT_PIX) + 6
    rng = component_rng(seed, "apcorr", DETECTOR, filt)
    drz = apcorr.drizzled_psf(model, rng, position=_APCORR_POSITION, nexp=4, nreal=nreal,
                              half_size=half)
    r_grid = np.round(np.arange(0.25, half - 1.0, 0.1), 6)
    ee_grid = apcorr.mean_encircled_energy(drz, r_grid)
    radii = np.array([apcorr.radius_at(drz, f, r_grid, ee_grid)
                      for f in apcorr.EE_FRACTIONS])
    level = float(np.mean([apcorr.annulus_level(img, tuple(c), MIRI_SKY_IN_PIX,
                                                MIRI_SKY_OUT_PIX)
                           for img, c in zip(drz.images, drz.centres, strict=True)]))
    values = 1.0 / (np.array(apcorr.EE_FRACTIONS) - np.pi * radii**2 * level)
    return [(filt, sub, f, r, a, MIRI_SKY_IN_PIX, MIRI_SKY_OUT_PIX)
            for sub in miri.SUBARRAYS
            for f, r, a in zip(apcorr.EE_FRACTIONS, radii, values, strict=True)]


def write_miri_apcorr(path: str | os.PathLike, psf_paths: dict[str, str], seed: int) -> Path:
    """APCORR: :func:`miri_apcorr_rows` of every filter in ``psf_paths`` (filter -> PSF
    file written by :func:`simval.kit.miri_psf.write_miri_psf`)."""
    rows = [row for filt in sorted(psf_paths)
            for row in miri_apcorr_rows(filt, psf_paths[filt], seed)]
    table = np.array(rows, dtype=[("filter", "S12"), ("subarray", "S17"),
                                  ("eefraction", "<f4"), ("radius", "<f4"),
                                  ("apcorr", "<f4"), ("skyin", "<f4"), ("skyout", "<f4")])
    am = datamodels.MirImgApcorrModel(apcorr_table=table)
    return finish_miri_ref(am, path, "apcorr",
                           "imager aperture corrections (drizzled kit PSF)", seed=seed)
