"""How to simulate and judge: effects, catalog, simulator, CRDS and comparison sub-models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_serializer, model_validator

from simval.catalogs.bands import BANDS
from simval.digest import sha256_file
from simval.instruments.nircam import DETECTORS, FULL_SIZE
from simval.kit.changes import Changes, read_gain_map
from simval.kit.spec import DEFAULT_SEED
from simval.scenario.base import StrictModel, base_dir, or_shorthand, resolve, two_numbers
from simval.scenario.errors import FieldError
from simval.simulate.miri_extended import read_emission_image

CONTEXT_PATTERN = r"^jwst_\d{4}\.pmap$"


class CosmicRays(StrictModel):
    """Cosmic rays from MIRAGE's library (the kit must provide it)."""

    library: Literal["SUNMIN", "SUNMAX", "FLARES"] = Field(
        "SUNMIN", description="MIRAGE cosmic-ray library")
    scale: float = Field(1.0, ge=0.0, description="multiplier of the library's rate; 0 = none")


class Effects(StrictModel):
    """Detector effects MIRAGE adds (and the pipeline must remove)."""

    poisson: bool = Field(True, description="photon (Poisson) noise on sources and sky")
    cosmic_rays: CosmicRays = Field(default_factory=CosmicRays,
                                    description="true/false or {library, scale}",
                                    json_schema_extra=or_shorthand({"type": "boolean"}))
    ipc: bool = Field(True, description="interpixel capacitance (the kit's IPC kernel)")
    one_over_f: bool = Field(True, description="1/f read noise and per-frame output offsets "
                                               "in the dark ramps (flight-like); false: white "
                                               "read noise only (a perfect instrument)")
    crosstalk: bool = Field(True, description="amplifier crosstalk (MIRAGE's coefficient "
                                              "table; no effect on one-amplifier subarrays)")

    @field_validator("cosmic_rays", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if v is True:
            return {}
        if v is False:
            return {"scale": 0.0}
        return v



#: Generator fields of kind ``dream_like`` (absent from the normalised scenario when unset,
#: so that adding them left the hash of every existing scenario unchanged).
_DREAM_LIKE_KEYS = ("mag_limit", "mag_bright", "ref_band", "density_scale", "star_mag_range",
                    "star_density_arcmin2", "star_isolation_arcsec", "cosmology")
_COSMOLOGIES = Literal["Planck18", "Planck15", "Planck13", "WMAP9", "WMAP7", "WMAP5", "WMAP3",
                       "WMAP1"]


def _drop_none(data: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(data, dict):
        for key in keys:
            if data.get(key) is None:
                data.pop(key, None)
    return data


class Generator(StrictModel):
    """A synthetic field made by simval's own catalog generators (seeded).

    ``simple``: uniform positions and magnitudes (n_stars, n_galaxies, mag_range).
    ``dream_like``: galaxies from published number counts, redshift, size, shape and colour
    relations (simval.catalogs.dream_like; docs/catalogs.md), plus stars.
    """

    kind: Literal["simple", "dream_like"] = Field(
        "simple", description="generator: simple (uniform positions, uniform magnitudes) or "
                              "dream_like (realistic counts, redshifts, sizes, colours)")
    n_stars: int = Field(30, ge=0, description="point sources (dream_like: if omitted, from "
                                               "its high-latitude star-count model)")
    n_galaxies: int = Field(30, ge=0, description="Sersic galaxies (simple only)")
    mag_range: list[float] = Field(default_factory=lambda: [18.0, 26.0],
                                   description="[bright, faint] AB magnitudes (simple only)")
    seed: int | None = Field(None, ge=0, description="default: the scenario seed")
    mag_limit: float | None = Field(None, gt=0.0, lt=40.0,
                                    description="dream_like: faint limit of the galaxies, AB "
                                                "in ref_band (default 28)")
    mag_bright: float | None = Field(None, gt=0.0, lt=40.0,
                                     description="dream_like: bright limit, AB (default 16)")
    ref_band: str | None = Field(None, description="dream_like: band of the number counts and "
                                                   "star magnitudes (default F150W)")
    density_scale: float | None = Field(None, ge=0.0,
                                        description="dream_like: multiplies the galaxy counts "
                                                    "(default 1)")
    star_mag_range: list[float] | None = Field(
        None, description="dream_like: [bright, faint] AB of the stars (default [18, 25])")
    star_density_arcmin2: float | None = Field(
        None, ge=0.0, description="dream_like: stars per arcmin^2 when n_stars is omitted "
                                  "(default 1)")
    star_isolation_arcsec: float | None = Field(
        None, ge=0.0, le=10.0, description="dream_like: keep stars this far from galaxy centres "
                                           "and other stars, arcsec (default 0)")
    cosmology: _COSMOLOGIES | None = Field(None, description="dream_like: astropy cosmology "
                                                             "(default Planck18)")

    @field_validator("mag_range", "star_mag_range")
    @classmethod
    def _range(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) != 2 or not v[0] < v[1]):
            raise FieldError("must be [bright, faint] with bright < faint",
                             allowed="[m_min, m_max] AB mag, m_min < m_max")
        return v

    @field_validator("ref_band")
    @classmethod
    def _band(cls, v: str | None) -> str | None:
        if v is None:
            return v

        name = v.strip().upper()
        if name not in BANDS or name == "F814W":
            raise FieldError("unknown band", allowed=", ".join(b for b in BANDS
                                                               if b != "F814W"))
        return name

    @model_validator(mode="after")
    def _kind_fields(self) -> Generator:
        given = self.model_fields_set
        if self.kind == "simple":
            extra = [k for k in _DREAM_LIKE_KEYS if getattr(self, k) is not None]
            if extra:
                raise FieldError("only meaningful with kind: dream_like", subpath=(extra[0],),
                                 allowed="omit it, or set kind: dream_like")
        else:
            extra = [k for k in ("n_galaxies", "mag_range") if k in given]
            if extra:
                raise FieldError("only meaningful with kind: simple (dream_like draws the "
                                 "galaxies from number counts)", subpath=(extra[0],),
                                 allowed="mag_limit, mag_bright, density_scale")
            lo = 16.0 if self.mag_bright is None else self.mag_bright
            hi = 28.0 if self.mag_limit is None else self.mag_limit
            if not lo < hi:
                raise FieldError("mag_bright must be brighter (smaller) than mag_limit",
                                 subpath=("mag_limit",), allowed=f"> {lo}")
        return self

    @model_serializer(mode="wrap")
    def _serialise(self, handler):
        return _drop_none(handler(self), _DREAM_LIKE_KEYS)

    def spec(self, scenario_seed: int) -> dict[str, Any]:
        """JSON-serialisable parameters with the seed and the dream_like defaults resolved."""
        seed = scenario_seed if self.seed is None else self.seed
        if self.kind == "simple":
            return {"kind": "simple", "n_stars": self.n_stars, "n_galaxies": self.n_galaxies,
                    "mag_range": list(self.mag_range), "seed": seed}
        params: dict[str, Any] = {
            "n_stars": self.n_stars if "n_stars" in self.model_fields_set else None}
        for key in _DREAM_LIKE_KEYS:
            value = getattr(self, key)
            if value is not None:
                params[key] = list(value) if isinstance(value, list) else value
        return {"kind": "dream_like", "seed": seed, "params": params}


_CATALOG_FILE_KEYS = ("quiescent_file", "cosmology", "mag_limit", "margin_arcsec", "positions",
                      "origin")


class ClosureGrid(StrictModel):
    """Bright isolated stars added to the catalog (:mod:`simval.catalogs.closure_grid`)."""

    spacing_arcsec: float = Field(12.0, gt=0.5, le=600.0,
                                  description="grid step on the sky, arcsec")
    mag: float = Field(20.0, gt=10.0, lt=35.0,
                       description="AB magnitude of every grid star in every band")
    clear_radius_arcsec: float = Field(2.0, ge=0.0, le=60.0,
                                       description="catalog sources this close to a grid "
                                                   "star are removed (isolation), arcsec")


class ExtendedEmission(StrictModel):
    """A user's extended-emission image added to the MIRI scene
    (:mod:`simval.simulate.miri_extended`)."""

    file: str = Field(description="FITS image, relative to the scenario file: 2-D (SCI "
                                   "extension or primary HDU), a celestial WCS, BUNIT MJy/sr")
    scale: dict[str, float] = Field(
        default_factory=lambda: {"all": 1.0},
        description="factor on the image per filter ('all' for the rest; default 1): one "
                    "image at several wavelengths",
        json_schema_extra=or_shorthand({"type": "number", "minimum": 0}))

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v: Any) -> Any:
        return {"all": v} if isinstance(v, int | float) else v

    @field_validator("scale")
    @classmethod
    def _scale_values(cls, v: dict[str, float]) -> dict[str, float]:
        for key, value in v.items():
            if not value >= 0.0:
                raise FieldError("must be a number >= 0", subpath=(key,), value=value)
        return {k.upper() if k != "all" else k: float(x) for k, x in v.items()}

    @model_validator(mode="after")
    def _readable(self, info: ValidationInfo) -> ExtendedEmission:
        path = resolve(self.file, base_dir(info))
        if not path.is_file():
            raise FieldError(f"extended-emission image not found: {path}", subpath=("file",),
                             allowed="an existing FITS file (relative paths start at the "
                                     "scenario file's directory)")
        try:
            read_emission_image(str(path))
        except ValueError as exc:
            raise FieldError(str(exc), subpath=("file",),
                             allowed="a 2-D image, celestial WCS, BUNIT 'MJy/sr'") from None
        return self

    def scale_for(self, band: str) -> float:
        """The factor on the image in ``band``."""
        return self.scale.get(band, self.scale.get("all", 1.0))


