"""Detector reference files for the jwst pipeline (and MIRAGE), one ``write_<reftype>`` each.

Every writer builds a stdatamodels reference model from the maps of
:mod:`simval.kit.detector_maps` and :mod:`simval.kit.defects`, stamps the CRDS metadata
(:func:`simval.kit.refmeta.stamp`) and saves it atomically with a constant DATE
(:func:`simval.atomic.save_model`): the same ``(detector, seed)`` gives the same bytes.

Full frame or subarray:

- mask, saturation, superbias, linearity, gain, readnoise and flat are FULL FRAME. MIRAGE
  reads the same files (``Reffiles``) with ``fits.open(f)[1].data`` and always crops them
  with the full-frame SIAF bounds of the simulated aperture, so a subarray-sized file would
  be cut wrongly; the pipeline cuts full-frame references to the exposure itself
  (``reffile_utils.get_subarray_model``).
- dark is SUBARRAY-SIZED, one per readout window: jwst 3.0's dark step
  (``stcal.dark_current.dark_sub``) subtracts the reference frames from the science groups
  without any subarray extraction, and the frames must be at the window's frame time.
- ipc is a 3x3 kernel (no geometry).

Models are built empty and only the arrays named here are set (a constructor given data
also allocates every other schema array). Not written: dark ERR (unused by the dark step;
CRDS certify warns "Missing suggested array 'ERR'") and linearity INV_COEFFS, on purpose
(see :func:`write_linearity`). Written although all zero: saturation DQ (certify suggests
it) and linearity DQ (its default would take the 3-D shape of COEFFS and break the
linearity step).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from simval.atomic import save_model
from simval.instruments.nircam import wheel_elements
from simval.kit import detector_maps as maps
from simval.kit.defects import DEFECT_CLASSES, defect_map, science_mask
from simval.kit.detectors import Detector, check_filter
from simval.kit.readout import get_subarray
from simval.kit.refmeta import stamp

FLAG = dqflags.pixel
#: DATE written into every kit reference: a constant, so that files are reproducible
#: byte for byte (stdatamodels would otherwise write the time of saving).
FILE_DATE = "2021-12-25T00:00:00.000"
_DESCRIPTION = "simval synthetic NIRCam {what} for {det}"


def dq_def_table(flags: Iterable[str]) -> np.ndarray:
    """A DQ_DEF table (BIT, VALUE, NAME, DESCRIPTION) for the named jwst pixel flags."""
    rows = []
    for name in sorted(set(flags), key=lambda n: FLAG[n]):
        value = FLAG[name]
        rows.append((int(value).bit_length() - 1, value, name, name.replace("_", " ").lower()))
    return np.array(rows, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"),
                                 ("DESCRIPTION", "S80")])


def _new(model_class, **arrays):
    """An empty model with only ``arrays`` set.

    Passing arrays to the constructor would also allocate (and save) every other array of
    the schema at its default, e.g. a full-frame DQ of zeros.
    """
    model = model_class()
    for name, value in arrays.items():
        setattr(model, name, value)
    return model


def _flag_names(dq_values: Iterable[int]) -> set[str]:
    value = 0
    for v in dq_values:
        value |= int(v)
    return {name for name, bit in FLAG.items() if bit and value & bit}


def _finish(model, path, detector, reftype, what, seed, subarray=None, history=None) -> Path:
    stamp(model, detector, reftype, _DESCRIPTION.format(what=what, det=detector.name),
          seed=seed, subarray=subarray, history=history)
    model.validate()
    try:
        return save_model(model, path, date=FILE_DATE)
    finally:
        model.close()


def write_mask(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """Bad-pixel mask (MaskModel, uint32 DQ + DQ_DEF), full frame.

    Defects from :func:`simval.kit.defects.defect_map`; the 4-pixel reference border is
    REFERENCE_PIXEL only — with DO_NOT_USE the refpix step finds no valid reference
    pixels and does nothing (offline-facts, "Closure").
    """
    dq = np.array(defect_map(detector, seed).dq, dtype=np.uint32)
    dq[~science_mask()] = FLAG["REFERENCE_PIXEL"]
    names = _flag_names(flag for _, flag in DEFECT_CLASSES.values()) | {"REFERENCE_PIXEL"}
    model = _new(datamodels.MaskModel, dq=dq, dq_def=dq_def_table(names))
    return _finish(model, path, detector, "mask", "bad-pixel mask", seed,
                   history="Reference border flagged REFERENCE_PIXEL only (not DO_NOT_USE).")


def write_saturation(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """Saturation (SaturationModel), raw DN including the bias, full frame."""
    data = maps.saturation(detector, seed)
    model = _new(datamodels.SaturationModel, data=data,
                 dq=np.zeros(data.shape, dtype=np.uint32),
                 dq_def=dq_def_table(["NO_SAT_CHECK"]))
    return _finish(model, path, detector, "saturation", "saturation map (raw DN incl. bias)",
                   seed)


def write_superbias(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """Superbias (SuperBiasModel data/err/dq), DN, full frame.

    The same array is MIRAGE's SBANDREFPIX bias (:mod:`simval.kit.mirage_darks`).
    """
    model = _new(
        datamodels.SuperBiasModel,
        data=np.array(maps.superbias(detector, seed)),
        err=maps.superbias_err(detector, seed),
        dq=np.zeros(maps.superbias(detector, seed).shape, dtype=np.uint32),
        dq_def=dq_def_table(["UNRELIABLE_BIAS"]),
    )
    model.meta.bunit_data = model.meta.bunit_err = "DN"
    return _finish(model, path, detector, "superbias", "superbias", seed)


def write_linearity(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """Linearity (LinearityModel coeffs (4, 2048, 2048)), full frame.

    No INV_COEFFS on purpose: with them jwst 3.0 models each group as the mean of
    non-linear reads, while MIRAGE averages linear frames and then unlinearizes the group
    average; the classic per-group polynomial is the exact inverse of what MIRAGE does.
    """
    coeffs = maps.linearity_coeffs(detector, seed)
    # DQ must be written: its schema default takes the 3-D shape of COEFFS, which the
    # linearity step cannot use as a 2-D pixel DQ.
    model = _new(datamodels.LinearityModel, coeffs=coeffs,
                 dq=np.zeros(coeffs.shape[1:], dtype=np.uint32),
                 dq_def=dq_def_table(["NO_LIN_CORR"]))
    return _finish(model, path, detector, "linearity", "linearity coefficients", seed,
                   history="L(x) = c0 + c1 x + c2 x^2 + c3 x^3, x in DN after bias/refpix.")


def write_gain(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """Gain (GainModel), e-/DN, full frame, mean = MIRAGE's mean gain for the detector."""
    model = _new(datamodels.GainModel, data=maps.gain(detector, seed))
    model.meta.bunit_data = "ELECTRONS/DN"   # what CRDS certify recommends for GAIN
    return _finish(model, path, detector, "gain", "gain map (e-/DN)", seed)


