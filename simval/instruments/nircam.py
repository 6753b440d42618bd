"""NIRCam facts in one place: detectors, filters, readout, MIRAGE's tables, file names.

Units are in the names: pixels, seconds, arcsec, e- and DN. MIRAGE's ADU is the pipeline's
DN: the same raw count, MIRAGE calls it ADU and jwst DN.

Detectors
---------
Names follow the DMS convention used in jwst products (``NRCB1`` ... ``NRCBLONG``); the
SIAF/MIRAGE name of a long-wave detector is ``NRCB5``. Values are means of the flight
detectors, with their source:

- gain (e-/DN): MIRAGE's ``MEAN_GAIN_VALUES`` (``mirage.utils.constants``), which MIRAGE
  uses for Poisson noise and cosmic rays. The kit's gain maps are centred on these values so
  that the pipeline's noise model agrees with the simulator's.
- read noise: JWST User Documentation (JDox), "NIRCam Detector Performance": CDS noise
  15.77 e- (SW) and 13.25 e- (LW); the kit's noise maps and MIRAGE darks use the
  single-read noise, CDS/sqrt(2), converted to DN with the gain; its READNOISE reference
  holds the CDS noise, as the pipeline reads it.
- dark current: JDox, same page: 0.0019 e-/s (SW), 0.027 e-/s (LW) median.

MIRAGE's tables
---------------
Read from the files MIRAGE ships (``mirage/config``), found without importing MIRAGE, so a
scenario is validated against exactly what the simulator will accept:

- ``nircam_read_pattern_definitions.list``: pattern, frames averaged per group (``nframe``),
  frames skipped between groups (``nskip``, DMS ``GROUPGAP``), maximum groups.
- ``NIRCam_subarray_definitions.list``: SIAF aperture name, subarray name, number of outputs.
- ``nircam_filter_pupil_pairings.list``: which filter-wheel and pupil-wheel elements make a
  passband (``F162M`` is ``F150W2`` in the filter wheel with ``F162M`` in the pupil wheel).

Frame time
----------
JDox, "NIRCam Detector Subarrays": each row costs ``xsize / namps + 12`` pixel times of
10 µs; a four-output frame reads ``ysize + 1`` rows plus one pixel time, a one-output frame
``ysize + 2`` rows (``+3`` for subarrays <= 8x8, as MIRAGE's ``calc_frame_time``). This gives
the flight TFRAME = 10.73677 s (FULL) and 1.65624 s (SUB400P), the values MIRAGE writes.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "DETECTORS", "FULL_SIZE", "LW_FILTERS", "NATIVE_SCALE_ARCSEC", "NIRCAM_FWHM_ARCSEC",
    "N_AMPLIFIERS", "PIXEL_TIME_S", "REFPIX_BORDER", "ROW_OVERHEAD_PIXELS", "SW_FILTERS",
    "Detector", "ReadPattern", "Timing", "allowed_pupils", "base36", "check_filter",
    "exposure_base_name", "exposure_timing", "filter_pupil_pairings", "frame_ticks",
    "frame_time", "get_detector", "imaging_subarrays", "mirage_config_dir", "mirage_config_file",
    "mirage_package_dir", "read_patterns", "subarray_amplifiers", "subarray_definitions",
    "throughput_file", "wheel_elements", "zeropoint_file",
]

# --- geometry -------------------------------------------------------------------------------

#: Full-frame size of every NIRCam SCA, pixels.
FULL_SIZE = 2048
#: Width of the reference-pixel border on every side of a full frame, pixels.
REFPIX_BORDER = 4
#: Number of output amplifiers on a full-frame NIRCam read, each 512 columns wide.
N_AMPLIFIERS = 4
#: Nominal native pixel scale by channel (JDox), arcsec/pixel; per-detector values come from
#: the SIAF (XSciScale, YSciScale: NRCB1 0.0307/0.0308, NRCB5 0.0629/0.0631).
NATIVE_SCALE_ARCSEC = {"SHORT": 0.0311, "LONG": 0.0630}

# --- filters --------------------------------------------------------------------------------

SW_FILTERS = (
    "F070W", "F090W", "F115W", "F140M", "F150W", "F150W2", "F162M", "F164N",
    "F182M", "F187N", "F200W", "F210M", "F212N",
)
LW_FILTERS = (
    "F250M", "F277W", "F300M", "F322W2", "F323N", "F335M", "F356W", "F360M",
    "F405N", "F410M", "F430M", "F444W", "F460M", "F466N", "F470N", "F480M",
)

#: PSF FWHM by filter, arcsec: JDox, "NIRCam Point Spread Functions", table of
#: WebbPSF/STPSF-predicted FWHM per filter (https://jwst-docs.stsci.edu/
#: jwst-near-infrared-camera/nircam-performance/nircam-point-spread-functions).
NIRCAM_FWHM_ARCSEC: dict[str, float] = {
    "F070W": 0.023, "F090W": 0.030, "F115W": 0.037, "F140M": 0.046, "F150W": 0.049,
    "F150W2": 0.045, "F162M": 0.053, "F164N": 0.054, "F182M": 0.060, "F187N": 0.061,
    "F200W": 0.064, "F210M": 0.068, "F212N": 0.069,
    "F250M": 0.082, "F277W": 0.088, "F300M": 0.097, "F322W2": 0.096, "F323N": 0.106,
    "F335M": 0.109, "F356W": 0.114, "F360M": 0.118, "F405N": 0.132, "F410M": 0.133,
    "F430M": 0.139, "F444W": 0.140, "F460M": 0.151, "F466N": 0.152, "F470N": 0.155,
    "F480M": 0.157,
}

# --- detectors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detector:
    """One NIRCam sensor chip assembly (SCA).

    Attributes
    ----------
    name : DMS detector name as written in ``meta.instrument.detector`` (e.g. ``NRCBLONG``).
    siaf_name : SIAF/MIRAGE name (``NRCB5`` for ``NRCBLONG``).
    sca_id : SCA number (481-490).
    channel : ``SHORT`` or ``LONG`` (``meta.instrument.channel``).
    module : ``A`` or ``B``.
    gain_e_per_dn : mean gain, e-/DN.
    readnoise_cds_e : correlated-double-sample read noise, e-.
    dark_e_per_s : median dark current, e-/s.
    """

    name: str
    siaf_name: str
    sca_id: int
    channel: str
    module: str
    gain_e_per_dn: float
    readnoise_cds_e: float
    dark_e_per_s: float

    @property
    def is_long(self) -> bool:
        return self.channel == "LONG"

    @property
    def filters(self) -> tuple[str, ...]:
        """Filters that this detector's channel can observe through."""
        return LW_FILTERS if self.is_long else SW_FILTERS

    @property
    def readnoise_dn(self) -> float:
        """Single-read noise in DN (CDS noise / sqrt(2) / gain)."""
        return self.readnoise_cds_e / 2**0.5 / self.gain_e_per_dn

    @property
    def full_aperture(self) -> str:
        """SIAF name of the full-frame aperture, e.g. ``NRCB1_FULL``."""
        return f"{self.siaf_name}_FULL"