class Catalog(StrictModel):
    """Input sources: a catalog file or a generator block (exactly one), optionally with a
    closure grid of bright isolated stars."""

    file: str | None = Field(None, description="catalog path, relative to the scenario file "
                                               "(JAGUAR: the star-forming file)")
    format: Literal["dream", "jaguar", "mirage", "generic"] | None = Field(
        None, description="catalog format of `file`")
    column_map: dict[str, str] = Field(default_factory=dict,
                                       description="simval column -> column name in `file`")
    generator: Generator | None = Field(None, description="synthetic field parameters")
    closure_grid: ClosureGrid | None = Field(None, description="add a grid of bright isolated "
                                                               "stars (photometric and "
                                                               "astrometric closure)")
    quiescent_file: str | None = Field(None, description="jaguar: the quiescent-galaxy file "
                                                         "(relative to the scenario file)")
    cosmology: _COSMOLOGIES | None = Field(None, description="dream: astropy cosmology turning "
                                                             "kpc into arcsec (default "
                                                             "Planck18)")
    mag_limit: float | None = Field(None, gt=0.0, lt=45.0,
                                    description="dream, jaguar: keep sources brighter than "
                                                "this (AB) in at least one simulated band")
    margin_arcsec: float | None = Field(None, ge=0.0, le=600.0,
                                        description="growth of the field beyond the "
                                                    "apertures when cutting the file, arcsec "
                                                    "(default 2)")
    positions: Literal["offsets", "absolute"] | None = Field(
        None, description="dream, jaguar: RA/Dec are offsets about `origin` moved onto the "
                          "pointing, or absolute (default: dream offsets, jaguar absolute)")
    origin: list[float] | None = Field(None, description="with positions: offsets, the file's "
                                                         "[ra, dec] (deg) that lands on the "
                                                         "pointing (default [0, 0])")

    @field_validator("origin")
    @classmethod
    def _origin(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) != 2 or not -90.0 <= v[1] <= 90.0
                              or not -360.0 < v[0] < 360.0):
            raise FieldError("must be [ra, dec] in deg", allowed="[ra, dec], |dec| <= 90")
        return v

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> Catalog:
        if (self.file is None) == (self.generator is None):
            raise FieldError("give exactly one of `file` or `generator`",
                             allowed="{file, format, column_map} or {generator: {...}}")
        if self.file is not None:
            if self.format is None:
                raise FieldError("a catalog file needs its format", subpath=("format",),
                                 allowed="dream, jaguar, mirage, generic")
            path = resolve(self.file, base_dir(info))
            if not path.is_file():
                raise FieldError(f"catalog file not found: {path}", subpath=("file",),
                                 allowed="an existing file (relative paths start at the "
                                         "scenario file's directory)")
            self._check_format_fields(info)
        else:
            given = [k for k in ("format", "column_map", *_CATALOG_FILE_KEYS)
                     if getattr(self, k) not in (None, {})]
            if given:
                raise FieldError("only meaningful with `file`", subpath=(given[0],),
                                 allowed="omit it with `generator`")
        return self

    def _check_format_fields(self, info: ValidationInfo) -> None:
        only = {"quiescent_file": ("jaguar",), "cosmology": ("dream",),
                "mag_limit": ("dream", "jaguar"), "positions": ("dream", "jaguar"),
                "origin": ("dream", "jaguar")}
        for key, formats in only.items():
            if getattr(self, key) is not None and self.format not in formats:
                raise FieldError(f"not used by format {self.format!r}", subpath=(key,),
                                 allowed=f"only with format {' or '.join(formats)}")
        if self.origin is not None and (self.positions or
                                        ("offsets" if self.format == "dream" else "absolute")
                                        ) != "offsets":
            raise FieldError("origin goes with positions: offsets", subpath=("origin",),
                             allowed="set positions: offsets, or omit origin")
        if self.quiescent_file is not None:
            qpath = resolve(self.quiescent_file, base_dir(info))
            if not qpath.is_file():
                raise FieldError(f"catalog file not found: {qpath}",
                                 subpath=("quiescent_file",),
                                 allowed="an existing file (relative paths start at the "
                                         "scenario file's directory)")

    @model_serializer(mode="wrap")
    def _serialise(self, handler):
        return _drop_none(handler(self), (*_CATALOG_FILE_KEYS, "closure_grid"))


