"""DMS metadata every simulated exposure carries, whatever the instrument: who and when
(program, observation, visit, ..., dates), the dither, and the pointing (the SIAF
aperture's reference point and where an attitude puts it: the WCS keywords).

Used by the MIRI uncal writer and the coronagraphic rateints writer; MIRAGE writes its own.

Units: deg, arcsec, MJD (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simval import offline

__all__ = ["ExposureIds", "set_ids", "set_pointing"]


@dataclass(frozen=True)
class ExposureIds:
    """Who and when of one exposure: DMS identifiers, start (MJD, UTC), filter, dither
    (PATTTYPE ``pattern_type``; NIRCam coronagraphy's SMGRDPAT ``small_grid_pattern``)."""

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
    small_grid_pattern: str | None = None


def set_ids(m, ids: ExposureIds) -> None:
    """Dates, observation identifiers and dither of ``m`` (a datamodel's ``meta``)."""
    from astropy.time import Time

    t0 = Time(ids.start_mjd, format="mjd", scale="utc")
    m.date_obs = t0.strftime("%Y-%m-%d")
    m.time_obs = t0.strftime("%H:%M:%S.%f")[:12]
    m.telescope = "JWST"
    m.observation.program_number = f"{ids.program:05d}"
    m.observation.observation_number = f"{ids.observation:03d}"
    m.observation.visit_number = f"{ids.visit:03d}"
    m.observation.visit_group = f"{ids.visit_group:02d}"
    m.observation.sequence_id = str(ids.sequence)
    m.observation.activity_id = f"{ids.activity:02d}"
    m.observation.exposure_number = f"{ids.exposure:05d}"
    m.observation.date, m.observation.time = m.date_obs, m.time_obs
    m.dither.primary_type = ids.pattern_type
    m.dither.position_number = ids.pattern_number
    m.dither.total_points = ids.pattern_points
    m.dither.x_offset, m.dither.y_offset = ids.offset_arcsec
    if ids.small_grid_pattern:  # NIRCam coronagraphy's SMGRDPAT (5-POINT-BOX, ...)
        m.dither.small_grid_pattern = ids.small_grid_pattern


def set_pointing(m, aperture, attitude: np.ndarray) -> tuple[float, float]:
    """Aperture, pointing, target and WCS keywords of ``m`` for ``aperture`` (pysiaf) at
    ``attitude`` (3x3); returns (RA_REF, DEC_REF), deg."""
    rot = offline.siaf_rotations()
    ra_ref, dec_ref = (float(v) for v in rot.pointing(attitude, aperture.V2Ref,
                                                      aperture.V3Ref))
    ra_v1, dec_v1 = (float(v) for v in rot.pointing(attitude, 0.0, 0.0))
    m.aperture.name = m.aperture.pps_name = aperture.AperName
    m.pointing.ra_v1, m.pointing.dec_v1 = ra_v1, dec_v1
    m.pointing.pa_v3 = float(rot.posangle(attitude, 0.0, 0.0)) % 360.0
    m.target.ra, m.target.dec = ra_ref, dec_ref
    w = m.wcsinfo
    w.v2_ref, w.v3_ref = float(aperture.V2Ref), float(aperture.V3Ref)
    w.vparity, w.v3yangle = int(aperture.VIdlParity), float(aperture.V3IdlYAngle)
    w.ra_ref, w.dec_ref = ra_ref, dec_ref
    w.roll_ref = float(rot.posangle(attitude, aperture.V2Ref, aperture.V3Ref)) % 360.0
    w.siaf_xref_sci, w.siaf_yref_sci = float(aperture.XSciRef), float(aperture.YSciRef)
    w.wcsaxes = 2
    m.velocity_aberration.scale_factor = 1.0
    return ra_ref, dec_ref