def _make(name: str, siaf: str, sca: int) -> Detector:
    long = siaf.endswith("5")
    return Detector(
        name=name,
        siaf_name=siaf,
        sca_id=sca,
        channel="LONG" if long else "SHORT",
        module=siaf[3],
        gain_e_per_dn=1.82 if long else 2.05,
        readnoise_cds_e=13.25 if long else 15.77,
        dark_e_per_s=0.027 if long else 0.0019,
    )


DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        _make("NRCA1", "NRCA1", 481), _make("NRCA2", "NRCA2", 482),
        _make("NRCA3", "NRCA3", 483), _make("NRCA4", "NRCA4", 484),
        _make("NRCALONG", "NRCA5", 485),
        _make("NRCB1", "NRCB1", 486), _make("NRCB2", "NRCB2", 487),
        _make("NRCB3", "NRCB3", 488), _make("NRCB4", "NRCB4", 489),
        _make("NRCBLONG", "NRCB5", 490),
    )
}
_ALIASES = {d.siaf_name: d.name for d in DETECTORS.values()}


def get_detector(name: str | Detector) -> Detector:
    """A detector itself, or looked up by DMS (``NRCBLONG``) or SIAF (``NRCB5``) name,
    case-insensitive.

    Raises ``ValueError`` naming the allowed detectors for anything else.
    """
    if isinstance(name, Detector):
        return name
    key = str(name).strip().upper()
    key = _ALIASES.get(key, key)
    if key not in DETECTORS:
        allowed = ", ".join(DETECTORS)
        raise ValueError(f"unknown NIRCam detector {name!r}; expected one of: {allowed} "
                         "(NRCA5/NRCB5 are accepted for NRCALONG/NRCBLONG)")
    return DETECTORS[key]


