"""The one definition of the synthetic MIRI imager detector: its full-frame maps.

The MIRI ramp simulator (:mod:`simval.simulate.miri_ramps`) and the kit's MIRI references
both read :class:`MiriDetectorModel`, so every reference undoes exactly what the simulator
did: the SATURATION reference is the pedestal plus the full well, LINEARITY inverts the
per-pixel non-linearity about the pedestal, DARK holds the dark current, RESET the reset
anomaly. Maps are full frame (1024 rows x 1032 columns, 0-based numpy order) and drawn from
``component_rng(seed, "miri", <map>)`` only: a kit seed gives one detector.

Values: pedestal ~10 000 DN with a 300 DN pixel spread (the MIRI SATURATION references
hold raw DN including a pedestal of that order); non-linearity ``measured = s - beta s^2``
with beta = 1e-6 / DN +- 10 % (5 % at 50 000 DN, the size of the MIRI correction near full
well); dark current :data:`simval.instruments.miri.DETECTOR`'s 0.2 e-/s with a 10 %
pixel spread; neither light nor dark current in the reference columns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from simval.instruments import miri
from simval.seeding import component_rng

__all__ = ["MiriDetectorModel", "MiriEffects", "Readout", "additive_signature",
           "linearity_coefficients", "nonlinear"]

PEDESTAL_DN, PEDESTAL_SPREAD_DN = 10_000.0, 300.0
BETA_PER_DN, BETA_SPREAD = 1.0e-6, 0.10
DARK_SPREAD = 0.10
#: Pixel-to-pixel response spread of the imager's field (the FLAT the kit writes), 1 sigma.
FLAT_SPREAD = 0.01


@dataclass(frozen=True)
class MiriDetectorModel:
    """The synthetic MIRIMAGE of one kit seed; every map full frame, float64."""

    seed: int

    def _rng(self, name: str) -> np.random.Generator:
        return component_rng(self.seed, "miri", name)

    @functools.cached_property
    def pedestal_dn(self) -> np.ndarray:
        """Bias level of every pixel, raw DN."""
        return PEDESTAL_DN + PEDESTAL_SPREAD_DN * self._rng("pedestal").standard_normal(
            (miri.FULL_ROWS, miri.FULL_COLUMNS))

    @functools.cached_property
    def beta_per_dn(self) -> np.ndarray:
        """Non-linearity of every pixel: measured = s - beta s**2 (s: true DN above the
        pedestal)."""
        spread = np.clip(self._rng("beta").normal(0.0, BETA_SPREAD,
                                                  (miri.FULL_ROWS, miri.FULL_COLUMNS)),
                         -0.3, 0.3)
        return BETA_PER_DN * (1.0 + spread)

    @functools.cached_property
    def dark_dn_s(self) -> np.ndarray:
        """Dark current, DN/s (0 in the reference columns)."""
        d = miri.DETECTOR
        spread = np.clip(self._rng("dark").normal(0.0, DARK_SPREAD,
                                                  (miri.FULL_ROWS, miri.FULL_COLUMNS)),
                         -0.5, 0.5)
        return np.where(self.reference_columns, 0.0,
                        d.dark_e_per_s / d.gain_e_per_dn * (1.0 + spread))

    @functools.cached_property
    def pixel_flat(self) -> np.ndarray:
        """Relative pixel response (mean 1, :data:`FLAT_SPREAD`), 1 outside the imager's
        field (left of column :data:`~simval.instruments.miri.IMAGER_FIRST_COLUMN`) and in
        the reference columns: the simulator multiplies rates by it, the FLAT divides it out."""
        spread = np.clip(self._rng("flat").normal(0.0, FLAT_SPREAD,
                                                  (miri.FULL_ROWS, miri.FULL_COLUMNS)),
                         -0.05, 0.05)
        return np.where(self.imager_field, 1.0 + spread, 1.0)

    @functools.cached_property
    def imager_field(self) -> np.ndarray:
        """True on the imager's science pixels: columns IMAGER_FIRST_COLUMN .. 1028
        (1-based), i.e. right of the coronagraphs and left of the reference columns."""
        col = np.arange(miri.FULL_COLUMNS)
        field = (col >= miri.IMAGER_FIRST_COLUMN - 1) & (col < miri.FULL_COLUMNS
                                                         - miri.REFERENCE_COLUMNS)
        return np.broadcast_to(field, (miri.FULL_ROWS, miri.FULL_COLUMNS))

    @functools.cached_property
    def reference_columns(self) -> np.ndarray:
        """True on the 4 reference columns at each side (full frame, broadcast over rows)."""
        col = np.arange(miri.FULL_COLUMNS)
        ref = (col < miri.REFERENCE_COLUMNS) | (col >= miri.FULL_COLUMNS
                                                - miri.REFERENCE_COLUMNS)
        return np.broadcast_to(ref, (miri.FULL_ROWS, miri.FULL_COLUMNS))

    @functools.cached_property
    def lit(self) -> np.ndarray:
        """True where light can fall: every column but the reference ones. (Which pixels see
        the imager's sky is the scene's business: the coronagraphs' fields lie left of column
        360, and the imaging FLAT marks them NON_SCIENCE.)"""
        return ~self.reference_columns

    @property
    def saturation_dn(self) -> np.ndarray:
        """Hard saturation, raw DN: the pedestal plus the full well as measured (after the
        non-linearity)."""
        well = miri.DETECTOR.full_well_dn
        return self.pedestal_dn + well - self.beta_per_dn * well**2

    def cut(self, array: np.ndarray, subarray: str) -> np.ndarray:
        """The part of a full-frame map a subarray reads."""
        sub = miri.get_subarray(subarray)
        return array[sub.ystart - 1:sub.ystart - 1 + sub.ysize,
                     sub.xstart - 1:sub.xstart - 1 + sub.xsize]


def linearity_coefficients(pedestal_dn: np.ndarray, beta_per_dn: np.ndarray,
                           order: int = 6) -> np.ndarray:
    """Coefficients ``c[k]`` (shape (order + 1, *pedestal.shape)) of the correction
    ``L(m) = sum c_k m**k`` on raw DN ``m``, such that ``L(P + v - beta v**2) = v`` for the
    signal ``v`` above the pedestal ``P``, to the term in ``beta**order`` (the next one is
    < 0.4 DN at the full well).

    The inverse of ``u = v - beta v^2`` in powers of ``u`` is ``v = u + beta u^2 + 2 beta^2
    u^3 + 5 beta^3 u^4 + ...`` (Catalan numbers); with ``u = m - P`` it is re-expanded in
    powers of ``m``, the form the pipeline's linearity step evaluates.
    """
    from math import comb

    catalan = [1, 1, 2, 5, 14, 42, 132, 429]
    if not 1 <= order < len(catalan):
        raise ValueError(f"order must be 1..{len(catalan) - 1}, got {order}")
    p, b = np.asarray(pedestal_dn, float), np.asarray(beta_per_dn, float)
    # v = sum_{j=1..order} a_j u^j, a_j = catalan[j-1] beta^(j-1); u = m - P
    coeffs = np.zeros((order + 1, *p.shape))
    for j in range(1, order + 1):
        a = catalan[j - 1] * b ** (j - 1)
        for k in range(j + 1):  # (m - P)^j = sum_k C(j,k) m^k (-P)^(j-k)
            coeffs[k] += a * comb(j, k) * (-p) ** (j - k)
    return coeffs


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
    nonlinearity: bool = True                  # the detector model's beta map
    saturation: bool = True
    pedestal: bool = True                      # the detector model's bias map
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
                       nonlinearity=False, saturation=False, pedestal=False,
                       ktc_dn=0.0, reset_amp_dn=0.0,
                       first_frame_dn=0.0, last_frame_dn=0.0, rscd_amp_dn=0.0, emi=(),
                       cosmic_rays_per_cm2_s=0.0)


def nonlinear(signal_dn: np.ndarray, beta_per_dn: np.ndarray | float) -> np.ndarray:
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
