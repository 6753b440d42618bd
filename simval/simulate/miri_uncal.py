"""A MIRI imager exposure as a DMS ``_uncal.fits``: ramps plus the metadata the pipeline
needs (the NIRCam list — dates, subarray, frame and group times, exposure times, wcsinfo
— and MIRI's own: READPATT, NSAMPLES, NFRAMES = 1, GROUPGAP = 0).

The WCS keywords come from the SIAF aperture of the subarray (``MIRIM_<SUBARRAY>``) and an
attitude (:mod:`simval.pointing`): V2_REF/V3_REF are the aperture's reference point,
RA_REF/DEC_REF where the attitude puts it, ROLL_REF the V3 position angle there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simval import offline
from simval.atomic import save_model
from simval.instruments import miri
from simval.instruments.miri_detector import Readout

__all__ = ["MiriExposure", "miri_aperture", "write_miri_uncal"]

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class MiriExposure:
    """Who and when of one exposure: DMS identifiers, start (MJD, UTC), filter, dither."""

    filter_name: str
    start_mjd: float
    program: int = 1
    observation: int = 1
    visit: int = 1
    visit_group: int = 1
    sequence: int = 1
    activity: int = 1
    exposure: int = 1
    pattern_type: str = "NONE"
    pattern_number: int = 1
    pattern_points: int = 1
    offset_arcsec: tuple[float, float] = (0.0, 0.0)


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
    rot = offline.siaf_rotations()
    ra_ref, dec_ref = (float(v) for v in rot.pointing(attitude, ap.V2Ref, ap.V3Ref))
    ra_v1, dec_v1 = (float(v) for v in rot.pointing(attitude, 0.0, 0.0))

    model = datamodels.Level1bModel(data=np.asarray(ramps, np.uint16))
    m = model.meta
    start = _times(readout, exposure.start_mjd)
    from astropy.time import Time

    t0 = Time(exposure.start_mjd, format="mjd", scale="utc")
    m.date_obs = t0.strftime("%Y-%m-%d")
    m.time_obs = t0.strftime("%H:%M:%S.%f")[:12]
    m.telescope = "JWST"
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
    m.observation.program_number = f"{exposure.program:05d}"
    m.observation.observation_number = f"{exposure.observation:03d}"
    m.observation.visit_number = f"{exposure.visit:03d}"
    m.observation.visit_group = f"{exposure.visit_group:02d}"
    m.observation.sequence_id = str(exposure.sequence)
    m.observation.activity_id = f"{exposure.activity:02d}"
    m.observation.exposure_number = f"{exposure.exposure:05d}"
    m.observation.date, m.observation.time = m.date_obs, m.time_obs
    m.aperture.name = m.aperture.pps_name = ap.AperName
    m.dither.primary_type = exposure.pattern_type
    m.dither.position_number = exposure.pattern_number
    m.dither.total_points = exposure.pattern_points
    m.dither.x_offset, m.dither.y_offset = exposure.offset_arcsec
    m.pointing.ra_v1, m.pointing.dec_v1 = ra_v1, dec_v1
    m.pointing.pa_v3 = float(rot.posangle(attitude, 0.0, 0.0)) % 360.0
    m.target.ra, m.target.dec = ra_ref, dec_ref
    w = m.wcsinfo
    w.v2_ref, w.v3_ref = float(ap.V2Ref), float(ap.V3Ref)
    w.vparity, w.v3yangle = int(ap.VIdlParity), float(ap.V3IdlYAngle)
    w.ra_ref, w.dec_ref = ra_ref, dec_ref
    w.roll_ref = float(rot.posangle(attitude, ap.V2Ref, ap.V3Ref)) % 360.0
    w.siaf_xref_sci, w.siaf_yref_sci = float(ap.XSciRef), float(ap.YSciRef)
    w.wcsaxes = 2
    m.velocity_aberration.scale_factor = 1.0
    return save_model(model, path)