def check_filter(detector: Detector, filter_name: str) -> str:
    """Return the upper-cased filter if ``detector``'s channel has it, else raise ``ValueError``."""
    f = str(filter_name).strip().upper()
    if f not in detector.filters:
        chan = "long-wave" if detector.is_long else "short-wave"
        raise ValueError(
            f"filter {filter_name!r} is not a {chan} NIRCam filter, so {detector.name} cannot "
            f"observe through it; {chan} filters are: {', '.join(detector.filters)}"
        )
    return f


# --- frame timing ---------------------------------------------------------------------------

#: Time to read (or reset) one pixel, s (JDox "NIRCam Detector Readout": 10 us per pixel).
PIXEL_TIME_S = 10e-6
#: Overhead at the end of every row, in pixel times (JDox "NIRCam Detector Subarrays").
ROW_OVERHEAD_PIXELS = 12


def frame_ticks(xsize: int, ysize: int, namps: int) -> int:
    """Length of one frame in pixel times (10 us ticks), including row and frame overheads."""
    if namps not in (1, N_AMPLIFIERS):
        raise ValueError(f"a NIRCam frame is read through 1 or 4 outputs, not {namps}")
    row = xsize // namps + ROW_OVERHEAD_PIXELS
    if namps == N_AMPLIFIERS:
        return row * (ysize + 1) + 1
    extra_rows = 3 if (xsize <= 8 and ysize <= 8) else 2
    return row * (ysize + extra_rows)


def frame_time(xsize: int, ysize: int, namps: int) -> float:
    """Time to read one frame of ``xsize`` x ``ysize`` pixels through ``namps`` outputs, s."""
    return frame_ticks(xsize, ysize, namps) * PIXEL_TIME_S


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
    tframe = frame_time(xsize, ysize, namps)
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


# --- MIRAGE's tables ------------------------------------------------------------------------

