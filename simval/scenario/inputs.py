"""How to simulate and judge: effects, catalog, simulator, CRDS and comparison sub-models."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simval.kit.spec import DEFAULT_SEED
from simval.scenario.base import StrictModel, base_dir, or_shorthand, resolve
from simval.scenario.errors import FieldError

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



class Generator(StrictModel):
    """A synthetic field made by simval's own catalog generator (seeded)."""

    kind: Literal["simple"] = Field("simple", description="generator: simple (uniform "
                                                          "positions, uniform magnitudes)")
    n_stars: int = Field(30, ge=0, description="point sources")
    n_galaxies: int = Field(30, ge=0, description="Sersic galaxies")
    mag_range: list[float] = Field(default_factory=lambda: [18.0, 26.0],
                                   description="[bright, faint] AB magnitudes")
    seed: int | None = Field(None, ge=0, description="default: the scenario seed")

    @field_validator("mag_range")
    @classmethod
    def _range(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not v[0] < v[1]:
            raise FieldError("must be [bright, faint] with bright < faint",
                             allowed="[m_min, m_max] AB mag, m_min < m_max")
        return v


class Catalog(StrictModel):
    """Input sources: a catalog file or a generator block (exactly one)."""

    file: str | None = Field(None, description="catalog path, relative to the scenario file")
    format: Literal["dream", "jaguar", "mirage", "generic"] | None = Field(
        None, description="catalog format of `file`")
    column_map: dict[str, str] = Field(default_factory=dict,
                                       description="simval column -> column name in `file`")
    generator: Generator | None = Field(None, description="synthetic field parameters")

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
        elif self.format is not None or self.column_map:
            key = "format" if self.format is not None else "column_map"
            raise FieldError("only meaningful with `file`", subpath=(key,),
                             allowed="omit it with `generator`")
        return self


class Simulator(StrictModel):
    """Which simulator makes the raw ramps."""

    backend: Literal["mirage"] = Field("mirage", description="simulator backend")


class KitCrds(StrictModel):
    """Use simval's synthetic CRDS cache (built offline from a seed)."""

    seed: int = Field(DEFAULT_SEED, ge=0, description="kit seed (same seed, same files)")
    context: str | None = Field(None, pattern=CONTEXT_PATTERN,
                                description="kit context jwst_NNNN.pmap; default: newest base")


class Crds(StrictModel):
    """Reference files: the synthetic kit (default) or a real CRDS cache."""

    kit: KitCrds | None = Field(None, description="synthetic kit {seed, context}")
    path: str | None = Field(None, description="a real CRDS_PATH (directory)")
    context: str | None = Field(None, pattern=CONTEXT_PATTERN,
                                description="CRDS context for `path`, jwst_NNNN.pmap")

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> Crds:
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


class Comparison(StrictModel):
    """How measurements are matched to truth and judged."""

    match_radius_mas: float = Field(100.0, gt=0.0,
                                    description="truth-measurement match radius, milliarcsec")
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
