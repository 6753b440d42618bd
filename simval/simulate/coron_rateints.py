"""A coronagraphic exposure as a DMS ``_rateints.fits``: one slope image per integration
with the noise a MULTIACCUM ramp fit leaves, and the metadata calwebb_image2 and
calwebb_coron3 read (EXP_TYPE NRC_CORON, the mask, the pupil's Lyot stop, the subarray with
its DMS corner and readout axes, the WCS keywords, PSF reference or science).

Noise per integration, from the count rate R (DN/s) of a pixel, with the ramp fit's
unweighted-slope variances for N groups of ``tgroup`` (jwst ramp_fit: the Poisson term
``R / (gain (N - 1) tgroup)``, the read-noise term ``12 RN^2 / ((N^3 - N) tgroup^2)`` with
RN the read noise of one group, CDS / sqrt(2 nframes)): a Gaussian draw of their sum,
deterministic in the seed. VAR_POISSON, VAR_RNOISE and ERR are those variances.

Units: DN/s, e-/DN, e-, s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simval import offline
from simval.atomic import save_model
from simval.instruments import nircam
from simval.instruments.nircam_coron import CoronMask
from simval.simulate.dms_meta import ExposureIds, set_ids, set_pointing

__all__ = ["CoronReadout", "RateNoise", "noisy_rateints", "write_rateints"]

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class CoronReadout:
    """Readout of a coronagraphic exposure: NIRCam pattern, groups, integrations."""

    pattern: str
    ngroups: int
    nints: int

    def timing(self, mask: CoronMask) -> nircam.Timing:
        """Frame, group, integration times on the mask's subarray (one output)."""
        return nircam.exposure_timing(nircam.read_patterns()[self.pattern], self.ngroups,
                                      self.nints, mask.size, mask.size, 1)


@dataclass(frozen=True)
class RateNoise:
    """Slopes per integration (nints, ny, nx) and their variances, DN/s and (DN/s)^2."""

    data: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray


def noisy_rateints(rate: np.ndarray, readout: CoronReadout, mask: CoronMask, *,
                   gain_e_per_dn: float, readnoise_cds_e: float, seed: int,
                   poisson: bool = True) -> RateNoise:
    """``readout.nints`` noisy slope images of ``rate`` (module docstring)."""
    pattern = nircam.read_patterns()[readout.pattern]
    t = readout.timing(mask)
    n = readout.ngroups
    if n < 2:
        raise ValueError("a slope needs at least 2 groups")
    rn_dn = readnoise_cds_e / gain_e_per_dn / np.sqrt(2.0 * pattern.nframes)
    var_r = np.full(rate.shape, 12.0 * rn_dn**2 / ((n**3 - n) * t.tgroup_s**2))
    var_p = (np.clip(rate, 0.0, None) / (gain_e_per_dn * (n - 1) * t.tgroup_s)
             if poisson else np.zeros(rate.shape))
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(var_p + var_r)
    data = rate[None] + rng.standard_normal((readout.nints, *rate.shape)) * sigma[None]
    cube = (readout.nints, *rate.shape)
    return RateNoise(data.astype(np.float32), np.broadcast_to(var_p, cube).astype(np.float32),
                     np.broadcast_to(var_r, cube).astype(np.float32))


def write_rateints(path: str | os.PathLike, noise: RateNoise, mask: CoronMask,
                   ids: ExposureIds, readout: CoronReadout, attitude: np.ndarray, *,
                   psf_reference: bool) -> Path:
    """Write an NRC_CORON ``_rateints.fits`` (CubeModel) atomically."""
    from astropy.time import Time
    from stdatamodels.jwst import datamodels

    model = datamodels.CubeModel(data=noise.data)
    model.var_poisson = noise.var_poisson
    model.var_rnoise = noise.var_rnoise
    model.err = np.sqrt(noise.var_poisson + noise.var_rnoise).astype(np.float32)
    model.dq = np.zeros(noise.data.shape, np.uint32)
    m = model.meta
    set_ids(m, ids)
    m.instrument.name, m.instrument.detector = "NIRCAM", mask.detector
    m.instrument.channel, m.instrument.module = "LONG", mask.detector[3]
    m.instrument.filter, m.instrument.pupil = ids.filter_name, mask.pupil
    m.instrument.coronagraph = mask.name
    pattern = nircam.read_patterns()[readout.pattern]
    t = readout.timing(mask)
    e = m.exposure
    e.type, e.readpatt = "NRC_CORON", readout.pattern
    e.nframes, e.groupgap = pattern.nframes, pattern.groupgap
    e.ngroups, e.nints = readout.ngroups, readout.nints
    e.integration_start, e.integration_end = 1, readout.nints
    e.frame_time, e.group_time = t.tframe_s, t.tgroup_s
    e.integration_time, e.exposure_time = t.integration_time_s, t.exposure_time_s
    e.effective_exposure_time = t.measurement_time_s
    e.duration = t.duration_s
    e.start_time = ids.start_mjd
    e.mid_time = ids.start_mjd + t.duration_s / 2.0 / SECONDS_PER_DAY
    e.end_time = ids.start_mjd + t.duration_s / SECONDS_PER_DAY
    e.psf_reference = bool(psf_reference)
    e.nresets_at_start, e.nresets_between_ints = 1, 1
    m.subarray.name = mask.subarray
    m.subarray.xstart, m.subarray.ystart = mask.substrt
    m.subarray.xsize = m.subarray.ysize = mask.size
    m.subarray.fastaxis, m.subarray.slowaxis = mask.fastaxis, mask.slowaxis
    set_pointing(m, offline.nircam_siaf()[mask.aperture], attitude)
    m.bunit_data, m.bunit_err = "DN/s", "DN/s"
    # the file's DATE is the exposure's start: the same exposure gives the same bytes
    start = Time(ids.start_mjd, format="mjd", scale="utc").isot
    return save_model(model, path, date=start)
