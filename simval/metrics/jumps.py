"""Jump flags in the cal files: how many science pixels ``jump`` flagged.

``jump`` (stcal ``twopoint_difference``) rejects a group difference that departs from the
median by more than ``rejection_threshold`` sigma, sigma from the READNOISE and, through
the GAIN, the Poisson noise in electrons. A wrong gain or read noise moves the threshold;
with cosmic rays switched off every flag is a false positive. Ramp fitting copies a
group's JUMP_DET into the pixel DQ that image2 carries to the cal file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simval.metrics_schema import Measurement

__all__ = ["JumpFlags", "jump_flags"]


@dataclass
class JumpFlags:
    """Per cal file: science pixels and how many carry JUMP_DET."""

    names: list[str] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)
    pixels: list[int] = field(default_factory=list)

    def measurements(self) -> dict[str, Measurement]:
        """``jump_frac``: flagged / science pixels over every cal file."""
        total = int(sum(self.pixels))
        frac = sum(self.flagged) / total if total else None
        per = {n: (f / p if p else None)
               for n, f, p in zip(self.names, self.flagged, self.pixels, strict=True)}
        d = {"flagged": int(sum(self.flagged)), "per_exposure": per}
        return {"jump_frac": Measurement.of("jump_frac", frac, None, total, d)}


def science_pixels(dq: np.ndarray) -> np.ndarray:
    """Pixels that can carry a jump: not reference or non-science, and not DO_NOT_USE for
    any other reason than a jump."""
    from stdatamodels.jwst.datamodels import dqflags

    flag = dqflags.pixel
    frame = (dq & (flag["REFERENCE_PIXEL"] | flag["NON_SCIENCE"])) != 0
    unusable = ((dq & flag["DO_NOT_USE"]) != 0) & ((dq & flag["JUMP_DET"]) == 0)
    return ~frame & ~unusable


def jump_flags(paths: Sequence[str], names: Sequence[str]) -> JumpFlags:
    """Count JUMP_DET among the science pixels of each cal file's DQ."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import dqflags

    jump = dqflags.pixel["JUMP_DET"]
    out = JumpFlags()
    for path, name in zip(paths, names, strict=True):
        with fits.open(path) as hdul:
            dq = np.asarray(hdul["DQ"].data)
        science = science_pixels(dq)
        out.names.append(name)
        out.pixels.append(int(science.sum()))
        out.flagged.append(int((((dq & jump) != 0) & science).sum()))
    return out
