"""Full-frame detector property maps (numpy arrays, DMS orientation) behind the references.

Each map is drawn from its own ``component_rng(seed, <component>, detector.name[, ...])``
stream, so a file's content does not depend on which other files were built first. Maps
shared by several files (superbias, read noise) are cached and returned read-only.

Levels and the sources they imitate (the kit needs realistic structure, not flight maps):

- superbias: ~12 000 DN per output (flight CRDS ``jwst_nircam_superbias_*``), a few
  hundred DN between outputs, even/odd-column and column structure, pixel scatter.
  Integer DN (raw data are integers), so MIRAGE's SBANDREFPIX is stored losslessly.
- saturation: superbias + full well ~46 000 DN, i.e. ~58 000 DN raw
  (``simval.kit.detectors``; flight ``jwst_nircam_saturation_*``), ~1.5 % pixel spread.
- linearity: correction ``L(x) = x + c2 x^2 + c3 x^3`` of the bias-subtracted raw signal
  x (DN): +1.6 % at 20 000 DN, +4 % at 40 000 DN, +5 % at full well — the few-% level the
  kit asks for, about 60 % of MIRAGE's fallback "mean coefficients derived from CV3 data"
  (``obs_generator.get_nonlinearity_coeffs``: +3 %, +6.7 %, +9 %). L is strictly
  increasing for every x (c2, c3 > 0 and 4 c2^2 < 12 c3), so MIRAGE's Newton inversion
  (``unlinearize``) has a single root up to saturation.
- gain: mean exactly ``detector.gain_e_per_dn`` (MIRAGE's ``MEAN_GAIN_VALUES``, the JDox
  "NIRCam Detector Performance" averages 2.05 / 1.82 e-/DN), 1 % output-to-output and
  2.5 % pixel spread. No amplitude is published for the CRDS gain maps: they are
  estimated on binned areas (MIRAGE's ``obs_generator`` reads the mean instead "to avoid
  discontinuities"), and their pixel-to-pixel accuracy "is not high" (jwst issue #4485).
  The flight gains per detector (pynrc, from P330E, PID 1538: NRCB1 2.00 ... NRCB2 2.24
  e-/DN) differ from the single mean by -2 % to +10 %: derived contexts
  (``gain_uniform``, ``gain_map``, ``gain_scale``) calibrate with either.
- read noise: mean exactly ``detector.readnoise_dn`` (JDox CDS noise / sqrt 2 / gain),
  3 % output-to-output and 7 % pixel spread.
- IPC: ~0.6 % (SW) / ~0.8 % (LW) nearest-neighbour coupling (10 % detector-to-detector
  spread) and 8 % of that on the diagonals: the 0.5-1 % coupling typical of H2RGs.
- flat: low-order (Legendre, order 3) large-scale structure of ~1-2 % plus ~1 % pixel-to-
  pixel, times the defect response (dead 0, low QE 0.3-0.6), mean 1 on science pixels.
"""

from __future__ import annotations

import functools

import numpy as np

from simval.kit.defects import defect_map, science_mask
from simval.kit.detectors import FULL_SIZE, N_AMPLIFIERS, REFPIX_BORDER, Detector
from simval.seeding import component_rng

AMP_WIDTH = FULL_SIZE // N_AMPLIFIERS

BIAS_LEVEL_DN = 12000.0
BIAS_AMP_SPREAD_DN = 250.0
BIAS_EVEN_ODD_DN = 8.0
BIAS_COLUMN_DN = 12.0
BIAS_GRADIENT_DN = 40.0
BIAS_PIXEL_DN = 20.0
#: Number of bias frames a superbias would be the mean of (sets its ERR), frames.
SUPERBIAS_NFRAMES = 64

FULL_WELL_DN = 46000.0
FULL_WELL_SPREAD = 0.015
MAX_RAW_DN = 65000.0

LIN_C2 = 6.0e-7     # 1/DN
LIN_C3 = 1.0e-11    # 1/DN^2
LIN_SPREAD = 0.05

GAIN_AMP_SPREAD = 0.01
GAIN_PIXEL_SPREAD = 0.025
READNOISE_AMP_SPREAD = 0.03
READNOISE_PIXEL_SPREAD = 0.07