class Simulator(StrictModel):
    """Which simulator makes the raw ramps."""

    backend: Literal["mirage", "simval-miri", "simval-coron"] = Field(
        "mirage", description="simulator backend: mirage (NIRCam imaging), simval-miri (the "
                              "MIRI imager; the default for instrument MIRI) or simval-coron "
                              "(NIRCam coronagraphy; the default with a coronagraphy block)")


class KitDerive(StrictModel):
    """Calibrate with a context derived from the kit's base: the simulator still sees the
    base instrument, so the change is the only difference (a controlled error). Each key is
    a field of :class:`simval.kit.changes.Changes`."""

    flat_scale: float = Field(1.0, gt=0.0, description="multiply the FLAT data; calibrated "
                                                        "fluxes are divided by it")
    photom_scale: float = Field(1.0, gt=0.0, description="multiply PHOTMJSR; calibrated "
                                                         "fluxes are multiplied by it")
    distortion_shift_mas: list[float] = Field(
        default_factory=lambda: [0.0, 0.0],
        description="[dV2, dV3] added to the distortion's output, milliarcsec")
    dark_scale: float = Field(1.0, gt=0.0, description="multiply the DARK data")
    gain_uniform: bool = Field(False, description="replace each GAIN map by its mean: the "
                                                   "single value MIRAGE simulates with")
    gain_map: dict[str, str] = Field(
        default_factory=dict,
        description="{DETECTOR: FITS file}: calibrate with your own gain map (e-/DN, full "
                    "frame, SCI or primary HDU); relative paths start at the scenario file")
    gain_scale: float = Field(1.0, gt=0.0, description="multiply the GAIN (e-/DN)")
    readnoise_scale: float = Field(1.0, gt=0.0, description="multiply the READNOISE")
    superbias_offset_dn: float = Field(0.0, description="add to the SUPERBIAS data, DN")
    linearity_scale: float = Field(1.0, gt=0.0, description="multiply the LINEARITY "
                                                            "coefficients of order >= 2")
    mask_hot_unflagged: bool = Field(False, description="clear HOT and DO_NOT_USE of the "
                                                        "hot pixels in the MASK")
    ipc_scale: float = Field(1.0, ge=0.0, description="multiply the IPC kernel's off-centre "
                                                      "terms (the centre keeps the sum)")
    area_scale: float = Field(1.0, gt=0.0, description="multiply the pixel AREA map")
    apcorr_scale: float = Field(1.0, gt=0.0, description="multiply the APCORR table's "
                                                         "aperture corrections")

    @field_validator("distortion_shift_mas")
    @classmethod
    def _pair(cls, v: list[float]) -> list[float]:
        return two_numbers(v, "dV2, dV3", "milliarcsec")

    @field_validator("gain_map")
    @classmethod
    def _gain_maps(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        out = {}
        for detector, file in v.items():
            name = str(detector).upper()
            if name not in DETECTORS:
                raise FieldError(f"unknown detector {detector!r}", subpath=(detector,),
                                 allowed=", ".join(DETECTORS))
            path = resolve(file, base_dir(info))
            if not path.is_file():
                raise FieldError(f"gain map not found: {path}", subpath=(detector,),
                                 allowed="an existing FITS file (relative paths start at "
                                         "the scenario file's directory)")
            _check_gain_map(path, (detector,), FULL_SIZE)
            out[name] = str(path)
        return out

    @model_validator(mode="after")
    def _something(self) -> KitDerive:
        if not self.changes().active():
            raise FieldError("changes nothing", allowed="at least one key away from its "
                                                        "neutral value (flat_scale != 1, ...)")
        return self

    def changes(self) -> Changes:
        """The :class:`simval.kit.changes.Changes` these keys ask for."""
        values = self.model_dump()
        values["distortion_shift_mas"] = tuple(values["distortion_shift_mas"])
        values["gain_map"] = tuple((d, p, sha256_file(Path(p))) for d, p in self.gain_map.items())
        return Changes(**values)

    @model_serializer(mode="wrap")
    def _serialise(self, handler):
        # unset gain keys are left out, so that scenarios written before they existed keep
        # their hash
        data = handler(self)
        if isinstance(data, dict):
            for key, neutral in (("gain_uniform", False), ("gain_map", {})):
                if data.get(key) == neutral:
                    data.pop(key, None)
        return data


def _check_gain_map(path: Path, subpath: tuple[str, ...], size: int) -> None:
    """A gain map FITS file must hold a finite, positive full-frame 2-D array (e-/DN)."""
    import numpy as np

    try:
        data = read_gain_map(path)
    except (OSError, ValueError) as err:
        raise FieldError(f"cannot read a gain map from {path}: {err}", subpath=subpath,
                         allowed="a FITS file with a 2-D SCI or primary array, e-/DN") from err
    if data.shape != (size, size):
        raise FieldError(f"{path}: gain map is {data.shape[1]} x {data.shape[0]} pixels",
                         subpath=subpath, allowed=f"full frame, {size} x {size}")
    inner = data[4:-4, 4:-4]
    bad = int((~np.isfinite(inner) | (inner <= 0)).sum())
    if bad:
        raise FieldError(f"{path}: {bad} science pixels are not finite positive gains",
                         subpath=subpath, allowed="gain > 0 e-/DN on every science pixel")


class KitCrds(StrictModel):
    """Use simval's synthetic CRDS cache (built offline from a seed)."""

    seed: int = Field(DEFAULT_SEED, ge=0, description="kit seed (same seed, same files)")
    context: str | None = Field(None, pattern=CONTEXT_PATTERN,
                                description="kit context jwst_NNNN.pmap; default: newest base")
    derive: KitDerive | None = Field(None, description="calibrate with a context derived "
                                                       "from `context` (see `simval kit "
                                                       "derive`)")


class Crds(StrictModel):
    """Reference files: the synthetic kit (default) or a real CRDS cache."""

    kit: KitCrds | None = Field(None, description="synthetic kit {seed, context}")
    path: str | None = Field(None, description="a real CRDS_PATH (directory)")
    context: str | None = Field(None, pattern=CONTEXT_PATTERN,
                                description="CRDS context for `path`, jwst_NNNN.pmap")
    contexts: list[str] = Field(
        default_factory=list,
        description="several contexts (jwst_NNNN.pmap, of `path` or of the kit) to calibrate "
                    "the same simulation with: `simval sweep` runs one variant per context")

    @field_validator("contexts")
    @classmethod
    def _context_names(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not re.match(CONTEXT_PATTERN, str(c))]
        if bad:
            raise FieldError("not a context name", value=bad[0], allowed="jwst_NNNN.pmap")
        return v

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> Crds:
        if self.contexts and (self.context is not None or
                              (self.kit is not None and self.kit.context is not None)):
            raise FieldError("give `contexts` (a sweep) or one `context`, not both",
                             subpath=("contexts",), allowed="contexts: [jwst_NNNN.pmap, ...]")
        if self.path is None:
            if self.context is not None:
                raise FieldError("`context` at this level goes with `path`; a kit context "
                                 "goes under `kit`", subpath=("context",),
                                 allowed="{kit: {seed, context}} or {path, context}")
            if self.kit is None:
                object.__setattr__(self, "kit", KitCrds())
            return self
        if self.kit is not None:
            raise FieldError("give either `kit` or `path`", subpath=("kit",),
                             allowed="{kit: {seed, context}} or {path, context}")
        if self.context is None:
            raise FieldError("a real CRDS cache needs an explicit context",
                             subpath=("context",), allowed="jwst_NNNN.pmap")
        path = resolve(self.path, base_dir(info))
        if not path.is_dir():
            raise FieldError(f"CRDS_PATH directory not found: {path}", subpath=("path",),
                             allowed="an existing directory")
        return self


class Bounds(StrictModel):
    """Acceptance bounds of one metric: value >= min, value <= max, |value| <= abs_max."""

    min: float | None = None
    max: float | None = None
    abs_max: float | None = Field(None, ge=0.0)

    @model_validator(mode="after")
    def _some(self) -> Bounds:
        if self.min is None and self.max is None and self.abs_max is None:
            raise FieldError("no bound given", allowed="at least one of min, max, abs_max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise FieldError("min is larger than max", subpath=("min",),
                             allowed=f"min <= max ({self.max})")
        return self


_BOUND_KEYS = {"min", "max", "abs_max"}


def _bounds_shorthand(schema: dict[str, Any]) -> None:
    """JSON schema of thresholds: a metric maps to bounds, or to filter -> bounds."""
    per_filter = schema["additionalProperties"]
    schema["additionalProperties"] = {"anyOf": [dict(per_filter["additionalProperties"]),
                                                per_filter]}
_METRIC = re.compile(r"^[a-z][a-z0-9_]*$")


class BrightStars(StrictModel):
    """The bright isolated star sample (photometric and astrometric closure)."""

    snr_min: float = Field(100.0, gt=0.0, description="expected S/N at least this")
    min_exposures: int | None = Field(
        None, ge=1, description="covered by at least this many exposures; default: the "
                                "most any star in the footprint has (full coverage)")


class Comparison(StrictModel):
    """How measurements are matched to truth and judged."""

    match_radius_mas: float = Field(100.0, gt=0.0,
                                    description="truth-measurement match radius, milliarcsec")
    bright_stars: BrightStars = Field(default_factory=BrightStars,
                                      description="the bright isolated star sample")
    thresholds: dict[str, dict[str, Bounds]] = Field(
        default_factory=dict,
        description="metric -> {filter or 'all' -> {min, max, abs_max}}; a metric may map "
                    "directly to bounds, meaning all filters",
        json_schema_extra=lambda schema, *a: _bounds_shorthand(schema))

    @field_validator("thresholds", mode="before")
    @classmethod
    def _all_filters(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = {}
        for metric, spec in v.items():
            if isinstance(spec, dict) and spec and set(spec) <= _BOUND_KEYS:
                spec = {"all": spec}
            elif isinstance(spec, dict):
                spec = {(k.strip().upper() if isinstance(k, str) and k.lower() != "all"
                         else k): b for k, b in spec.items()}
            out[metric] = spec
        return out

    @field_validator("thresholds")
    @classmethod
    def _names(cls, v: dict[str, dict[str, Bounds]]) -> dict[str, dict[str, Bounds]]:
        for metric in v:
            if not _METRIC.match(metric):
                raise FieldError("metric names are lower-case identifiers", value=metric,
                                 subpath=(metric,), allowed="[a-z][a-z0-9_]*")
        return v
