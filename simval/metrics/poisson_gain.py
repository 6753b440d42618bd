"""The gain behind the pipeline's Poisson variance, against the gain the simulator used.

``ramp_fit`` (stcal OLS) gives each ramp segment the Poisson variance
``(median_rate + dark) / (gain * tgroup * (ngroups - 1))`` in (DN/s)^2, with ``gain`` from
the GAIN reference. On a pixel whose whole ramp is one segment and whose signal dwarfs the
dark current, ``SCI / (VAR_POISSON * tgroup * (ngroups - 1))`` is therefore the gain the
pipeline used, e-/DN. Its median over such pixels, divided by the gain the simulator
converted electrons with (MIRAGE writes it as GAIN in the uncal primary header), is 1 when
the two agree; a GAIN reference 5 % high reads 1.05. Calibrated fluxes never use the gain
(``photom`` works on DN/s), so this is the one place a wrong gain shows at full size: in
ERR, and in the ``jump`` threshold, which uses the same Poisson term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simval.metrics_schema import Measurement

__all__ = ["MIN_PIXELS", "MIN_SIGNAL_DN", "PoissonGain", "implied_gain", "poisson_gain"]

#: Accumulated signal (DN over the ramp) above which a pixel's median group difference is
#: a good estimate of its rate (about 10 % per pixel for NIRCam read noise).
MIN_SIGNAL_DN = 500.0
#: Fewest such pixels (over a filter's exposures) for a measurement.
MIN_PIXELS = 50


def implied_gain(sci: np.ndarray, var_poisson: np.ndarray, dq: np.ndarray, *,
                 tgroup_s: float, ngroups: int,
                 min_signal_dn: float = MIN_SIGNAL_DN) -> np.ndarray:
    """Per usable pixel of a rate file, the gain (e-/DN) its VAR_POISSON implies.

    Usable: DQ 0 (no jump, saturation or defect: one ramp segment), positive VAR_POISSON,
    and ``SCI * tgroup * (ngroups - 1) >= min_signal_dn``. Returns a 1-D array.
    """
    if ngroups < 2:
        return np.empty(0)
    span = float(tgroup_s) * (int(ngroups) - 1)
    sci = np.asarray(sci, float)
    var = np.asarray(var_poisson, float)
    use = (np.asarray(dq) == 0) & np.isfinite(sci) & np.isfinite(var) & (var > 0) \
        & (sci * span >= min_signal_dn)
    return sci[use] / (var[use] * span)


@dataclass
class PoissonGain:
    """Per rate file: the implied gains of its usable pixels and the simulator's gain."""

    names: list[str] = field(default_factory=list)
    ratios: list[np.ndarray] = field(default_factory=list)
    sim_gains: list[float | None] = field(default_factory=list)

    def measurements(self) -> dict[str, Measurement]:
        """``gain_ratio``: median over the pooled pixels of implied gain / simulator gain."""
        pooled = np.concatenate(self.ratios) if self.ratios else np.empty(0)
        per = {n: (float(np.median(r)) if r.size else None)
               for n, r in zip(self.names, self.ratios, strict=True)}
        details = {"per_exposure": per, "simulator_gain": self.sim_gains,
                   "min_signal_dn": MIN_SIGNAL_DN}
        if pooled.size < MIN_PIXELS:
            reason = (f"{pooled.size} pixels with one ramp segment and >= {MIN_SIGNAL_DN:g} DN "
                      f"(need {MIN_PIXELS})" if all(g is not None for g in self.sim_gains)
                      else "no simulator gain (GAIN) in the uncal primary header")
            return {"gain_ratio": Measurement.of("gain_ratio", None, None, int(pooled.size),
                                                 {**details, "not_computed": reason})}
        median = float(np.median(pooled))
        nmad = 1.4826 * float(np.median(np.abs(pooled - median)))
        details["nmad"] = nmad
        return {"gain_ratio": Measurement.of("gain_ratio", median,
                                             1.2533 * nmad / np.sqrt(pooled.size),
                                             int(pooled.size), details)}


def poisson_gain(rate_paths: Sequence[str], uncal_paths: Sequence[str],
                 names: Sequence[str]) -> PoissonGain:
    """:func:`implied_gain` of each rate file over the GAIN of its uncal's primary header."""
    from astropy.io import fits

    out = PoissonGain()
    for rate, uncal, name in zip(rate_paths, uncal_paths, names, strict=True):
        sim_gain = fits.getheader(uncal).get("GAIN")
        with fits.open(rate) as hdul:
            head = hdul[0].header
            gains = implied_gain(hdul["SCI"].data, hdul["VAR_POISSON"].data, hdul["DQ"].data,
                                 tgroup_s=float(head["TGROUP"]), ngroups=int(head["NGROUPS"]))
        out.names.append(name)
        out.sim_gains.append(float(sim_gain) if sim_gain else None)
        out.ratios.append(gains / float(sim_gain) if sim_gain else np.empty(0))
    return out