IPC_ALPHA = {"SHORT": 0.006, "LONG": 0.008}
IPC_ALPHA_SPREAD = 0.1
IPC_DIAGONAL_RATIO = 0.08

FLAT_ORDER = 3
FLAT_LARGE_SCALE = 0.01
FLAT_PIXEL_COMMON = 0.008
FLAT_PIXEL_FILTER = 0.005
FLAT_ERR = 0.002


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _per_amp(values: np.ndarray) -> np.ndarray:
    """Full-frame row vector (1, 2048) repeating one value per 512-column output stripe."""
    return np.repeat(np.asarray(values, dtype=np.float64), AMP_WIDTH)[None, :]


def _normalise_mean(a: np.ndarray, mean: float) -> np.ndarray:
    """``a`` scaled to have exactly ``mean`` (computed in float64) as float32."""
    out = (a * (mean / a.mean())).astype(np.float32)
    # One float32 correction step so that the float32 array's mean is ``mean``.
    return (out * np.float32(mean / out.astype(np.float64).mean())).astype(np.float32)


@functools.lru_cache(maxsize=4)
def superbias(detector: Detector, seed: int) -> np.ndarray:
    """Superbias, DN (integer values, float32, read-only)."""
    rng = component_rng(seed, "superbias", detector.name)
    n = FULL_SIZE
    amp = rng.normal(BIAS_LEVEL_DN, BIAS_AMP_SPREAD_DN, N_AMPLIFIERS)
    even_odd = rng.normal(0.0, BIAS_EVEN_ODD_DN, (N_AMPLIFIERS, 2))
    columns = _per_amp(amp) + rng.normal(0.0, BIAS_COLUMN_DN, (1, n))
    columns += np.repeat(even_odd, AMP_WIDTH // 2, axis=0).reshape(1, n)  # alternating parity
    gradient = rng.normal(0.0, BIAS_GRADIENT_DN) * (np.arange(n)[:, None] / n - 0.5)
    bias = columns + gradient + rng.normal(0.0, BIAS_PIXEL_DN, (n, n))
    return _readonly(np.round(bias).astype(np.float32))


def superbias_err(detector: Detector, seed: int) -> np.ndarray:
    """Uncertainty of the superbias, DN: read noise / sqrt(SUPERBIAS_NFRAMES)."""
    return (readnoise(detector, seed) / np.float32(np.sqrt(SUPERBIAS_NFRAMES))).astype(np.float32)


@functools.lru_cache(maxsize=4)
def readnoise(detector: Detector, seed: int) -> np.ndarray:
    """Single-read noise per pixel, DN (float32, read-only); mean ``detector.readnoise_dn``."""
    rng = component_rng(seed, "readnoise", detector.name)
    amp = 1.0 + rng.normal(0.0, READNOISE_AMP_SPREAD, N_AMPLIFIERS)
    pix = 1.0 + rng.normal(0.0, READNOISE_PIXEL_SPREAD, (FULL_SIZE, FULL_SIZE))
    rel = np.clip(_per_amp(amp) * pix, 0.6, 2.0)
    return _readonly(_normalise_mean(rel, detector.readnoise_dn))


def gain(detector: Detector, seed: int) -> np.ndarray:
    """Gain per pixel, e-/DN (float32); mean exactly ``detector.gain_e_per_dn``."""
    rng = component_rng(seed, "gain", detector.name)
    amp = 1.0 + rng.normal(0.0, GAIN_AMP_SPREAD, N_AMPLIFIERS)
    pix = 1.0 + rng.normal(0.0, GAIN_PIXEL_SPREAD, (FULL_SIZE, FULL_SIZE))
    return _normalise_mean(np.clip(_per_amp(amp) * pix, 0.8, 1.2), detector.gain_e_per_dn)


def saturation(detector: Detector, seed: int) -> np.ndarray:
    """Hard saturation in raw DN including the bias (float32): superbias + full well."""
    rng = component_rng(seed, "saturation", detector.name)
    well = FULL_WELL_DN * (1.0 + rng.normal(0.0, FULL_WELL_SPREAD, (FULL_SIZE, FULL_SIZE)))
    return np.minimum(superbias(detector, seed) + well, MAX_RAW_DN).astype(np.float32)


def linearity_coeffs(detector: Detector, seed: int) -> np.ndarray:
    """Linearity coefficients ``(4, ny, nx)`` of ``L(x) = sum c_i x^i`` (float32).

    ``x`` is the superbias- and reference-pixel-corrected raw signal in DN; ``L(x)`` the
    linearized signal in DN. Reference pixels get the identity ``L(x) = x``.
    """
    rng = component_rng(seed, "linearity", detector.name)
    shape = (FULL_SIZE, FULL_SIZE)
    # Multipliers are clipped to stay positive: c2, c3 > 0 keeps L monotonic.
    c2 = LIN_C2 * np.clip(1.0 + rng.normal(0.0, LIN_SPREAD, shape), 0.7, 1.3)
    c3 = LIN_C3 * np.clip(1.0 + rng.normal(0.0, LIN_SPREAD, shape), 0.7, 1.3)
    ref = ~science_mask()
    c2[ref] = 0.0
    c3[ref] = 0.0
    coeffs = np.empty((4, *shape), dtype=np.float32)
    coeffs[0] = 0.0
    coeffs[1] = 1.0
    coeffs[2] = c2
    coeffs[3] = c3
    return coeffs


def ipc_physical_kernel(detector: Detector, seed: int) -> np.ndarray:
    """3x3 kernel that ADDS IPC (charge shared with neighbours), sum 1, float64."""
    rng = component_rng(seed, "ipc", detector.name)
    alpha = IPC_ALPHA[detector.channel] * (1.0 + IPC_ALPHA_SPREAD * rng.standard_normal())
    diag = IPC_DIAGONAL_RATIO * alpha
    kernel = np.array([[diag, alpha, diag], [alpha, 0.0, alpha], [diag, alpha, diag]])
    kernel[1, 1] = 1.0 - kernel.sum()
    return kernel


def ipc_deconvolution_kernel(physical: np.ndarray) -> np.ndarray:
    """3x3 kernel that REMOVES IPC: the inverse of ``physical`` on a periodic 3x3 grid.

    This is what the jwst IPC reference holds ("IPC deconvolution kernel", the ipc step
    convolves the data with it). MIRAGE (``invertIPC: True``) inverts it back with the same
    3x3 FFT division, which recovers ``physical`` exactly, so MIRAGE adds the physical IPC
    and the pipeline removes it (to second order in the coupling, ~4e-5).
    """
    centred = np.fft.ifftshift(physical)
    inverse = np.real(np.fft.ifft2(1.0 / np.fft.fft2(centred)))
    return np.fft.fftshift(inverse)


def _legendre_surface(coeffs: np.ndarray) -> np.ndarray:
    """Full-frame 2-D Legendre series ``sum c[i, j] P_i(y) P_j(x)`` on [-1, 1]^2."""
    t = np.linspace(-1.0, 1.0, FULL_SIZE)
    order = coeffs.shape[0]
    basis = np.array([np.polynomial.legendre.Legendre.basis(k)(t) for k in range(order)])
    return basis.T @ coeffs @ basis


def flat(detector: Detector, seed: int, filter_name: str) -> np.ndarray:
    """Pixel flat for ``filter_name`` (float32), mean 1 on responsive science pixels.

    A detector-wide component (shared by all filters) and a filter component, each with a
    large-scale Legendre surface and pixel-to-pixel noise, times the defect response.
    Reference pixels are 1.
    """
    common = component_rng(seed, "flat", detector.name)
    own = component_rng(seed, "flat", detector.name, filter_name.upper())
    n = FULL_SIZE
    scale = FLAT_LARGE_SCALE / (1.0 + np.add.outer(np.arange(FLAT_ORDER + 1),
                                                   np.arange(FLAT_ORDER + 1)))
    surface = np.ones((n, n))
    surface += _legendre_surface(common.normal(0.0, 1.0, scale.shape) * scale)
    surface += _legendre_surface(own.normal(0.0, 1.0, scale.shape) * scale)
    surface += common.normal(0.0, FLAT_PIXEL_COMMON, (n, n))
    surface += own.normal(0.0, FLAT_PIXEL_FILTER, (n, n))
    defects = defect_map(detector, seed)
    data = surface * defects.response
    good = science_mask() & (defects.response > 0)
    data /= data[good].mean()
    b = REFPIX_BORDER
    out = np.ones((n, n), dtype=np.float32)
    out[b:-b, b:-b] = data[b:-b, b:-b]
    return out