def readnoise_cds(detector: Detector, seed: int) -> np.ndarray:
    """CDS read noise per pixel, DN: ``sqrt(2)`` x the single-read noise map (float32).

    This is what the jwst pipeline reads from a READNOISE reference: stcal takes it as the
    noise of a correlated double sample. Ramp fitting (OLS_C) turns it into the noise of one
    group with ``readnoise * gain / sqrt(2 * nframes)`` (``stcal/ramp_fitting/ramp_fit.py``,
    ``ramp_fitting``), LIKELY divides it by sqrt(2) (``likely_fit.py``), and jump detection
    takes its square as the CDS variance, ``read_noise**2 / (0.5 * n_reads_groupdiff)``
    (``stcal/jump/twopoint_difference.py``, "read_noise_2 is CDS"). MIRAGE's dark frames
    carry the single-read noise :func:`simval.kit.detector_maps.readnoise` per frame, so
    the two agree only if the reference holds sqrt(2) times that map.
    """
    return (maps.readnoise(detector, seed).astype(np.float64) * np.sqrt(2.0)).astype(np.float32)


def write_readnoise(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """Read noise (ReadnoiseModel), CDS noise in DN, full frame (:func:`readnoise_cds`).

    A single-read map here made the pipeline's noise model sqrt(2) too optimistic: jump
    detection then flagged 5% of the sky pixels of a FULL SHALLOW4 x 5 exposure without cosmic rays,
    and ramp fitting of the split segments biased the faint sky low by 0.0028 DN/s (-2.7%).
    """
    model = _new(datamodels.ReadnoiseModel, data=readnoise_cds(detector, seed))
    model.meta.bunit_data = "DN"
    return _finish(model, path, detector, "readnoise", "CDS read noise map (DN)", seed,
                   history="Correlated-double-sample noise: sqrt(2) x the single-read "
                           "noise of each frame of the kit's MIRAGE darks.")


def write_ipc(path: str | os.PathLike, detector: Detector, seed: int) -> Path:
    """IPC (IPCModel): 3x3 deconvolution kernel, sum 1 (MIRAGE needs ``invertIPC: True``)."""
    physical = maps.ipc_physical_kernel(detector, seed)
    kernel = maps.ipc_deconvolution_kernel(physical).astype(np.float32)
    model = _new(datamodels.IPCModel, data=kernel)
    return _finish(model, path, detector, "ipc", "IPC deconvolution kernel", seed,
                   history=f"Nearest-neighbour coupling {physical[0, 1]:.5f} (adds IPC); "
                           "the stored kernel removes it.")


def write_flat(path: str | os.PathLike, detector: Detector, seed: int, band: str) -> Path:
    """Pixel flat (FlatModel data/err/dq) for passband ``band`` (e.g. ``F150W``), full frame.

    Reference pixels: data 1, DQ DO_NOT_USE | NO_FLAT_FIELD (keeps them out of resample);
    dead pixels: data 0, DQ DO_NOT_USE | NO_FLAT_FIELD.
    """
    filter_name = check_filter(detector, band)
    data = maps.flat(detector, seed, filter_name)
    dq = np.zeros(data.shape, dtype=np.uint32)
    no_flat = np.uint32(FLAG["DO_NOT_USE"] | FLAG["NO_FLAT_FIELD"])
    dq[~science_mask()] = no_flat
    dq[data == 0] = no_flat
    err = np.full(data.shape, maps.FLAT_ERR, dtype=np.float32)
    model = _new(datamodels.FlatModel, data=data, err=err, dq=dq,
                 dq_def=dq_def_table(["DO_NOT_USE", "NO_FLAT_FIELD"]))
    model.meta.instrument.filter, model.meta.instrument.pupil = wheel_elements(filter_name)
    return _finish(model, path, detector, "flat", f"pixel flat {filter_name}", seed)


def dark_frames(detector: Detector, seed: int, subarray: str, nframes: int) -> np.ndarray:
    """Noiseless dark ramp of a readout window, DN: ``rate * (k + 1) * t_frame``, k = 0..n-1.

    Frame k has integrated dark current for k + 1 frame times (pixels are reset one frame
    time before the first read). This is the mean of MIRAGE's linearized dark SCI.
    """
    window = get_subarray(detector, subarray)
    rate = defect_map(detector, seed).dark_rate[window.slices]
    times = (np.arange(1, nframes + 1, dtype=np.float64) * window.frame_time)[:, None, None]
    return (rate[None, :, :] * times).astype(np.float32)


def write_dark(path: str | os.PathLike, detector: Detector, seed: int, subarray: str,
               nframes: int) -> Path:
    """Pipeline DARK (DarkModel) for one readout window: ``nframes`` frames, subarray-sized.

    ``nframes=1, groupgap=0`` (one frame per group), frames at the window's frame time,
    ``meta.subarray`` = the window's DMS corner and size. DQ carries the hot/warm flags of
    the mask; the detector's mean dark current (e-/s) is recorded for ramp fitting.
    """
    if nframes < 1:
        raise ValueError(f"a dark needs at least one frame, got {nframes}")
    window = get_subarray(detector, subarray)
    dq_full = defect_map(detector, seed).dq[window.slices]
    dark_bits = np.uint32(FLAG["HOT"] | FLAG["WARM"] | FLAG["DO_NOT_USE"])
    dq = np.where(dq_full & np.uint32(FLAG["HOT"] | FLAG["WARM"]), dq_full & dark_bits, 0)
    model = _new(datamodels.DarkModel, data=dark_frames(detector, seed, window.name, nframes),
                 dq=dq.astype(np.uint32), dq_def=dq_def_table(["DO_NOT_USE", "HOT", "WARM"]))
    exposure = model.meta.exposure
    exposure.nframes = 1
    exposure.groupgap = 0
    exposure.ngroups = nframes
    exposure.readpatt = "RAPID"
    exposure.noutputs = window.namps
    exposure.average_dark_current = detector.dark_e_per_s
    model.meta.subarray.fastaxis = window.fastaxis
    model.meta.subarray.slowaxis = window.slowaxis
    return _finish(model, path, detector, "dark", f"dark {window.name} {nframes} frames", seed,
                   subarray=window.stamp_tuple,
                   history=f"Noiseless mean dark; frame time {window.frame_time:.5f} s, "
                           f"{window.namps} output(s).")
