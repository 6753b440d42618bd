"""The one definition of a detector's pixel defects and dark-current map.

The bad-pixel mask, the pipeline DARK reference and MIRAGE's linearized dark all read
:func:`defect_map`, which draws from ``component_rng(seed, "defects", detector.name)``
only, so the same pixels are hot in all three and with the same dark rate.

Defect classes (fractions of the light-sensitive pixels, in the 1e-4..1e-3 range; rates
of hot and warm pixels span the range where the dark step matters for NIRCam exposures):

========  =========  ==================================  =====================================
class     fraction   DQ flags                            behaviour
========  =========  ==================================  =====================================
hot       5e-4       HOT | DO_NOT_USE                    dark 0.2-10 DN/s (log-uniform)
warm      1e-3       WARM                                dark 0.02-0.2 DN/s; pipeline uses them
dead      2e-4       DEAD | DO_NOT_USE                   no signal: flat 0, no dark current
low QE    3e-4       LOW_QE                              flat 0.3-0.6; pipeline flat-fields them
========  =========  ==================================  =====================================

"No-signal" pixels are the dead ones (jwst has no separate NO_SIGNAL flag). The reference
pixels (4-pixel border) carry no defect and no dark current; the mask adds their
REFERENCE_PIXEL flag.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from simval.kit.detectors import FULL_SIZE, REFPIX_BORDER, Detector
from simval.seeding import component_rng

FLAG = dqflags.pixel

#: name -> (fraction of science pixels, DQ value)
DEFECT_CLASSES: dict[str, tuple[float, int]] = {
    "hot": (5e-4, FLAG["HOT"] | FLAG["DO_NOT_USE"]),
    "warm": (1e-3, FLAG["WARM"]),
    "dead": (2e-4, FLAG["DEAD"] | FLAG["DO_NOT_USE"]),
    "low_qe": (3e-4, FLAG["LOW_QE"]),
}
#: Dark-rate ranges (DN/s) of hot and warm pixels, drawn log-uniformly.
HOT_RATE_DN_S = (0.2, 10.0)
WARM_RATE_DN_S = (0.02, 0.2)
#: Relative flat-field response of low-QE pixels (uniform).
LOW_QE_RESPONSE = (0.3, 0.6)
#: Log-normal pixel-to-pixel spread of the normal dark current (sigma of ln).
DARK_SPREAD_LN = 0.3


def science_mask() -> np.ndarray:
    """Boolean full-frame map, True on light-sensitive pixels (False on the reference border)."""
    sci = np.zeros((FULL_SIZE, FULL_SIZE), dtype=bool)
    b = REFPIX_BORDER
    sci[b:-b, b:-b] = True
    return sci


@dataclass(frozen=True)
class DefectMap:
    """Pixel defects of one detector (full frame, DMS orientation; read-only arrays).

    dq : uint32 defect flags (no REFERENCE_PIXEL bit).
    dark_rate : float32 mean dark current, DN/s (0 on reference and dead pixels).
    response : float32 relative photo-response of defects (1, 0 dead, 0.3-0.6 low QE).
    indices : flat full-frame indices of each defect class.
    """

    dq: np.ndarray
    dark_rate: np.ndarray
    response: np.ndarray
    indices: dict[str, np.ndarray]

    def mask(self, name: str) -> np.ndarray:
        """Boolean full-frame map of defect class ``name``."""
        out = np.zeros(FULL_SIZE * FULL_SIZE, dtype=bool)
        out[self.indices[name]] = True
        return out.reshape(FULL_SIZE, FULL_SIZE)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


@functools.lru_cache(maxsize=4)
def defect_map(detector: Detector, seed: int) -> DefectMap:
    """Defects and dark-current map of ``detector`` for kit ``seed`` (cached, read-only).

    The normal dark current is the detector median (``detector.dark_e_per_s``, JDox) in
    DN/s at the mean gain, with a log-normal pixel spread normalised to keep that mean.
    """
    rng = component_rng(seed, "defects", detector.name)
    sci_idx = np.flatnonzero(science_mask())
    counts = {name: round(frac * sci_idx.size) for name, (frac, _) in DEFECT_CLASSES.items()}
    chosen = rng.choice(sci_idx, size=sum(counts.values()), replace=False)
    indices, start = {}, 0
    for name, n in counts.items():
        indices[name] = np.sort(chosen[start:start + n])
        start += n

    dq = np.zeros(FULL_SIZE * FULL_SIZE, dtype=np.uint32)
    for name, (_, flag) in DEFECT_CLASSES.items():
        dq[indices[name]] |= np.uint32(flag)

    mean_dn_s = detector.dark_e_per_s / detector.gain_e_per_dn
    spread = rng.standard_normal(sci_idx.size) * DARK_SPREAD_LN - DARK_SPREAD_LN**2 / 2
    rate = np.zeros(FULL_SIZE * FULL_SIZE, dtype=np.float64)
    rate[sci_idx] = mean_dn_s * np.exp(spread)
    rate[indices["hot"]] = _log_uniform(rng, *HOT_RATE_DN_S, counts["hot"])
    rate[indices["warm"]] = _log_uniform(rng, *WARM_RATE_DN_S, counts["warm"])
    rate[indices["dead"]] = 0.0

    response = np.ones(FULL_SIZE * FULL_SIZE, dtype=np.float32)
    response[indices["dead"]] = 0.0
    response[indices["low_qe"]] = rng.uniform(*LOW_QE_RESPONSE, counts["low_qe"])

    arrays = [dq.reshape(FULL_SIZE, FULL_SIZE), rate.astype(np.float32).reshape(FULL_SIZE, -1),
              response.reshape(FULL_SIZE, FULL_SIZE)]
    for a in [*arrays, *indices.values()]:
        a.flags.writeable = False
    return DefectMap(dq=arrays[0], dark_rate=arrays[1], response=arrays[2], indices=indices)
