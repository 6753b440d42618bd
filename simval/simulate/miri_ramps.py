"""MIRI imager ramps from a rate image: the detector physics of simval's MIRI simulator.

Given the noiseless signal rate of every pixel (DN/s: sources and sky, as the seed image
holds it), :func:`miri_ramps` reads it out as MIRI does — one frame per group (FASTR1 or
SLOWR1), every integration starting from a reset — and adds the effects the pipeline's
MIRI steps undo. Each effect is a function of the exposure's shape and timing alone, so
the kit can write the reference that undoes it from the same function:

==========================  =======================================  ===================
effect                      model (DN)                               undone by
==========================  =======================================  ===================
signal, dark current        Poisson electrons per frame / gain       DARK (mean dark)
non-linearity               measured = s - beta * s**2               LINEARITY
saturation                  clip at the pedestal + full well         SATURATION
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

from dataclasses import dataclass, replace

import numpy as np

from simval.instruments import miri
from simval.seeding import component_rng

__all__ = ["MiriEffects", "Readout", "additive_signature", "miri_ramps", "nonlinear"]


@dataclass(frozen=True)
class Readout:
    """An exposure's readout: subarray, pattern, groups and integrations."""

    subarray: str = "FULL"
    pattern: str = "FASTR1"
    ngroups: int = 10
    nints: int = 1

    def __post_init__(self) -> None:
        miri.check_readout(self.pattern, self.subarray)
        if self.ngroups < 1 or self.nints < 1:
            raise ValueError(f"ngroups and nints must be >= 1 (got {self.ngroups}, "
                             f"{self.nints})")

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) of the subarray."""
        sub = miri.get_subarray(self.subarray)
        return sub.ysize, sub.xsize

    @property
    def tframe_s(self) -> float:
        return miri.frame_time(self.subarray, self.pattern)


@dataclass(frozen=True)
class MiriEffects:
    """Which effects to inject and how strongly (DN unless named otherwise).

    ``emi`` lists tones as (frequency Hz, amplitude DN, phase rad); frequencies whose period
    divides the frame time would be constant per group (emicorr cannot fit them), so the
    default is not commensurate with any subarray's frame.
    """

    poisson: bool = True
    dark: bool = True
    read_noise: bool = True
    nonlinearity_beta_per_dn: float = 1.0e-6   # measured = s - beta s^2: 5 % at 50 000 DN
    saturation: bool = True
    pedestal_dn: float = 10_000.0
    pedestal_spread_dn: float = 300.0
    ktc_dn: float = 10.0
    reset_amp_dn: float = 60.0
    reset_tau_groups: float = 2.0
    first_frame_dn: float = 15.0
    last_frame_dn: float = 12.0
    rscd_amp_dn: float = 20.0
    rscd_tau_groups: float = 1.5
    emi: tuple[tuple[float, float, float], ...] = ((218.3, 3.0, 0.4),)
    cosmic_rays_per_cm2_s: float = 5.0
    cosmic_ray_e: tuple[float, float] = (1_000.0, 30_000.0)

    def off(self) -> MiriEffects:
        """Only the signal: no noise, no detector effect (for known-answer tests)."""
        return replace(self, poisson=False, dark=False, read_noise=False,
                       nonlinearity_beta_per_dn=0.0, saturation=False, pedestal_dn=0.0,
                       pedestal_spread_dn=0.0, ktc_dn=0.0, reset_amp_dn=0.0,
                       first_frame_dn=0.0, last_frame_dn=0.0, rscd_amp_dn=0.0, emi=(),
                       cosmic_rays_per_cm2_s=0.0)


def nonlinear(signal_dn: np.ndarray, beta_per_dn: float) -> np.ndarray:
    """Measured counts for true accumulated counts ``signal_dn`` (above the pedestal)."""
    return signal_dn - beta_per_dn * signal_dn**2


def additive_signature(readout: Readout, effects: MiriEffects) -> np.ndarray:
    """The deterministic, pixel-independent part of every ramp, DN, shape (nints, ngroups,
    1, 1): reset anomaly, first- and last-frame offsets and the RSCD transient. The kit's
    RESET reference is the reset-anomaly part; firstframe, lastframe and rscd flag the
    groups the rest lives in."""
    n, g = readout.nints, readout.ngroups
    groups = np.arange(g, dtype=np.float64)
    out = np.zeros((n, g, 1, 1))
    if effects.reset_amp_dn:
        out += (effects.reset_amp_dn * np.exp(-groups / effects.reset_tau_groups))[
            None, :, None, None]
    if g > 1:
        out[:, 0] += effects.first_frame_dn
        out[:, -1] += effects.last_frame_dn
    if effects.rscd_amp_dn and n > 1:
        out[1:] += (effects.rscd_amp_dn * np.exp(-groups / effects.rscd_tau_groups))[
            None, :, None, None]
    return out


def _science_columns(nx: int, subarray: str) -> np.ndarray:
    """Columns that see light: not the 4 reference columns at either full-frame edge."""
    sub = miri.get_subarray(subarray)
    col = np.arange(nx) + sub.xstart  # 1-based full-frame column
    ref = miri.REFERENCE_COLUMNS
    return (col > ref) & (col <= miri.FULL_COLUMNS - ref)


def miri_ramps(rate_dn_s: np.ndarray, readout: Readout, effects: MiriEffects, seed: int,
               dark_dn_s: np.ndarray | float | None = None) -> np.ndarray:
    """Raw MIRI ramps (uint16 DN), shape (nints, ngroups, ny, nx).

    Parameters
    ----------
    rate_dn_s : ndarray (ny, nx)
        Noiseless signal rate, DN/s (sources and sky; negative values are taken as 0).
    readout : Readout
    effects : MiriEffects
    seed : int
        Exposure seed: the same seed gives the same bytes.
    dark_dn_s : float or ndarray, optional
        Dark current, DN/s (default: the detector's, ``dark_e_per_s / gain``).
    """
    det = miri.DETECTOR
    ny, nx = readout.shape
    rate = np.clip(np.asarray(rate_dn_s, np.float64), 0.0, None)
    if rate.shape != (ny, nx):
        raise ValueError(f"rate image is {rate.shape}, the {readout.subarray} subarray is "
                         f"{(ny, nx)}")
    lit = _science_columns(nx, readout.subarray)[None, :]
    rate = np.where(lit, rate, 0.0)
    dark = det.dark_e_per_s / det.gain_e_per_dn if dark_dn_s is None else dark_dn_s
    if effects.dark:
        rate = rate + np.where(lit, dark, 0.0)
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
    signal = nonlinear(signal, effects.nonlinearity_beta_per_dn)

    pedestal = effects.pedestal_dn + effects.pedestal_spread_dn * component_rng(
        seed, "pedestal").standard_normal((ny, nx))
    ktc = effects.ktc_dn * component_rng(seed, "ktc").standard_normal((n, 1, ny, nx))
    ramps = signal + pedestal + ktc + additive_signature(readout, effects)
    if effects.saturation:
        ramps = np.minimum(ramps, pedestal + det.full_well_dn)
    if effects.emi:
        group_start, offset = miri.read_clocks(readout.subarray, readout.pattern, g, n)
        t_s = (group_start[:, :, None, None] + offset[None, None]) * miri.PIXEL_TIME_S
        for freq, amp, phase in effects.emi:
            ramps += amp * np.sin(2.0 * np.pi * freq * t_s + phase)
    if effects.read_noise:
        ramps += det.readnoise_frame_dn * component_rng(seed, "read_noise").standard_normal(
            shape)
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