def mirage_package_dir() -> Path:
    """Directory of the installed ``mirage`` package, found without importing it."""
    spec = importlib.util.find_spec("mirage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("MIRAGE is not installed: its NIRCam tables (readout "
                                  "patterns, subarrays, filter pairings, throughputs, "
                                  "zeropoints) define what simval simulates")
    return Path(next(iter(spec.submodule_search_locations)))


def mirage_config_dir() -> Path:
    """``mirage/config`` of the installed MIRAGE, located without importing MIRAGE."""
    return mirage_package_dir() / "config"


def mirage_config_file(name: str) -> Path:
    """Path of a file shipped in ``mirage/config`` (e.g. ``NIRCam_zeropoints.list``)."""
    return mirage_config_dir() / name


def _rows(path: str | os.PathLike | None, name: str) -> list[list[str]]:
    """Whitespace-separated rows of a MIRAGE table (header first), comments skipped;
    ``path`` None: MIRAGE's own file ``name``."""
    text = Path(path if path is not None else mirage_config_file(name)).read_text()
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@lru_cache(maxsize=4)
def read_patterns(path: str | os.PathLike | None = None) -> dict[str, ReadPattern]:
    """Readout patterns by upper-case name, in table order (default: MIRAGE's
    ``nircam_read_pattern_definitions.list``)."""
    rows = _rows(path, "nircam_read_pattern_definitions.list")
    return {r[0].upper(): ReadPattern(r[0].upper(), int(r[1]), int(r[2]), int(r[3]))
            for r in rows[1:]}


@lru_cache(maxsize=4)
def subarray_definitions(path: str | os.PathLike | None = None
                         ) -> tuple[tuple[str, str, int], ...]:
    """Rows ``(SIAF aperture, subarray name, number of outputs)``, upper case (default:
    MIRAGE's ``NIRCam_subarray_definitions.list``)."""
    rows = _rows(path, "NIRCam_subarray_definitions.list")
    return tuple((r[0].upper(), r[1].upper(), int(r[2])) for r in rows[1:])


def subarray_amplifiers(path: str | os.PathLike | None = None) -> dict[str, int]:
    """``{SIAF aperture: number of outputs}``, e.g. ``{'NRCB1_SUB400P': 1, ...}``."""
    return {aperture: amps for aperture, _, amps in subarray_definitions(path)}


@lru_cache(maxsize=1)
def imaging_subarrays() -> dict[str, dict[str, int]]:
    """``{SIAF detector: {subarray: number of outputs}}`` for imaging subarrays.

    Only apertures named ``<detector>_<subarray>`` (``NRCB1_SUB400P``) are imaging
    subarrays; coronagraphic, grism and wavefront apertures have other names.
    """
    out: dict[str, dict[str, int]] = {}
    for aperture, name, amps in subarray_definitions():
        detector, _, rest = aperture.partition("_")
        if rest == name:
            out.setdefault(detector, {})[name] = amps
    return out


@lru_cache(maxsize=1)
def filter_pupil_pairings() -> dict[str, tuple[str, str]]:
    """``{'F162M': ('F150W2', 'F162M'), 'F115W/WLP8': ('F115W', 'WLP8'), ...}``."""
    return {r[0].upper(): (r[1].upper(), r[2].upper())
            for r in _rows(None, "nircam_filter_pupil_pairings.list")[1:]}


@lru_cache(maxsize=128)
def wheel_elements(band: str, pupil: str | None = None) -> tuple[str, str]:
    """``(filter wheel, pupil wheel)`` elements (``meta.instrument.filter/pupil``) of a
    passband, as MIRAGE's pairing table gives them.

    ``band`` is a passband (``F115W``, ``F162M``), optionally with its pupil element
    (``F115W/WLP8``, ``F150W2/F164N``, in either order); ``pupil`` names the pupil element
    separately (``CLEAR``, ``WLP8``, or the pupil-wheel filter itself). ``F115W -> (F115W,
    CLEAR)``, ``F162M -> (F150W2, F162M)``. Raises ``ValueError`` for a combination the
    table does not have.
    """
    table = filter_pupil_pairings()
    text = str(band).strip().upper()
    if pupil is not None:
        text = f"{text}/{str(pupil).strip().upper()}"
    parts = [p.strip() for p in text.split("/")]
    if len(parts) == 1 and parts[0] in table:
        return table[parts[0]]
    if len(parts) == 2:
        for first, second in (parts, parts[::-1]):
            if f"{first}/{second}" in table:
                return table[f"{first}/{second}"]
            if first in table and table[first][1] == second:
                return table[first]
    raise ValueError(f"unknown NIRCam filter {text!r} (no such row in MIRAGE's "
                     "nircam_filter_pupil_pairings.list)")


def allowed_pupils(band: str) -> list[str]:
    """Pupil-wheel elements MIRAGE accepts with passband ``band``."""
    out: list[str] = []
    for key, (_, pupil) in filter_pupil_pairings().items():
        name, _, _ = key.partition("/")
        if name == band.upper() and pupil not in out:
            out.append(pupil)
    return out


def throughput_file(filter_wheel: str, pupil: str, module: str) -> Path:
    """MIRAGE's filter+OTE throughput curve of a filter/pupil pair in module A or B (the
    file may not exist for every pair)."""
    return mirage_config_file(f"{filter_wheel}_{pupil}_nircam_plus_ote_throughput_"
                              f"mod{module.lower()}_sorted.txt")


def zeropoint_file() -> Path:
    """MIRAGE's NIRCam zeropoint table (``mirage/config/NIRCam_zeropoints.list``)."""
    return mirage_config_file("NIRCam_zeropoints.list")


# --- DMS file names -------------------------------------------------------------------------

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(value: int, width: int) -> str:
    """``value`` in base 36 (lower-case digits), zero-padded to ``width``: 37 -> ``'11'``."""
    out = ""
    while value:
        value, rem = divmod(value, 36)
        out = _B36[rem] + out
    return out.rjust(width, "0")


def exposure_base_name(program: int, observation: int, visit: int, visit_group: int,
                       sequence: int, activity: int, exposure: int, detector: str) -> str:
    """``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>`` (activity in base 36,
    detector in lower case), the DMS name of an exposure's files."""
    return (f"jw{program:05d}{observation:03d}{visit:03d}_{visit_group:02d}{sequence:d}"
            f"{base36(activity, 2)}_{exposure:05d}_{detector.lower()}")
