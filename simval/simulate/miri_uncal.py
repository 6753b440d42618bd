"""A MIRI imager exposure as a DMS ``_uncal.fits``: ramps plus the metadata the pipeline
needs (the NIRCam list — dates, subarray, frame and group times, exposure times, wcsinfo
— and MIRI's own: READPATT, NSAMPLES, NFRAMES = 1, GROUPGAP = 0).

The WCS keywords come from the SIAF aperture of the subarray (``MIRIM_<SUBARRAY>``) and an
attitude (:mod:`simval.pointing`): V2_REF/V3_REF are the aperture's reference point,
RA_REF/DEC_REF where the attitude puts it, ROLL_REF the V3 position angle there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from simval import offline
from simval.atomic import save_model
from simval.instruments import miri
from simval.instruments.miri_detector import Readout
from simval.simulate.dms_meta import ExposureIds, set_ids, set_pointing

__all__ = ["MiriExposure", "miri_aperture", "write_miri_uncal"]

SECONDS_PER_DAY = 86_400.0


#: Who and when of a MIRI exposure (the DMS identifiers every writer shares).
MiriExposure = ExposureIds


def miri_aperture(subarray: str):
    """The pysiaf aperture of an imaging subarray (``MIRIM_FULL``, ``MIRIM_BRIGHTSKY``...)."""
    return offline.miri_siaf()[f"MIRIM_{miri.get_subarray(subarray).name}"]


def _times(readout: Readout, start_mjd: float) -> dict[str, float]:
    """Frame, group, integration and exposure times, s, and start/mid/end, MJD: every
    integration reads ``ngroups`` frames after one reset frame."""
    tframe = readout.tframe_s
    integration = readout.ngroups * tframe
    duration = readout.nints * (readout.ngroups + 1) * tframe
    return {"frame_time": tframe, "group_time": tframe, "integration_time": integration,
            "exposure_time": readout.nints * integration,
            "effective_exposure_time": readout.nints * integration, "duration": duration,
            "start_time": start_mjd, "mid_time": start_mjd + duration / 2 / SECONDS_PER_DAY,
            "end_time": start_mjd + duration / SECONDS_PER_DAY}


def write_miri_uncal(path: str | os.PathLike, ramps: np.ndarray, readout: Readout,
                     exposure: MiriExposure, attitude: np.ndarray) -> Path:
    """Write ``ramps`` (uint16 DN, (nints, ngroups, ny, nx)) as a MIR_IMAGE uncal file.

    ``attitude`` is the pointing (3x3, :func:`simval.pointing.attitude_at_pa_v3`); the file
    is written atomically with a pinned date where :func:`simval.atomic.reproducible` is on.
    """
    from stdatamodels.jwst import datamodels

    filt = miri.check_filter(exposure.filter_name)
    sub = miri.get_subarray(readout.subarray)
    shape = (readout.nints, readout.ngroups, sub.ysize, sub.xsize)
    if ramps.shape != shape:
        raise ValueError(f"ramps are {ramps.shape}; {readout} needs {shape}")
    ap = miri_aperture(sub.name)

    model = datamodels.Level1bModel(data=np.asarray(ramps, np.uint16))
    m = model.meta
    start = _times(readout, exposure.start_mjd)
    set_ids(m, exposure)
    m.instrument.name, m.instrument.detector = "MIRI", "MIRIMAGE"
    m.instrument.filter = filt
    m.exposure.type, m.exposure.readpatt = "MIR_IMAGE", readout.pattern
    m.exposure.nsamples = miri.READ_PATTERNS[readout.pattern].nsamples
    m.exposure.nframes, m.exposure.groupgap = 1, 0
    m.exposure.ngroups, m.exposure.nints = readout.ngroups, readout.nints
    m.exposure.integration_start, m.exposure.integration_end = 1, readout.nints
    for key, value in start.items():
        setattr(m.exposure, key, value)
    m.subarray.name = sub.name
    m.subarray.xstart, m.subarray.ystart = sub.xstart, sub.ystart
    m.subarray.xsize, m.subarray.ysize = sub.xsize, sub.ysize
    m.subarray.fastaxis, m.subarray.slowaxis = 1, 2
    set_pointing(m, ap, attitude)
    return save_model(model, path)
