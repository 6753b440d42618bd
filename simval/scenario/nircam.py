"""NIRCam readout patterns, subarrays, filter/pupil pairings and frame timing.

Read from the tables MIRAGE ships (``mirage/config``), found without importing MIRAGE, so a
scenario is validated against exactly what the simulator will accept:

- ``nircam_read_pattern_definitions.list``: pattern, frames averaged per group (``nframe``),
  frames skipped between groups (``nskip``, DMS ``GROUPGAP``), maximum groups.
- ``NIRCam_subarray_definitions.list``: SIAF aperture name, subarray name, number of amplifiers.
- ``nircam_filter_pupil_pairings.list``: which filter-wheel and pupil-wheel elements make a
  passband (``F162M`` is ``F150W2`` in the filter wheel with ``F162M`` in the pupil wheel).

Frame time (:func:`frame_time_s`) follows the NIRCam detector readout timing: each row costs
``xsize / namps + 12`` pixel times of 10 µs, a subarray frame reads ``ysize + 2`` rows (``+3``
for the 8x8 subarrays) and a four-amplifier full frame ``ysize + 1`` rows plus one pixel time.
This gives the flight values TFRAME = 10.73677 s (FULL) and 1.65624 s (SUB400P); it is the same
relation as ``mirage.utils.utils.calc_frame_time``, so the plan agrees with the headers MIRAGE
writes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class ReadPattern:
    """A NIRCam MULTIACCUM readout pattern.

    name : e.g. ``BRIGHT2``. nframes : frames averaged into a group (DMS NFRAMES).
    groupgap : frames dropped between groups (DMS GROUPGAP, MIRAGE ``nskip``).
    maxgroups : most groups per integration allowed.
    """

    name: str
    nframes: int
    groupgap: int
    maxgroups: int


def mirage_config_dir() -> Path:
    """``mirage/config`` of the installed MIRAGE, located without importing MIRAGE."""
    spec = importlib.util.find_spec("mirage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("MIRAGE is not installed: its NIRCam tables define the "
                                  "readout patterns and subarrays a scenario may use")
    return Path(next(iter(spec.submodule_search_locations))) / "config"


def _rows(name: str) -> list[list[str]]:
    text = (mirage_config_dir() / name).read_text()
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@lru_cache(maxsize=1)
def read_patterns() -> dict[str, ReadPattern]:
    """Readout patterns by upper-case name, in MIRAGE's table order."""
    rows = _rows("nircam_read_pattern_definitions.list")
    return {r[0].upper(): ReadPattern(r[0].upper(), int(r[1]), int(r[2]), int(r[3]))
            for r in rows[1:]}


@lru_cache(maxsize=1)
def imaging_subarrays() -> dict[str, dict[str, int]]:
    """``{SIAF detector: {subarray: number of amplifiers}}`` for imaging subarrays.

    Only apertures named ``<detector>_<subarray>`` (``NRCB1_SUB400P``) are imaging
    subarrays; coronagraphic, grism and wavefront apertures have other names.
    """
    out: dict[str, dict[str, int]] = {}
    for r in _rows("NIRCam_subarray_definitions.list")[1:]:
        aperture, name, amps = r[0].upper(), r[1].upper(), int(r[2])
        detector, _, rest = aperture.partition("_")
        if rest == name:
            out.setdefault(detector, {})[name] = amps
    return out


@lru_cache(maxsize=1)
def filter_pupil_pairings() -> dict[str, tuple[str, str]]:
    """``{'F162M': ('F150W2', 'F162M'), 'F115W/WLP8': ('F115W', 'WLP8'), ...}``."""
    return {r[0].upper(): (r[1].upper(), r[2].upper())
            for r in _rows("nircam_filter_pupil_pairings.list")[1:]}


def wheel_elements(band: str, pupil: str | None = None) -> tuple[str, str]:
    """Filter-wheel and pupil-wheel elements (``meta.instrument.filter/pupil``) of a passband.

    ``band`` is the passband name (``F115W``, ``F162M``); ``pupil`` optionally names the
    pupil-wheel element (``CLEAR`` or a weak lens such as ``WLP8``). Raises ``KeyError``.
    """
    table = filter_pupil_pairings()
    key = band.upper() if pupil is None else f"{band.upper()}/{pupil.upper()}"
    if key in table:
        return table[key]
    default = table[band.upper()]
    if pupil is not None and default[1] == pupil.upper():
        return default
    raise KeyError(key)


def allowed_pupils(band: str) -> list[str]:
    """Pupil-wheel elements MIRAGE accepts with passband ``band``."""
    out: list[str] = []
    for key, (_, pupil) in filter_pupil_pairings().items():
        name, _, _ = key.partition("/")
        if name == band.upper() and pupil not in out:
            out.append(pupil)
    return out


def frame_time_s(xsize: int, ysize: int, namps: int) -> float:
    """NIRCam frame time in seconds for a ``xsize`` x ``ysize`` read with ``namps`` outputs
    (the kit's detector model, :func:`simval.kit.readout.frame_time`)."""
    from simval.kit.readout import frame_time

    return frame_time(xsize, ysize, namps)


@dataclass(frozen=True)
class Timing:
    """Exposure timing, seconds (JWST MULTIACCUM definitions).

    tframe_s : one frame. tgroup_s : one group, ``(nframes + groupgap) * tframe``.
    integration_time_s : photon collection per integration, first to last frame read,
        ``(ngroups * nframes + (ngroups - 1) * groupgap) * tframe``.
    measurement_time_s : slope baseline, ``nints * (ngroups - 1) * tgroup``.
    exposure_time_s : ``nints * integration_time_s``.
    duration_s : exposure plus resets: one reset frame before each integration after the first,
        and one before the first for a subarray (MIRAGE's NUM_RESETS_BEFORE_EXP/INT, which
        follow the JWST keyword dictionary's DURATION).
    frames_read : frames read per integration, ``ngroups * (nframes + groupgap)``, as a dark
        must provide.
    """

    tframe_s: float
    tgroup_s: float
    integration_time_s: float
    measurement_time_s: float
    exposure_time_s: float
    duration_s: float
    frames_read: int


def exposure_timing(pattern: ReadPattern, ngroups: int, nints: int, xsize: int, ysize: int,
                    namps: int) -> Timing:
    """Timing of one exposure; see :class:`Timing` for the definitions."""
    tframe = frame_time_s(xsize, ysize, namps)
    tgroup = (pattern.nframes + pattern.groupgap) * tframe
    t_int = (ngroups * pattern.nframes + (ngroups - 1) * pattern.groupgap) * tframe
    resets = (0 if namps == 4 else 1) + (nints - 1)
    return Timing(
        tframe_s=tframe,
        tgroup_s=tgroup,
        integration_time_s=t_int,
        measurement_time_s=nints * (ngroups - 1) * tgroup,
        exposure_time_s=nints * t_int,
        duration_s=nints * t_int + resets * tframe,
        frames_read=ngroups * (pattern.nframes + pattern.groupgap),
    )
