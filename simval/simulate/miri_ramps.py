"""MIRI imager ramps from a rate image: the detector physics of simval's MIRI simulator.

Given the noiseless signal rate of every pixel (DN/s: sources and sky, as the seed image
holds it), :func:`miri_ramps` reads it out as MIRI does — one frame per group (FASTR1 or
SLOWR1), every integration starting from a reset — and adds the effects the pipeline's
MIRI steps undo. Each effect is a function of the exposure's shape and timing alone, so
the kit can write the reference that undoes it from the same function, and the detector's
maps (pedestal, non-linearity, dark current) are :class:`MiriDetectorModel`'s:

==========================  =======================================  ===================
effect                      model (DN)                               undone by
==========================  =======================================  ===================
signal, dark current        Poisson electrons per frame / gain       DARK (mean dark)
saturation                  output stops at the pedestal + NL(well)  SATURATION
non-linearity               measured = s - beta * s**2               LINEARITY
pedestal                    per-pixel bias, kTC offset per int       (slopes)
reset anomaly               amp * exp(-group / tau), every int       RESET
first- and last-frame       offsets on the first and last group      firstframe, lastframe
RSCD                        decaying transient in ints >= 2          rscd (group_skip)
EMI                         tones on the read-clock model            emicorr
read noise                  Gaussian per read                        (noise model)
cosmic rays                 hits of a few thousand e- per group      jump
==========================  =======================================  ===================

Amplitudes (:class:`MiriEffects`) give slope biases of the size measured on MIRI ramps
when the matching correction is missing (reset anomaly a few DN/s, first group ~1 DN/s,
last frame ~0.5 DN/s on F770W sky); the detector's gain, read noise,
dark current and full well are :data:`simval.instruments.miri.DETECTOR`'s. Random numbers:
one independent stream per effect (``component_rng(seed, effect)``), so switching one
effect off leaves every other effect's draws unchanged. Reference columns see the
pedestal, noise, EMI and the reset anomaly, but no light.
"""

from __future__ import annotations

import functools

import numpy as np

from simval.instruments import miri
from simval.instruments.miri_detector import (
    MiriDetectorModel,
    MiriEffects,
    Readout,
    additive_signature,
    nonlinear,
)
from simval.seeding import component_rng

__all__ = ["miri_ramps"]


def miri_ramps(rate_dn_s: np.ndarray, readout: Readout, effects: MiriEffects, seed: int,
               detector: MiriDetectorModel) -> np.ndarray:
    """Raw MIRI ramps (uint16 DN), shape (nints, ngroups, ny, nx).

    Parameters
    ----------
    rate_dn_s : ndarray (ny, nx)
        Noiseless signal rate, DN/s (sources and sky; negative values are taken as 0; no
        light reaches the reference columns or left of the imager's field).
    readout : Readout
    effects : MiriEffects
    seed : int
        Exposure seed: the same seed gives the same bytes.
    detector : MiriDetectorModel
        The detector's maps (the kit's seed): pedestal, non-linearity, dark current.
    """
    det = miri.DETECTOR
    ny, nx = readout.shape
    rate = np.clip(np.asarray(rate_dn_s, np.float64), 0.0, None)
    if rate.shape != (ny, nx):
        raise ValueError(f"rate image is {rate.shape}, the {readout.subarray} subarray is "
                         f"{(ny, nx)}")
    cut = functools.partial(detector.cut, subarray=readout.subarray)
    lit = cut(detector.lit)
    rate = np.where(lit, rate, 0.0)
    if effects.dark:
        rate = rate + cut(detector.dark_dn_s)
    tframe = readout.tframe_s
    n, g = readout.nints, readout.ngroups
    shape = (n, g, ny, nx)

    # accumulated electrons, frame by frame, from each reset
    mean_e = rate * det.gain_e_per_dn * tframe
    if effects.poisson:
        per_frame = component_rng(seed, "poisson").poisson(
            np.broadcast_to(mean_e, shape)).astype(np.float64)
    else:
        per_frame = np.broadcast_to(mean_e, shape).astype(np.float64)
    if effects.cosmic_rays_per_cm2_s:
        per_frame += _cosmic_rays(shape, tframe, effects, seed) * lit
    signal = np.cumsum(per_frame, axis=1) / det.gain_e_per_dn
    if effects.nonlinearity:
        signal = nonlinear(signal, cut(detector.beta_per_dn))
    pedestal = cut(detector.pedestal_dn) if effects.pedestal else 0.0
    ktc = effects.ktc_dn * component_rng(seed, "ktc").standard_normal((n, 1, ny, nx))
    ramps = signal + pedestal + ktc + additive_signature(readout, effects)
    if effects.emi:
        group_start, offset = miri.read_clocks(readout.subarray, readout.pattern, g, n)
        t_s = (group_start[:, :, None, None] + offset[None, None]) * miri.PIXEL_TIME_S
        for freq, amp, phase in effects.emi:
            ramps += amp * np.sin(2.0 * np.pi * freq * t_s + phase)
    if effects.read_noise:
        ramps += det.readnoise_frame_dn * component_rng(seed, "read_noise").standard_normal(
            shape)
    if effects.saturation:  # the output stops at the SATURATION reference's level
        ramps = np.minimum(ramps, cut(detector.saturation_dn) if effects.pedestal
                           else cut(detector.saturation_dn - detector.pedestal_dn))
    return np.clip(np.rint(ramps), 0, 65535).astype(np.uint16)


def _cosmic_rays(shape: tuple[int, ...], tframe_s: float, effects: MiriEffects,
                 seed: int) -> np.ndarray:
    """Electrons cosmic rays deposit per frame: a Poisson number of hits per frame over the
    array (25 um pixels), each a log-uniform charge in ``cosmic_ray_e`` on one pixel."""
    rng = component_rng(seed, "cosmic_rays")
    n, g, ny, nx = shape
    area_cm2 = ny * nx * (25e-4) ** 2
    hits = np.zeros(shape)
    lo, hi = np.log(effects.cosmic_ray_e[0]), np.log(effects.cosmic_ray_e[1])
    for i in range(n):
        for j in range(g):
            k = rng.poisson(effects.cosmic_rays_per_cm2_s * area_cm2 * tframe_s)
            ys, xs = rng.integers(0, ny, k), rng.integers(0, nx, k)
            np.add.at(hits[i, j], (ys, xs), np.exp(rng.uniform(lo, hi, k)))
    return hits
