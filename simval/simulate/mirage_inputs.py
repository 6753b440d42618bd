"""What MIRAGE 2.5.0 simulates for one NIRCam imaging exposure, and the files it reads.

:class:`MirageExposure` is the exposure (detector, subarray, filter and pupil, readout,
pointing in deg, JWST identifiers, sky in ADU/s/pixel, effects, seed), validated on
construction; :class:`MirageReferences` the files MIRAGE reads (reference files, MIRAGE's
configuration tables, PSF and cosmic-ray libraries). The checks here run before MIRAGE
does, because MIRAGE's own failures are late or silent: :func:`check_inputs` names every
missing file and :func:`check_dark` refuses a dark too short for the exposure.

MIRAGE fills a ``Reffiles`` key that is *missing* from the yaml with ``'crds'`` and then
asks CRDS (``mirage.utils.utils.full_paths``, for the keys of
``mirage.utils.constants.CRDS_FILE_TYPES``). MIRAGE's own yaml generator never writes
``pixelAreaMap``, so its yamls make MIRAGE query CRDS for an ``area`` file. Here every key
MIRAGE reads is given (:func:`reffiles_section`): a path, or the string ``None`` for "skip
this effect" (MIRAGE turns a YAML null into ``'None'`` anyway). :data:`REFFILES_KEYS` lists
them with what each must be.

Random numbers: MIRAGE draws Poisson noise with ``np.random.seed(simSignals:poissonseed)``
(incremented per frame), cosmic-ray counts and positions from ``cosmicRay:seed`` (numpy and
:class:`random.Random`), and picks dark integrations with the unseeded global numpy generator
(only when ``nint > 1`` and several darks are given). :func:`derive_seeds` makes all three from
the exposure's one ``seed`` and its file name; the backend seeds the global generator with the
third before MIRAGE starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from astropy.time import Time

from simval.instruments import nircam
from simval.instruments.nircam import (
    Detector,
    base36,
    check_filter,
    exposure_base_name,
    get_detector,
    mirage_config_file,
)

__all__ = [
    "REFFILES_KEYS",
    "MirageExposure",
    "MirageReferences",
    "PathLike",
    "absolute_path",
    "check_dark",
    "check_inputs",
    "cosmic_ray_files",
    "cosmic_ray_suffix",
    "derive_seeds",
    "path_or_none",
    "psf_library_pattern",
    "reffiles_section",
    "required_reference",
]

#: Every ``Reffiles`` key MIRAGE 2.5.0 reads for NIRCam imaging, with what it must point to.
REFFILES_KEYS: dict[str, str] = {
    "dark": "raw dark ramp; always None here (a raw dark makes MIRAGE run jwst steps that "
            "need CRDS), the linearized dark is used instead",
    "linearized_darkfile": "linearized dark ramp, full frame, DMS orientation: extensions "
                           "SCI (nint, ngroup, 2048, 2048) and SBANDREFPIX (superbias + "
                           "reference-pixel signal, same shape), ZEROFRAME optional; header "
                           "READPATT (RAPID or the exposure's), NFRAMES, NGROUPS, DETECTOR "
                           "(DMS name: it becomes the uncal's DETECTOR/CHANNEL), INSTRUME, "
                           "FASTAXIS, SLOWAXIS; enough integrations and frames (check_dark)",
    "badpixmask": "jwst MASK reference (DQ in extension 1), only used for linear outputs",
    "superbias": "jwst SUPERBIAS reference (image in extension 1); MIRAGE stops without it",
    "linearity": "jwst LINEARITY reference (coeffs (ncoeff, y, x) in extension 1); an "
                 "unreadable file makes MIRAGE fall back silently to mean CV3 coefficients",
    "saturation": "jwst SATURATION reference (DN incl. bias, extension 1)",
    "gain": "jwst GAIN reference; MIRAGE 2.5 does not use it (mean gain from "
            "mirage.utils.constants.MEAN_GAIN_VALUES) but records it",
    "pixelflat": "jwst FLAT reference (extension 1); the ramps are multiplied by it, or None",
    "illumflat": "illumination flat (extension 1) or None",
    "astrometric": "jwst DISTORTION reference (ASDF) used for sky -> pixel positions",
    "photom": "jwst PHOTOM reference; read only for a segmentation threshold in MJy/sr",
    "ipc": "jwst IPC reference (kernel in extension 1) or None; MIRAGE writes "
           "Kernel_to_add_IPC_effects_from_<name> next to it (the backend stages a link)",
    "invertIPC": "True when 'ipc' is a correction kernel (jwst references are)",
    "occult": "None (coronagraphic occulters are not simulated)",
    "pixelAreaMap": "jwst AREA reference; not used by MIRAGE imaging but a missing key "
                    "makes MIRAGE query CRDS",
    "transmission": "None (full transmission; POM transmission images are for grism modes)",
    "subarray_defs": "MIRAGE's NIRCam_subarray_definitions.list",
    "readpattdefs": "MIRAGE's nircam_read_pattern_definitions.list",
    "crosstalk": "crosstalk coefficient table (MIRAGE's xtalk20150303g0.errorcut.txt) or None",
    "filtpupilcombo": "MIRAGE's nircam_filter_pupil_pairings.list",
    "filter_wheel_positions": "MIRAGE's nircam_filter_and_pupil_wheel_positions.txt",
    "flux_cal": "zeropoint table (MIRAGE's NIRCam_zeropoints.list): PHOTFNU per "
                "filter/pupil/detector sets ADU/s = 10**(-0.4*(mag+48.6))/PHOTFNU",
    "filter_throughput": "filter+OTE throughput curve (used only for ETC-like backgrounds)",
}


def derive_seeds(seed: int, base_name: str) -> dict[str, int]:
    """MIRAGE's random seeds from one integer and the exposure's file base name.

    Returns ``{"cosmic_ray": ..., "poisson": ..., "numpy": ...}``, each in
    ``[1, 2**31 - 1)``: MIRAGE increments the Poisson and cosmic-ray seeds once per frame and
    ``numpy.random.seed`` accepts only ``< 2**32``. Mixing in ``base_name`` gives two
    exposures of one scenario independent noise even if a caller reused the seed.
    """
    out = {}
    for label in ("cosmic_ray", "poisson", "numpy"):
        text = json.dumps([int(seed), base_name, "mirage", label])
        digest = hashlib.sha256(text.encode()).digest()
        out[label] = 1 + int.from_bytes(digest[:8], "little") % (2**31 - 2**20)
    return out


_FREE_TEXT = re.compile(r"^[A-Za-z0-9 _.,()+\-/]*$")


@dataclass(frozen=True)
class MirageExposure:
    """One NIRCam imaging exposure as MIRAGE simulates it.

    Parameters
    ----------
    detector : DMS (``NRCB1``, ``NRCBLONG``) or SIAF (``NRCB5``) detector name.
    subarray : subarray name (``FULL``, ``SUB400P``...); MIRAGE's aperture is
        ``<SIAF detector>_<subarray>``, e.g. ``NRCB1_SUB400P`` or ``NRCB5_FULL``.
    filter_name, pupil : optical elements (``F115W``, ``CLEAR``).
    readpatt, ngroups, nints : readout pattern (MIRAGE's list: RAPID, BRIGHT2, ...), groups per
        integration, integrations.
    ra_deg, dec_deg : ICRS position of the aperture's reference point (SIAF V2Ref/V3Ref), deg.
    pa_v3_deg : PA_V3, position angle of the V3 axis at V1, deg East of North (not the
        local roll at the aperture; MIRAGE derives that).
    date_obs, time_obs : exposure start, UTC (``YYYY-MM-DD``, ``HH:MM:SS.sss``).
    program, observation, visit, visit_group, sequence, activity, exposure : JWST identifiers;
        they make the file name ``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>``.
    background_adu_s : uniform sky background, ADU/s/pixel (MIRAGE's ``bkgdrate``; the named
        levels 'low'/'medium'/'high' call an online service and are refused).
    seed : the one integer all of MIRAGE's random draws derive from (see :func:`derive_seeds`).
    cosmic_rays, cosmic_ray_library, cosmic_ray_scale : add cosmic rays from MIRAGE's library
        (SUNMIN, SUNMAX or FLARES) at ``scale`` times its rate. Off is written as scale 0: the
        library must exist either way.
    ipc, crosstalk, flat_field, psf_wings : switch the effects that need those references.
    primary_dither_*, subpixel_dither_*, x_offset_arcsec, y_offset_arcsec : dither metadata
        written to the file (the pointing itself is ``ra_deg, dec_deg``).
    """

    detector: str
    filter_name: str
    ngroups: int
    ra_deg: float
    dec_deg: float
    pa_v3_deg: float
    seed: int
    subarray: str = "FULL"
    pupil: str = "CLEAR"
    readpatt: str = "BRIGHT2"
    nints: int = 1
    date_obs: str = "2023-01-01"
    time_obs: str = "00:00:00.000"
    program: int = 1
    observation: int = 1
    visit: int = 1
    visit_group: int = 1
    sequence: int = 1
    activity: int = 1
    exposure: int = 1
    background_adu_s: float = 0.0
    cosmic_rays: bool = True
    cosmic_ray_library: str = "SUNMIN"
    cosmic_ray_scale: float = 1.0
    ipc: bool = True
    crosstalk: bool = False
    flat_field: bool = True
    psf_wings: bool = True
    primary_dither_type: str = "NONE"
    primary_dither_total: int = 1
    primary_dither_position: int = 1
    subpixel_dither_type: str = "NONE"
    subpixel_dither_total: int = 1
    subpixel_dither_position: int = 1
    x_offset_arcsec: float = 0.0
    y_offset_arcsec: float = 0.0
    target_name: str = "SIMVAL"
    title: str = "simval validation simulation"
    pi_name: str = "simval"
    observation_label: str = "simval"

    def __post_init__(self) -> None:
        det = get_detector(self.detector)
        object.__setattr__(self, "detector", det.name)
        object.__setattr__(self, "filter_name", check_filter(det, self.filter_name))
        for name in ("subarray", "pupil", "readpatt", "cosmic_ray_library"):
            object.__setattr__(self, name, str(getattr(self, name)).strip().upper())
        self._check_readout()
        self._check_identifiers()
        self._check_numbers()
        self._check_text()

    def _check_readout(self) -> None:
        subarrays = nircam.subarray_amplifiers()
        if self.array_name not in subarrays:
            have = sorted(a.split("_", 1)[1] for a in subarrays
                          if a.startswith(self.siaf_detector + "_"))
            raise ValueError(f"MIRAGE has no aperture {self.array_name}; {self.detector} "
                             f"subarrays: {', '.join(have)}")
        patterns = nircam.read_patterns()
        if self.readpatt not in patterns:
            raise ValueError(f"unknown readout pattern {self.readpatt!r}; "
                             f"MIRAGE knows {', '.join(patterns)}")
        maxgroups = patterns[self.readpatt].maxgroups
        if not 1 <= int(self.ngroups) <= maxgroups:
            raise ValueError(f"ngroups={self.ngroups} outside 1..{maxgroups} for {self.readpatt}")
        if int(self.nints) < 1:
            raise ValueError(f"nints must be >= 1, got {self.nints}")
        if self.cosmic_ray_library not in ("SUNMIN", "SUNMAX", "FLARES"):
            raise ValueError(f"cosmic_ray_library must be SUNMIN, SUNMAX or FLARES, "
                             f"got {self.cosmic_ray_library!r}")

    def _check_identifiers(self) -> None:
        limits = {"program": 99999, "observation": 999, "visit": 999, "visit_group": 99,
                  "sequence": 9, "activity": 36**2 - 1, "exposure": 99999}
        for name, hi in limits.items():
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= hi):
                raise ValueError(f"{name} must be an integer in 1..{hi}, got {value!r}")
        try:
            Time(f"{self.date_obs}T{self.time_obs}", format="isot", scale="utc")
        except ValueError as exc:
            raise ValueError(f"date_obs/time_obs {self.date_obs!r} {self.time_obs!r} are not "
                             "YYYY-MM-DD / HH:MM:SS[.sss]") from exc
        if not re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d+)?", self.time_obs):
            raise ValueError(f"time_obs must be HH:MM:SS[.sss], got {self.time_obs!r}")

    def _check_numbers(self) -> None:
        finite = ("ra_deg", "dec_deg", "pa_v3_deg", "background_adu_s", "cosmic_ray_scale",
                  "x_offset_arcsec", "y_offset_arcsec")
        for name in finite:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if abs(self.dec_deg) > 90:
            raise ValueError(f"dec_deg must be within [-90, 90], got {self.dec_deg}")
        if self.background_adu_s < 0 or self.cosmic_ray_scale < 0:
            raise ValueError("background_adu_s and cosmic_ray_scale must be >= 0")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def _check_text(self) -> None:
        # MIRAGE rewrites its yaml in place when title/PI_Name/observation_label lines hold a
        # second ':' (Catalog_seed.readParameterFile); keep free text plain.
        for name in ("target_name", "title", "pi_name", "observation_label",
                     "primary_dither_type", "subpixel_dither_type"):
            if not _FREE_TEXT.fullmatch(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r}: use letters, digits, spaces "
                                 "and _.,()+-/ only (MIRAGE mangles ':' and '#')")

    # Names ---------------------------------------------------------------------------
    @property
    def detector_info(self) -> Detector:
        return get_detector(self.detector)

    @property
    def siaf_detector(self) -> str:
        """SIAF/MIRAGE detector name, e.g. ``NRCB5`` for ``NRCBLONG``."""
        return self.detector_info.siaf_name

    @property
    def array_name(self) -> str:
        """MIRAGE ``Readout: array_name`` = SIAF aperture, e.g. ``NRCB1_SUB400P``."""
        return f"{self.siaf_detector}_{self.subarray}"

    @property
    def visit_id(self) -> str:
        return f"{self.program:05d}{self.observation:03d}{self.visit:03d}"

    @property
    def activity_id(self) -> str:
        """Two base-36 digits, as in JWST file names."""
        return base36(self.activity, 2)

    @property
    def base_name(self) -> str:
        """``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>``, detector in lower case."""
        return exposure_base_name(self.program, self.observation, self.visit, self.visit_group,
                                  self.sequence, self.activity, self.exposure, self.detector)

    @property
    def uncal_name(self) -> str:
        return f"{self.base_name}_uncal.fits"

    @property
    def obs_id(self) -> str:
        """DMS OBS_ID, e.g. ``V01234001001P0000000001101``."""
        return (f"V{self.visit_id}P00000000{self.visit_group:02d}{self.sequence:d}"
                f"{self.activity_id}")

    @property
    def start_isot(self) -> str:
        """Exposure start as ``YYYY-MM-DDTHH:MM:SS.sss`` (UTC)."""
        return Time(f"{self.date_obs}T{self.time_obs}", format="isot", scale="utc").isot

    @property
    def seeds(self) -> dict[str, int]:
        return derive_seeds(self.seed, self.base_name)


PathLike = str | os.PathLike

_REF_ALIASES = {
    # MIRAGE yaml names -> MirageReferences field names
    "linearized_darkfile": "linearized_dark", "pixelAreaMap": "pixel_area_map",
    "psfpath": "psf_library", "psf_library_dir": "psf_library", "psf_wings_dir": "psf_wings",
    "cosmic_ray_dir": "cosmic_ray_library", "cosmicRay": "cosmic_ray_library",
    "invertIPC": "invert_ipc", "distortion": "astrometric", "mask": "badpixmask",
    "area": "pixel_area_map", "flat": "pixelflat", "MIRAGE_DATA": "mirage_data",
}


def absolute_path(value: PathLike | None) -> Path | None:
    """``value`` as an absolute path (``~`` expanded), or None."""
    return None if value is None else Path(value).expanduser().absolute()


@dataclass(frozen=True)
class MirageReferences:
    """Files MIRAGE reads for one detector/filter/subarray (see :data:`REFFILES_KEYS`).

    ``None`` means "skip that effect" where MIRAGE allows it. The config-table fields
    (``subarray_defs`` ... ``psf_wing_threshold``) default to the files shipped with MIRAGE.
    ``psf_wings`` must be ``<psf_library>/psf_wings``: MIRAGE hard-codes that location.
    ``crds_env`` is exported for the MIRAGE run (MIRAGE makes no CRDS call when every key is
    a path, but its jwst imports read the CRDS configuration).
    """

    mirage_data: Path
    linearized_dark: Path
    superbias: Path
    linearity: Path
    saturation: Path
    astrometric: Path
    psf_library: Path
    gain: Path | None = None
    pixelflat: Path | None = None
    illumflat: Path | None = None
    ipc: Path | None = None
    invert_ipc: bool = True
    pixel_area_map: Path | None = None
    photom: Path | None = None
    badpixmask: Path | None = None
    psf_wings: Path | None = None
    psf_wfe: str = "predicted"
    psf_wfe_group: int = 0
    cosmic_ray_library: Path | None = None
    cosmic_ray_suffix: str | None = None
    crds_env: Mapping[str, str] = field(default_factory=dict)
    subarray_defs: Path | None = None
    readpattdefs: Path | None = None
    crosstalk: Path | None = None
    filtpupilcombo: Path | None = None
    filter_wheel_positions: Path | None = None
    flux_cal: Path | None = None
    filter_throughput: Path | None = None
    psf_wing_threshold: Path | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("invert_ipc", "psf_wfe", "psf_wfe_group", "cosmic_ray_suffix"):
                continue
            if f.name == "crds_env":
                object.__setattr__(self, f.name, {str(k): str(v) for k, v in value.items()})
            elif value is not None:
                object.__setattr__(self, f.name, absolute_path(value))
        if self.psf_wfe not in ("predicted", "requirements"):
            raise ValueError(f"psf_wfe must be 'predicted' or 'requirements', got {self.psf_wfe!r}")
        if self.psf_wings is not None and self.psf_wings != self.psf_library / "psf_wings":
            raise ValueError(f"MIRAGE reads PSF wings only from <psf_library>/psf_wings "
                             f"({self.psf_library / 'psf_wings'}), not {self.psf_wings}")

    @classmethod
    def from_mapping(cls, paths: Mapping[str, Any], **extra: Any) -> MirageReferences:
        """Build from a dict keyed by field names or MIRAGE yaml names (``pixelAreaMap``...).

        ``extra`` adds or overrides entries (e.g. ``mirage_data=kit.mirage_data,
        crds_env=kit.crds_env()``). Unknown keys raise ``ValueError`` listing the known ones.
        """
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        merged = {**dict(paths), **extra}
        raw_dark = merged.pop("dark", None)
        lin_dark = merged.get("linearized_darkfile", merged.get("linearized_dark"))
        if raw_dark is not None and absolute_path(raw_dark) != absolute_path(lin_dark):
            raise ValueError(f"a raw dark ({raw_dark}) needs MIRAGE to run jwst steps through "
                             "CRDS; give a linearized dark (linearized_darkfile) instead")
        for key, value in merged.items():
            name = _REF_ALIASES.get(key, key)
            if name not in known:
                raise ValueError(f"unknown MIRAGE reference {key!r}; known: "
                                 f"{', '.join(sorted(known | set(_REF_ALIASES)))}")
            kwargs[name] = value
        return cls(**kwargs)


def path_or_none(path: Path | None) -> str:
    """A yaml value for an optional path: the absolute path or MIRAGE's ``'None'``."""
    return "None" if path is None else str(path)


def required_reference(path: Path | None, key: str, why: str) -> Path:
    """``path``, or ``ValueError`` saying MIRAGE needs ``Reffiles/<key>`` for ``why``."""
    if path is None:
        raise ValueError(f"MIRAGE needs Reffiles/{key} for {why}, but the references give None")
    return path


def _throughput_file(exposure: MirageExposure) -> Path | None:
    """MIRAGE's shipped throughput curve for the filter/pupil/module, if it has one.

    MIRAGE reads it only for the named background levels, which simval refuses; ``None`` is
    harmless otherwise.
    """
    path = nircam.throughput_file(exposure.filter_name, exposure.pupil,
                                  exposure.detector_info.module)
    return path if path.is_file() else None


def reffiles_section(exposure: MirageExposure, refs: MirageReferences) -> dict[str, Any]:
    """The ``Reffiles`` mapping, one entry per key of :data:`REFFILES_KEYS`."""
    ipc = required_reference(refs.ipc, "ipc", "IPC") if exposure.ipc else None
    cfg = mirage_config_file
    section = {
        "dark": "None",
        "linearized_darkfile": str(refs.linearized_dark),
        "badpixmask": path_or_none(refs.badpixmask),
        "superbias": str(refs.superbias),
        "linearity": str(refs.linearity),
        "saturation": str(refs.saturation),
        "gain": path_or_none(refs.gain),
        "pixelflat": path_or_none(refs.pixelflat if exposure.flat_field else None),
        "illumflat": path_or_none(refs.illumflat if exposure.flat_field else None),
        "astrometric": str(refs.astrometric),
        "photom": path_or_none(refs.photom),
        "ipc": path_or_none(ipc),
        "invertIPC": bool(refs.invert_ipc),
        "occult": "None",
        "pixelAreaMap": path_or_none(refs.pixel_area_map),
        "transmission": "None",
        "subarray_defs": str(refs.subarray_defs or cfg("NIRCam_subarray_definitions.list")),
        "readpattdefs": str(refs.readpattdefs or cfg("nircam_read_pattern_definitions.list")),
        "crosstalk": path_or_none((refs.crosstalk or cfg("xtalk20150303g0.errorcut.txt"))
                                  if exposure.crosstalk else None),
        "filtpupilcombo": str(refs.filtpupilcombo or cfg("nircam_filter_pupil_pairings.list")),
        "filter_wheel_positions": str(refs.filter_wheel_positions
                                      or cfg("nircam_filter_and_pupil_wheel_positions.txt")),
        "flux_cal": str(refs.flux_cal or cfg("NIRCam_zeropoints.list")),
        "filter_throughput": path_or_none(refs.filter_throughput or _throughput_file(exposure)),
    }
    assert list(section) == list(REFFILES_KEYS)
    return section


def cosmic_ray_suffix(exposure: MirageExposure, refs: MirageReferences) -> str:
    """Suffix of the library files ``CRs_MCD1.7_<LIB>_0[0-9]_<suffix>.fits``.

    MIRAGE's default is ``IPC_NIRCam_<module+number>``, e.g. ``IPC_NIRCam_B1`` or
    ``IPC_NIRCam_B5``.
    """
    return refs.cosmic_ray_suffix or f"IPC_NIRCam_{exposure.siaf_detector[3:]}"


def cosmic_ray_files(exposure: MirageExposure, refs: MirageReferences) -> list[Path]:
    """The ten library files MIRAGE opens (on every run, even at scale 0)."""
    lib = required_reference(refs.cosmic_ray_library, "cosmicRay/path", "cosmic rays")
    suffix = cosmic_ray_suffix(exposure, refs)
    return [lib / f"CRs_MCD1.7_{exposure.cosmic_ray_library}_{i:02d}_{suffix}.fits"
            for i in range(10)]


def psf_library_pattern(exposure: MirageExposure, refs: MirageReferences) -> str:
    """Glob pattern MIRAGE tries first for the gridded PSF library file."""
    return (f"nircam_{exposure.siaf_detector.lower()}_{exposure.filter_name.lower()}_"
            f"{exposure.pupil.lower()}_fovp*_samp*_npsf*_{refs.psf_wfe}_"
            f"realization{refs.psf_wfe_group}.fits")


def check_dark(exposure: MirageExposure, refs: MirageReferences) -> None:
    """Raise ``ValueError`` if the linearized dark is too short for the exposure.

    MIRAGE only warns and then *copies* dark frames (``DarkPrep.data_volume_check``) or whole
    integrations (``integration_copy``): the copies repeat the same read noise, so two
    integrations of one exposure would share identical noise. The dark must hold at least
    ``nints`` integrations and, for a RAPID dark, ``ngroups * (nframe + nskip)`` frames
    (otherwise its READPATT must be the exposure's and it needs ``ngroups`` groups). Its
    DETECTOR must be the exposure's DMS name.
    """
    from astropy.io import fits

    pattern = nircam.read_patterns(refs.readpattdefs)[exposure.readpatt]
    nframe, nskip = pattern.nframes, pattern.groupgap
    with fits.open(refs.linearized_dark) as hdul:
        readpatt = str(hdul[0].header.get("READPATT", "")).upper()
        detector = str(hdul[0].header.get("DETECTOR", "")).upper()
        shape = hdul[1].shape
    # obs_generator copies the dark's DETECTOR into the uncal (DETECTOR, and CHANNEL = LONG
    # only if the name contains 'LONG'): it must be the DMS name, NRCBLONG not NRCB5.
    if detector != exposure.detector:
        raise ValueError(f"linearized dark {refs.linearized_dark} has DETECTOR={detector!r}; "
                         f"MIRAGE copies it into the uncal, which needs {exposure.detector!r}")
    if len(shape) != 4:
        raise ValueError(f"linearized dark {refs.linearized_dark}: SCI must be 4-D "
                         f"(nint, ngroup, y, x), got shape {shape}")
    nints, ngroups = shape[0], shape[1]
    need = exposure.ngroups * (nframe + nskip) if readpatt == "RAPID" else exposure.ngroups
    if readpatt not in ("RAPID", exposure.readpatt):
        raise ValueError(f"linearized dark {refs.linearized_dark} is {readpatt}; MIRAGE needs "
                         f"RAPID or {exposure.readpatt}")
    if nints < exposure.nints or ngroups < need:
        raise ValueError(
            f"linearized dark {refs.linearized_dark} holds {nints} integration(s) of {ngroups} "
            f"{'frames' if readpatt == 'RAPID' else 'groups'}; {exposure.base_name} needs "
            f"{exposure.nints} of {need} ({exposure.readpatt} x {exposure.ngroups}). MIRAGE "
            "would repeat dark frames, i.e. identical read noise")


def check_inputs(exposure: MirageExposure, refs: MirageReferences,
                 catalogs: tuple[Path | None, ...] = ()) -> None:
    """Raise ``FileNotFoundError`` naming every input MIRAGE would miss (then
    :func:`check_dark`).

    Done before MIRAGE runs because MIRAGE's own failures are late or silent: a missing dark
    triggers a download attempt, a missing linearity file a silent fallback, a short dark
    repeated frames.
    """
    reff = reffiles_section(exposure, refs)
    problems = []
    for key, value in reff.items():
        if isinstance(value, str) and value != "None" and not Path(value).is_file():
            problems.append(f"Reffiles/{key}: {value}")
    for what, path in (("MIRAGE_DATA", refs.mirage_data), ("simSignals/psfpath", refs.psf_library)):
        if not path.is_dir():
            problems.append(f"{what}: {path} (directory)")
    if refs.psf_library.is_dir() and not list(refs.psf_library.glob(
            psf_library_pattern(exposure, refs))):
        problems.append(f"simSignals/psfpath: no {psf_library_pattern(exposure, refs)} "
                        f"in {refs.psf_library}")
    if exposure.psf_wings:
        wings = required_reference(refs.psf_wings, "psf_wings", "PSF wings")
        if not wings.is_dir():
            problems.append(f"PSF wings directory: {wings}")
    if refs.cosmic_ray_library is None:
        problems.append("cosmicRay/path: None (MIRAGE opens the library even at scale 0)")
    else:
        problems += [f"cosmicRay library file: {p}" for p in cosmic_ray_files(exposure, refs)
                     if not p.is_file()]
    problems += [f"catalog: {p}" for p in catalogs if p is not None and not Path(p).is_file()]
    if problems:
        raise FileNotFoundError("MIRAGE inputs missing:\n  " + "\n  ".join(problems))
    check_dark(exposure, refs)
