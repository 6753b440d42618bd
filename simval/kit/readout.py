"""NIRCam readout geometry: subarray corners, amplifiers, frame time, read directions.

Everything here is in the DMS ("science") orientation that jwst products and reference
files use, with 1-based ``SUBSTRT`` corners as in ``meta.subarray``. Sources:

- Subarray corners: pysiaf (the SIAF shipped with it, no network). pysiaf's
  ``dms_corner()`` is in the *detector* frame (e.g. (1649, 1) for NRCB1_SUB400P), so the
  corners are derived here by transforming the aperture's detector-frame corners into the
  full-frame science frame, as MIRAGE does (``siaf_interface.sci_subarray_corners``); the
  DMS SUBSTRT of NRCB1_SUB400P is (1649, 1649).
- Number of outputs (amplifiers) per subarray: MIRAGE's ``NIRCam_subarray_definitions.list``
  (``num_amps``), the table MIRAGE itself uses to compute the frame time.
- Frame time: JWST User Documentation (JDox), "NIRCam Detector Subarrays":
  4 outputs: ((ncols/4 + 12) * (nrows + 1) + 1) * 10 us; 1 output: (ncols + 12) *
  (nrows + 2) * 10 us (FULL 10.73677 s, SUB400P 1.65624 s), identical to MIRAGE's
  ``utils.calc_frame_time`` (which adds one more overhead row for subarrays <= 8x8).
- Read directions: ``FASTAXIS``/``SLOWAXIS`` follow from the SIAF detector-to-science
  transform (DetSciYAngle, DetSciParity), e.g. NRCB1 (+1, -2), NRCA1 (-1, +2). The four
  outputs of a full-frame read scan in alternating directions, [-->, <--, -->, <--]
  (pynrc ``add_ppc``: "By default fast-scan readout direction is [-->,<--,-->,<--]").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from simval.instruments.nircam import (
    PIXEL_TIME_S,
    ROW_OVERHEAD_PIXELS,
    frame_ticks,
    frame_time,
    subarray_definitions,
)
from simval.kit.detectors import FULL_SIZE, N_AMPLIFIERS, Detector
from simval.offline import nircam_siaf

#: Width of one output's stripe in a 4-output read, columns.
AMP_WIDTH = FULL_SIZE // N_AMPLIFIERS

__all__ = ["AMP_WIDTH", "PIXEL_TIME_S", "ROW_OVERHEAD_PIXELS", "Subarray", "frame_ticks",
           "frame_time", "get_subarray", "has_subarray", "read_axes"]


@dataclass(frozen=True)
class Subarray:
    """A NIRCam readout window in DMS orientation.

    Attributes
    ----------
    name : DMS subarray name (``meta.subarray.name``), e.g. ``SUB400P``.
    aperture : SIAF aperture name, e.g. ``NRCB1_SUB400P``.
    xstart, ystart : 1-based full-frame column/row of the first pixel (SUBSTRT1/2).
    xsize, ysize : size, pixels (SUBSIZE1/2).
    namps : number of outputs used to read it (1 or 4).
    fastaxis, slowaxis : DMS FASTAXIS/SLOWAXIS keywords of the detector.
    """

    name: str
    aperture: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    namps: int
    fastaxis: int
    slowaxis: int

    @property
    def frame_time(self) -> float:
        """Frame time of this window, s."""
        return frame_time(self.xsize, self.ysize, self.namps)

    @property
    def ticks_per_frame(self) -> int:
        """Pixel times (10 us) per frame including overheads."""
        return frame_ticks(self.xsize, self.ysize, self.namps)

    @property
    def is_full(self) -> bool:
        return self.xsize == FULL_SIZE and self.ysize == FULL_SIZE

    @property
    def slices(self) -> tuple[slice, slice]:
        """0-based ``(rows, columns)`` slices of this window in a full-frame array."""
        return (slice(self.ystart - 1, self.ystart - 1 + self.ysize),
                slice(self.xstart - 1, self.xstart - 1 + self.xsize))

    @property
    def stamp_tuple(self) -> tuple[str, int, int, int, int]:
        """``(name, xstart, ystart, xsize, ysize)`` as :func:`simval.kit.refmeta.stamp` takes it."""
        return (self.name, self.xstart, self.ystart, self.xsize, self.ysize)

    def amp_stripes(self) -> list[tuple[slice, int]]:
        """Column slices (in this window) read by each output, with their fast-scan sign.

        The sign is +1 when the output reads towards increasing DMS column. A 1-output
        window is read along FASTAXIS; the 4 outputs of a full-width read alternate
        [+, -, +, -] from column 0 (the same pattern for either FASTAXIS sign, because
        flipping [-->, <--, -->, <--] left-right gives the same pattern).
        """
        if self.namps == 1:
            return [(slice(0, self.xsize), 1 if self.fastaxis > 0 else -1)]
        width = self.xsize // self.namps
        return [(slice(k * width, (k + 1) * width), 1 if k % 2 == 0 else -1)
                for k in range(self.namps)]


def _aperture_for(detector: Detector, name: str) -> tuple[str, int]:
    """SIAF aperture name and number of outputs of DMS subarray ``name`` on ``detector``."""
    prefix = detector.siaf_name + "_"
    rows = [(ap, n) for ap, sub, n in subarray_definitions()
            if ap.startswith(prefix) and sub == name]
    exact = [r for r in rows if r[0] == prefix + name]
    if exact:
        return exact[0]
    if len(rows) == 1:
        return rows[0]
    known = sorted({sub for ap, sub, _ in subarray_definitions() if ap.startswith(prefix)})
    raise ValueError(f"subarray {name!r} is not defined for {detector.name} in MIRAGE's "
                     f"NIRCam_subarray_definitions.list; known: {', '.join(known)}")


def has_subarray(detector: Detector, name: str) -> bool:
    """True if MIRAGE defines readout window ``name`` on ``detector`` and it lies on the
    detector (SIAF's NRCA5_SUB400P, for one, reaches row 2050)."""
    try:
        get_subarray(detector, str(name).strip().upper())
    except ValueError:
        return False
    return True


def _siaf():
    return nircam_siaf()


def read_axes(detector: Detector) -> tuple[int, int]:
    """DMS ``(FASTAXIS, SLOWAXIS)`` of ``detector`` from its SIAF full-frame aperture."""
    full = _siaf()[detector.full_aperture]
    cos = math.cos(math.radians(full.DetSciYAngle))
    return round(full.DetSciParity * cos), round(2 * cos)


@functools.cache
def get_subarray(detector: Detector, name: str) -> Subarray:
    """The readout window ``name`` (e.g. ``SUB400P``, ``FULL``) of ``detector``, DMS frame.

    Raises ``ValueError`` for a subarray MIRAGE does not define on that detector.
    """
    name = str(name).strip().upper()
    aperture, namps = _aperture_for(detector, name)
    siaf = _siaf()
    fast, slow = read_axes(detector)
    ap = siaf[aperture]
    xd, yd = ap.corners("det")
    xs, ys = siaf[detector.full_aperture].det_to_sci(xd, yd)
    # Corners are pixel edges (x.5); the first pixel's centre is the 1-based SUBSTRT.
    xstart, ystart = round(float(min(xs)) + 0.5), round(float(min(ys)) + 0.5)
    xsize, ysize = int(ap.XSciSize), int(ap.YSciSize)
    if not (1 <= xstart and xstart + xsize - 1 <= FULL_SIZE
            and 1 <= ystart and ystart + ysize - 1 <= FULL_SIZE):
        raise ValueError(f"{aperture} does not fit in the {FULL_SIZE}x{FULL_SIZE} detector")
    return Subarray(name=name, aperture=aperture, xstart=xstart, ystart=ystart, xsize=xsize,
                    ysize=ysize, namps=namps, fastaxis=fast, slowaxis=slow)
