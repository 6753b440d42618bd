"""The plan of a coronagraphy scenario: the target at each roll, the PSF reference at each
small-grid position, and one calwebb_coron3 product.

Exposures (one :class:`~simval.plan.Exposure` each, observing order): the target
exposures are observation ``observation``, one activity per roll (``jw..001001_011<n>``);
the reference's are observation ``observation + 1``, one exposure number per dither
position. The target sits on the mask's aperture reference point at PA_V3
``pointing.pa_v3 + roll``; the reference star (``coronagraphy.reference.offset_arcsec``
East/North of the target) sits there too, moved by its dither offset (ideal frame,
arcsec; the star moves by minus the offset, :func:`simval.pointing.offset_attitude`).
The product is named like coron3's: ``jw<ppppp>-o<ooo>_t001_nircam_<filter>-<pupil>-
<subarray>``; every exposure is a member (:func:`coron_roles` tells science from psf).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from simval import offline
from simval.instruments import nircam as nrc
from simval.instruments.nircam import exposure_base_name
from simval.instruments.nircam_coron import get_mask
from simval.pointing import attitude_at_pa_v3, offset_attitude

if TYPE_CHECKING:
    from simval.plan import Plan
    from simval.scenario import Scenario

__all__ = ["coron_exposures", "coron_roles", "reference_position"]

#: Visit group and parallel sequence of every exposure (as :mod:`simval.plan`'s).
VISIT_GROUP = 1
PARALLEL_SEQUENCE = 1


def reference_position(ra: float, dec: float, offset_arcsec: list[float]) -> tuple[float, float]:
    """RA, Dec (deg) of the PSF reference: ``offset_arcsec`` = [East, North] from the target."""
    east, north = offset_arcsec
    return (ra + east / 3600.0 / math.cos(math.radians(dec))) % 360.0, dec + north / 3600.0


def coron_roles(plan: Plan) -> dict[str, str]:
    """Exposure base name -> ``science`` (target) or ``psf`` (reference), from the plan's
    observation numbers (the reference is the observation after the target's)."""
    science_obs = min(e.observation for e in plan.exposures)
    return {e.base_name: "science" if e.observation == science_obs else "psf"
            for e in plan.exposures}


def coron_exposures(scenario: Scenario) -> list[dict]:
    """The fields of every :class:`~simval.plan.Exposure` of a scenario with a
    ``coronagraphy`` block, in observing order (module docstring); :func:`simval.plan.make_plan`
    makes the plan of them."""
    coron = scenario.coronagraphy
    assert coron is not None
    mask = get_mask(coron.mask)
    rot = offline.siaf_rotations()
    ap = offline.nircam_siaf()[mask.aperture]
    band = scenario.filters[0]
    readout = scenario.readout
    pattern = readout.read_pattern
    timing = nrc.exposure_timing(pattern, readout.ngroups, readout.nints, mask.size,
                                 mask.size, 1)
    ra0, dec0 = scenario.pointing.ra, scenario.pointing.dec
    ref_ra, ref_dec = reference_position(ra0, dec0, coron.reference.offset_arcsec)
    offsets = coron.reference.offsets()
    visits = [(scenario.observation, n, 1, ra0, dec0, scenario.pointing.pa_v3 + roll,
               (0.0, 0.0), "NONE", 1) for n, roll in enumerate(coron.rolls_deg, start=1)]
    ref_pa = scenario.pointing.pa_v3 + coron.reference_roll_deg()
    visits += [(scenario.observation + 1, 1, k, ref_ra, ref_dec, ref_pa, off,
                coron.reference.pattern_name(), len(offsets))
               for k, off in enumerate(offsets, start=1)]
    start0 = datetime.fromisoformat(scenario.start_time)
    exposures = []
    for index, (obs, activity, number, ra, dec, pa, (dx, dy), dpattern, dtotal) in \
            enumerate(visits):
        att = offset_attitude(attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, ra, dec, pa % 360.0),
                              ap, dx, dy)
        ra_ref, dec_ref = rot.pointing(att, ap.V2Ref, ap.V3Ref)
        start = start0 + timedelta(seconds=index * timing.duration_s)
        exposures.append(dict(
            index=index, base_name=exposure_base_name(
                scenario.program, obs, 1, VISIT_GROUP, PARALLEL_SEQUENCE, activity, number,
                mask.detector),
            program=scenario.program, observation=obs, visit=1, visit_group=VISIT_GROUP,
            sequence=PARALLEL_SEQUENCE, activity=activity, exposure=number,
            detector=mask.detector, aperture=mask.aperture, subarray=mask.subarray,
            xsize=mask.size, ysize=mask.size, namps=1, filter_name=band.name,
            filter_wheel=band.filter_wheel, pupil=mask.pupil, readpatt=pattern.name,
            nframes=pattern.nframes, groupgap=pattern.groupgap, ngroups=readout.ngroups,
            nints=readout.nints, frames_read=timing.frames_read, tframe_s=timing.tframe_s,
            tgroup_s=timing.tgroup_s, integration_time_s=timing.integration_time_s,
            measurement_time_s=timing.measurement_time_s,
            exposure_time_s=timing.exposure_time_s, duration_s=timing.duration_s,
            start_utc=_isot(start),
            mid_utc=_isot(start + timedelta(seconds=timing.duration_s / 2.0)),
            end_utc=_isot(start + timedelta(seconds=timing.duration_s)),
            tile_row=1, tile_col=1, tile_x_arcsec=0.0, tile_y_arcsec=0.0,
            dither_pattern=dpattern, primary_dither_total=dtotal,
            primary_dither_position=number, subpixel_dither_type="NONE",
            subpixel_dither_total=1, subpixel_dither_position=1, dither_position=number,
            x_offset_arcsec=float(dx), y_offset_arcsec=float(dy), ra_ref_deg=float(ra_ref),
            dec_ref_deg=float(dec_ref),
            roll_ref_deg=float(rot.posangle(att, ap.V2Ref, ap.V3Ref)) % 360.0,
            pa_v3_deg=float(rot.posangle(att, 0.0, 0.0)) % 360.0,
            v2_ref_arcsec=float(ap.V2Ref), v3_ref_arcsec=float(ap.V3Ref),
            v3_idl_yang_deg=float(ap.V3IdlYAngle), vparity=int(ap.VIdlParity),
            background_mjysr=scenario.background_for(band.name), seed=scenario.seed))
    return exposures


def _isot(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")
