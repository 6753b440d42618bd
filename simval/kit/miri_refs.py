"""The MIRI imager's detector references, written from the same detector model and effect
functions the MIRI ramp simulator uses (:mod:`simval.instruments.miri_detector`,
:mod:`simval.simulate.miri_ramps`), so that calwebb_detector1 undoes exactly what was
injected.

Shapes as the pipeline needs them (``docs/miri.md``): MASK, SATURATION, LINEARITY,
GAIN and READNOISE full frame (1024 x 1032); DARK (DarkMIRIModel) and RESET (ResetModel)
4-D (nints, ngroups, ny, nx) in the subarray they apply to; RSCD a table of the groups to
skip per subarray and read pattern.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from simval.atomic import save_model
from simval.instruments import miri
from simval.instruments.miri_detector import (
    MiriDetectorModel,
    MiriEffects,
    Readout,
    additive_signature,
    linearity_coefficients,
)
from simval.kit.detector_refs import FILE_DATE, dq_def_table
from simval.kit.refmeta import stamp

__all__ = ["DETECTOR_WRITERS", "RSCD_GROUP_SKIP", "finish_miri_ref", "write_miri_dark",
           "write_miri_detector_refs", "write_miri_gain", "write_miri_linearity",
           "write_miri_mask", "write_miri_readnoise", "write_miri_reset", "write_miri_rscd",
           "write_miri_saturation"]

FLAG = datamodels.dqflags.pixel
#: Groups the rscd step flags: the first integration's first group (group_skip1) and the
#: later integrations' first groups, where the simulator's RSCD transient lives (decay
#: 1.5 groups: after 4 groups < 2 % of its amplitude is left).
RSCD_GROUP_SKIP = (1, 4)


def finish_miri_ref(model, path: str | os.PathLike, reftype: str, what: str,
                    seed: int | None = None, *, history: str | None = None,
                    subarray: tuple[str, int, int, int, int] = (
                        "FULL", 1, 1, miri.FULL_COLUMNS, miri.FULL_ROWS),
                    readpatt: str | None = None) -> Path:
    """Stamp a MIRI imager reference's metadata (DESCRIP ``simval synthetic MIRI <what>``),
    validate it and save it atomically with the kit's pinned file date."""
    stamp(model, "MIRIMAGE", reftype, f"simval synthetic MIRI {what}", seed=seed,
          history=history, subarray=subarray, instrument="MIRI")
    if hasattr(model.meta, "exposure"):
        model.meta.exposure.type = "MIR_IMAGE"
        if readpatt is not None:
            model.meta.exposure.readpatt = readpatt
    model.validate()
    try:
        return save_model(model, path, date=FILE_DATE)
    finally:
        model.close()


def _subarray_key(subarray: str) -> tuple[str, int, int, int, int]:
    sub = miri.get_subarray(subarray)
    return sub.name, sub.xstart, sub.ystart, sub.xsize, sub.ysize


def _full_shape() -> tuple[int, int]:
    return miri.FULL_ROWS, miri.FULL_COLUMNS


def write_miri_mask(path: str | os.PathLike, seed: int) -> Path:
    """MASK: REFERENCE_PIXEL on the reference columns."""
    model = MiriDetectorModel(seed)
    m = datamodels.MaskModel()
    m.dq = np.where(model.reference_columns, FLAG["REFERENCE_PIXEL"], 0).astype(np.uint32)
    m.dq_def = dq_def_table(["REFERENCE_PIXEL"])
    return finish_miri_ref(m, path, "mask", "bad-pixel mask", seed)


def write_miri_saturation(path: str | os.PathLike, seed: int) -> Path:
    """SATURATION: raw DN including the pedestal (the detector model's)."""
    m = datamodels.SaturationModel()
    m.data = MiriDetectorModel(seed).saturation_dn.astype(np.float32)
    m.dq, m.dq_def = np.zeros(_full_shape(), np.uint32), dq_def_table(["NO_SAT_CHECK"])
    return finish_miri_ref(m, path, "saturation", "saturation (raw DN with the pedestal)", seed)


def write_miri_linearity(path: str | os.PathLike, seed: int) -> Path:
    """LINEARITY: the inverse of the detector model's non-linearity about its pedestal."""
    model = MiriDetectorModel(seed)
    m = datamodels.LinearityModel()
    m.coeffs = linearity_coefficients(model.pedestal_dn, model.beta_per_dn).astype(np.float32)
    m.dq = np.zeros(_full_shape(), np.uint32)
    return finish_miri_ref(m, path, "linearity",
                   "linearity (inverse of the detector model about its pedestal)", seed)


