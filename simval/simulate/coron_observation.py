"""A coronagraphic observation: the target at each roll and the PSF reference at each
small-grid dither position, each exposure simulated by
:func:`simval.simulate.coron_exposure.simulate_coron_exposure`.

The target sits on the mask at every roll (``pa_v3`` of the telescope, deg); its
companions are given on the sky (separation, position angle East of North, contrast), so
they turn on the detector with the roll. The reference star sits on the mask shifted by
each dither offset (arcsec, in the aperture's ideal frame) and is observed with its own
optics (``reference_psf_for``: the wavefront after a drift). Exposure names follow the
DMS pattern: the target is observation 1 (one activity per roll), the reference
observation 2 (one exposure per dither position).

Units: deg, arcsec, Jy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simval import offline
from simval.instruments.nircam_coron import CoronMask
from simval.pointing import attitude_at_pa_v3, offset_attitude
from simval.simulate.coron_exposure import CoronProducts, CoronSetup, simulate_coron_exposure
from simval.simulate.coron_rateints import CoronReadout
from simval.simulate.coron_scene import PsfFor, Source
from simval.simulate.dms_meta import ExposureIds

__all__ = ["Companion", "CoronMember", "companion_source", "simulate_coron_observation"]


@dataclass(frozen=True)
class Companion:
    """A companion: separation (arcsec), position angle (deg E of N), flux ratio."""

    separation_arcsec: float
    pa_deg: float
    contrast: float


@dataclass(frozen=True)
class CoronMember:
    """One simulated exposure and its role in the coron3 association."""

    products: CoronProducts
    role: str  # "science" or "psf"


def companion_source(star: Source, companion: Companion) -> Source:
    """The companion as a point source on the sky next to ``star``."""
    a = np.radians(companion.pa_deg)
    sep = companion.separation_arcsec / 3600.0
    return Source(star.ra + sep * np.sin(a) / np.cos(np.radians(star.dec)),
                  star.dec + sep * np.cos(a), star.flux_jy * companion.contrast)


def simulate_coron_observation(out_dir: str | os.PathLike, *, mask: CoronMask, star: Source,
                               companions: list[Companion], rolls_deg: list[float],
                               reference: Source, dithers_arcsec: list[tuple[float, float]],
                               reference_pa_deg: float, readout: CoronReadout,
                               setup: CoronSetup, psf_for: PsfFor,
                               reference_psf_for: PsfFor, filter_name: str, seed: int,
                               start_mjd: float = 60000.0, program: int = 1
                               ) -> list[CoronMember]:
    """Simulate every exposure of the observation into ``out_dir`` (module docstring);
    deterministic in ``seed``."""
    out = Path(out_dir)
    ap = offline.nircam_siaf()[mask.aperture]
    sources = [companion_source(star, c) for c in companions]
    members = []
    t = start_mjd
    step = readout.timing(mask).duration_s / 86400.0 + 1e-3
    for n, roll in enumerate(rolls_deg, start=1):
        att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, star.ra, star.dec, float(roll))
        name = f"jw{program:05d}001001_011{n:02d}_00001_{mask.detector.lower()}"
        ids = ExposureIds(filter_name, t, program=program, observation=1, activity=n)
        members.append(CoronMember(simulate_coron_exposure(
            out, name, mask=mask, psf_for=psf_for, star=star, companions=sources,
            attitude=att, ids=ids, readout=readout, setup=setup, psf_reference=False,
            seed=seed * 1000 + n, wavefront="target"), "science"))
        t += step
    att0 = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, reference.ra, reference.dec,
                             float(reference_pa_deg))
    pattern = "NONE" if len(dithers_arcsec) == 1 else f"{len(dithers_arcsec)}-POINT-SMALL-GRID"
    for k, (dx, dy) in enumerate(dithers_arcsec, start=1):
        name = f"jw{program:05d}002001_01101_{k:05d}_{mask.detector.lower()}"
        ids = ExposureIds(filter_name, t, program=program, observation=2, exposure=k,
                          pattern_type=pattern, pattern_number=k,
                          pattern_points=len(dithers_arcsec), offset_arcsec=(dx, dy))
        members.append(CoronMember(simulate_coron_exposure(
            out, name, mask=mask, psf_for=reference_psf_for, star=reference, companions=[],
            attitude=offset_attitude(att0, ap, dx, dy), ids=ids, readout=readout,
            setup=setup, psf_reference=True, seed=seed * 1000 + 100 + k,
            wavefront="reference"), "psf"))
        t += step
    return members