def write_miri_gain(path: str | os.PathLike, seed: int) -> Path:
    """GAIN: :data:`simval.instruments.miri.DETECTOR`'s e-/DN everywhere."""
    m = datamodels.GainModel()
    m.data = np.full(_full_shape(), miri.DETECTOR.gain_e_per_dn, np.float32)
    return finish_miri_ref(m, path, "gain", "gain", seed)


def write_miri_readnoise(path: str | os.PathLike, seed: int) -> Path:
    """READNOISE: the CDS read noise, DN."""
    m = datamodels.ReadnoiseModel()
    m.data = np.full(_full_shape(), miri.DETECTOR.readnoise_cds_dn, np.float32)
    return finish_miri_ref(m, path, "readnoise", "CDS read noise", seed)


#: The full-frame detector references by reftype.
DETECTOR_WRITERS = {"mask": write_miri_mask, "saturation": write_miri_saturation,
                    "linearity": write_miri_linearity, "gain": write_miri_gain,
                    "readnoise": write_miri_readnoise}


def write_miri_detector_refs(directory: str | os.PathLike, seed: int) -> dict[str, Path]:
    """MASK, SATURATION, LINEARITY, GAIN and READNOISE (full frame) of detector ``seed``."""
    out = Path(directory)
    return {reftype: write(out / f"miri_{reftype}.fits", seed)
            for reftype, write in DETECTOR_WRITERS.items()}


def write_miri_dark(path: str | os.PathLike, readout: Readout, seed: int) -> Path:
    """DARK: the dark current the simulator adds, accumulated frame by frame from each
    reset (linearized DN), (nints, ngroups, ny, nx) of ``readout``'s subarray."""
    model = MiriDetectorModel(seed)
    dark = model.cut(model.dark_dn_s, readout.subarray)
    t = readout.tframe_s * np.arange(1, readout.ngroups + 1)
    data = np.broadcast_to(dark[None, None] * t[None, :, None, None],
                           (readout.nints, readout.ngroups, *dark.shape)).astype(np.float32)
    m = datamodels.DarkMIRIModel()
    m.data, m.err = data, np.zeros_like(data)
    m.dq = np.zeros(data.shape, np.uint32)
    m.dq_def = dq_def_table([])
    m.meta.exposure.ngroups, m.meta.exposure.nints = readout.ngroups, readout.nints
    m.meta.exposure.nframes, m.meta.exposure.groupgap = 1, 0
    return finish_miri_ref(m, path, "dark", f"dark ({readout.subarray}, {readout.pattern})", seed,
                   subarray=_subarray_key(readout.subarray), readpatt=readout.pattern)


def write_miri_reset(path: str | os.PathLike, readout: Readout, effects: MiriEffects,
                     seed: int) -> Path:
    """RESET: the reset anomaly the simulator adds (the reset part of
    :func:`~simval.simulate.miri_ramps.additive_signature`), (nints, ngroups, ny, nx)."""
    only_reset = replace(MiriEffects().off(), reset_amp_dn=effects.reset_amp_dn,
                         reset_tau_groups=effects.reset_tau_groups)
    ny, nx = readout.shape
    data = np.broadcast_to(additive_signature(readout, only_reset),
                           (readout.nints, readout.ngroups, ny, nx)).astype(np.float32)
    m = datamodels.ResetModel()
    m.data, m.err = data, np.zeros_like(data)
    m.dq, m.dq_def = np.zeros((ny, nx), np.uint32), dq_def_table([])
    m.meta.exposure.ngroups, m.meta.exposure.nints = readout.ngroups, readout.nints
    return finish_miri_ref(m, path, "reset", f"reset anomaly ({readout.subarray})", seed,
                   subarray=_subarray_key(readout.subarray), readpatt=readout.pattern)


def write_miri_rscd(path: str | os.PathLike, seed: int) -> Path:
    """RSCD: :data:`RSCD_GROUP_SKIP` for every imaging subarray and read pattern."""
    rows = [(sub, patt, *RSCD_GROUP_SKIP) for patt, rp in miri.READ_PATTERNS.items()
            for sub in rp.subarrays]
    table = np.array(rows, dtype=[("subarray", "S17"), ("readpatt", "S12"),
                                  ("group_skip1", "<i4"), ("group_skip", "<i4")])
    m = datamodels.RSCDModel()
    m.rscd_group_skip_table = table
    return finish_miri_ref(m, path, "rscd", "RSCD groups to skip", seed)
