"""What to observe: pointing, filters, readout, dither and mosaic sub-models of a scenario.

Units: degrees for sky angles, arcsec for offsets (ideal frame of the pointing aperture).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

import simval.scenario.dithers as dithers
from simval.instruments import miri, nircam
from simval.instruments.nircam import LW_FILTERS, SW_FILTERS
from simval.offline import import_pysiaf, nircam_siaf
from simval.scenario.base import CFG, StrictModel, instrument_of, or_shorthand
from simval.scenario.errors import MISSING, FieldError


class Pointing(StrictModel):
    """Where the telescope points: the field centre and the V3 position angle."""

    ra: float = Field(ge=0.0, lt=360.0, description="RA of the field centre, deg (ICRS)")
    dec: float = Field(ge=-90.0, le=90.0, description="Dec of the field centre, deg (ICRS)")
    pa_v3: float = Field(
        0.0, ge=0.0, lt=360.0,
        description="position angle of the telescope V3 axis at V1 (the PA_V3 keyword), "
                    "deg East of North")
    aperture: str | None = Field(
        None,
        description="SIAF aperture whose reference point is placed on (ra, dec) at zero "
                    "offset, e.g. NRCB1_SUB400P or NRCBS_FULL; default: the first "
                    "detector's aperture <detector>_<subarray>")

    @field_validator("aperture", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("aperture")
    @classmethod
    def _known(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if instrument_of(info) == "MIRI":
            imaging = [f"MIRIM_{name}" for name in miri.SUBARRAYS]
            if v not in import_pysiaf().Siaf("MIRI").apertures or not v.startswith("MIRIM_"):
                raise FieldError("not a MIRI imager SIAF aperture (pysiaf)",
                                 allowed=", ".join(imaging) + " (or another MIRIM_ aperture)")
            return v
        siaf = nircam_siaf()
        if v not in siaf.apertures:
            near = sorted(a for a in siaf.apertures if a.split("_")[0] == v.split("_")[0])
            raise FieldError("not a NIRCam SIAF aperture (pysiaf)",
                             allowed=", ".join(near[:40]) or "NIRCam SIAF aperture names")
        return v


class FilterSpec(StrictModel):
    """A passband: filter name and, optionally, the pupil-wheel element."""

    model_config = ConfigDict(**CFG, json_schema_extra=or_shorthand(
        {"type": "string", "description": "passband name, pupil CLEAR"}))

    name: str = Field(description="NIRCam passband, e.g. F115W, F150W, F162M, F444W")
    pupil: str | None = Field(
        None, validate_default=True,
        description="pupil-wheel element; default CLEAR (or the narrow-band filter for "
                    "F162M/F164N/F323N/F405N/F466N/F470N, which sit in the pupil wheel)")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("name")
    @classmethod
    def _known(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip().upper()
        if instrument_of(info) == "MIRI":
            if v not in miri.FILTERS:
                raise FieldError("not a MIRI imaging filter", allowed=", ".join(miri.FILTERS))
            return v
        if v not in SW_FILTERS and v not in LW_FILTERS:
            raise FieldError("not a NIRCam imaging filter",
                             allowed="short-wave: " + ", ".join(SW_FILTERS)
                             + "; long-wave: " + ", ".join(LW_FILTERS))
        return v

    @field_validator("pupil")
    @classmethod
    def _pupil(cls, v: str | None, info: ValidationInfo) -> str | None:
        name = info.data.get("name")
        if name is None:
            return v
        if name in miri.FILTERS:  # the MIRI imager has no pupil wheel
            if v is not None and v.strip().upper() != "CLEAR":
                raise FieldError("the MIRI imager has no pupil wheel", allowed="CLEAR")
            return "CLEAR"
        allowed = nircam.allowed_pupils(name)
        if v is None:
            return nircam.wheel_elements(name)[1]
        v = v.strip().upper()
        if v not in allowed:
            raise FieldError(f"pupil element not available with {name} (MIRAGE "
                             "nircam_filter_pupil_pairings.list)", allowed=", ".join(allowed))
        return v

    @property
    def filter_wheel(self) -> str:
        """Filter-wheel element (``meta.instrument.filter``): ``F150W2`` for ``F162M``."""
        if self.name in miri.FILTERS:
            return self.name
        return nircam.wheel_elements(self.name, self.pupil)[0]

    @property
    def pupil_wheel(self) -> str:
        """Pupil-wheel element (``meta.instrument.pupil``; ``CLEAR`` for MIRI)."""
        if self.name in miri.FILTERS:
            return "CLEAR"
        return nircam.wheel_elements(self.name, self.pupil)[1]


class ChannelFilters(StrictModel):
    """Filters per channel, observed in simultaneous pairs: ``short[i]`` with ``long[i]``."""

    short: list[FilterSpec] = Field(default_factory=list,
                                    description="short-wave filters (NRCA1-4, NRCB1-4)")
    long: list[FilterSpec] = Field(default_factory=list,
                                   description="long-wave filters (NRCALONG, NRCBLONG)")


def _filters_kind(v: Any) -> str:
    return "channels" if isinstance(v, dict | ChannelFilters) else "list"


FiltersField = Annotated[
    Annotated[list[FilterSpec], Tag("list")] | Annotated[ChannelFilters, Tag("channels")],
    Discriminator(_filters_kind),
]


class ReadoutLength(StrictModel):
    """Groups and integrations of one filter's exposures (MIRI ``readout.by_filter``)."""

    ngroups: int = Field(ge=1, description="groups per integration")
    nints: int = Field(1, ge=1, description="integrations per exposure")


class Readout(StrictModel):
    """Detector readout (MULTIACCUM)."""

    pattern: str = Field(description="readout pattern: NIRCam's from MIRAGE's "
                                     "nircam_read_pattern_definitions.list (RAPID, BRIGHT1, "
                                     "BRIGHT2, SHALLOW2, SHALLOW4, MEDIUM2, MEDIUM8, DEEP2, "
                                     "DEEP8); MIRI's FASTR1 or SLOWR1 (FULL only)")
    ngroups: int = Field(ge=1, description="groups per integration, 1..maxgroups of the pattern")
    nints: int = Field(1, ge=1, description="integrations per exposure")
    by_filter: dict[str, ReadoutLength] = Field(
        default_factory=dict,
        description="MIRI: filter -> {ngroups, nints} for filters read longer or shorter "
                    "than the rest (the pattern is shared), as programs set NGROUPS and NINTS "
                    "per filter; NIRCam's paired channels read together, so NIRCam has one "
                    "readout")

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, str):
            return v
        v = v.strip().upper()
        if instrument_of(info) == "MIRI":
            if v not in miri.READ_PATTERNS:
                raise FieldError("unknown MIRI readout pattern",
                                 allowed=", ".join(miri.READ_PATTERNS))
            return v
        patterns = nircam.read_patterns()
        if v not in patterns:
            raise FieldError("unknown NIRCam readout pattern", allowed=", ".join(patterns))
        return v

    @field_validator("ngroups")
    @classmethod
    def _ngroups(cls, v: int, info: ValidationInfo) -> int:
        pattern = info.data.get("pattern")
        if pattern is None:
            return v
        if pattern in miri.READ_PATTERNS:
            if v < miri.MIN_GROUPS:
                raise FieldError("too few groups for a MIRI ramp (the RSCD and lastframe "
                                 "steps flag the first 4 groups of later integrations and "
                                 "the last group)", allowed=f">= {miri.MIN_GROUPS}")
            return v
        top = nircam.read_patterns()[pattern].maxgroups
        if v > top:
            raise FieldError(f"too many groups for readout pattern {pattern}",
                             allowed=f"1..{top} (maxgroups of {pattern} in MIRAGE's "
                                     "nircam_read_pattern_definitions.list)")
        return v

    def for_filter(self, band: str) -> Readout:
        """The readout of ``band``'s exposures (``by_filter`` applied)."""
        length = self.by_filter.get(band)
        if length is None:
            return self
        return self.model_copy(update={"ngroups": length.ngroups, "nints": length.nints,
                                       "by_filter": {}})

    @property
    def read_pattern(self) -> nircam.ReadPattern:
        return nircam.read_patterns()[self.pattern]


class Dither(StrictModel):
    """Dither: a named NIRCam pattern (plus subpixel pattern) or explicit offsets.

    Offsets are arcsec in the ideal (science) frame of the pointing aperture; at offset
    (dx, dy) the aperture reference point lies where ideal (dx, dy) lay at zero offset.
    """

    pattern: str = Field("NONE", description="primary pattern: " + dithers.describe_primary())
    points: int | None = Field(None, ge=1, description="number of primary positions")
    subpixel: str = Field("NONE", description="subpixel pattern: NONE or STANDARD")
    subpixel_points: int | None = Field(None, ge=1,
                                        description="subpixel positions: STANDARD 2, 4 or 9")
    offsets: list[list[float]] | None = Field(
        None, description="explicit offsets [[dx, dy], ...] in arcsec (ideal frame); "
                          "excludes pattern/subpixel")

    @field_validator("pattern", "subpixel", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("pattern")
    @classmethod
    def _primary(cls, v: str, info: ValidationInfo) -> str:
        if instrument_of(info) == "MIRI" and v != "NONE":
            raise FieldError("MIRI's named dither patterns (" + ", ".join(miri.DITHER_PATTERNS)
                             + ") are not built in: their offsets are not in the offline "
                             "data", allowed="NONE, or explicit offsets [[dx, dy], ...] arcsec")
        if v not in dithers.PRIMARY:
            raise FieldError("unknown or unimplemented primary dither pattern (use explicit "
                             "offsets for others)", allowed=", ".join(dithers.PRIMARY))
        return v

    @field_validator("subpixel")
    @classmethod
    def _sub(cls, v: str, info: ValidationInfo) -> str:
        if instrument_of(info) == "MIRI" and v != "NONE":
            raise FieldError("MIRI has no subpixel dither pattern here",
                             allowed="NONE, or explicit offsets")
        if v not in dithers.SUBPIXEL:
            raise FieldError("unknown or unimplemented subpixel dither pattern",
                             allowed=", ".join(dithers.SUBPIXEL))
        return v

    @field_validator("offsets")
    @classmethod
    def _offsets(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is None:
            return v
        if not v:
            raise FieldError("needs at least one offset", allowed="[[dx, dy], ...] arcsec")
        for i, pair in enumerate(v):
            if len(pair) != 2:
                raise FieldError("an offset is a pair [dx, dy]", subpath=(i,),
                                 allowed="[dx, dy] in arcsec")
            if max(abs(pair[0]), abs(pair[1])) > 600.0:
                raise FieldError("offset larger than 600 arcsec (a mosaic is for that)",
                                 subpath=(i,), allowed="|dx|, |dy| <= 600 arcsec")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Dither:
        if self.offsets is not None:
            clash = [k for k in ("pattern", "points", "subpixel", "subpixel_points")
                     if k in self.model_fields_set]
            if clash:
                raise FieldError("explicit offsets exclude a named pattern",
                                 subpath=(clash[0],), allowed="either offsets or "
                                 "pattern/points/subpixel/subpixel_points")
            return self
        allowed = dithers.primary_points(self.pattern)
        points = self.points if self.points is not None else (
            allowed[0] if len(allowed) == 1 else None)
        if points not in allowed:
            raise FieldError(f"number of {self.pattern} positions",
                             value=MISSING if self.points is None else self.points,
                             subpath=("points",),
                             allowed=", ".join(map(str, allowed)))
        sub_allowed = dithers.subpixel_points(self.subpixel)
        sub = self.subpixel_points if self.subpixel_points is not None else (
            sub_allowed[0] if len(sub_allowed) == 1 else None)
        if sub not in sub_allowed:
            raise FieldError(f"number of {self.subpixel} subpixel positions",
                             value=MISSING if self.subpixel_points is None
                             else self.subpixel_points, subpath=("subpixel_points",),
                             allowed=", ".join(map(str, sub_allowed)))
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "subpixel_points", sub)
        return self

    def positions(self) -> list[dithers.DitherPosition]:
        """Every dither position in observing order, offsets in arcsec (ideal frame)."""
        if self.offsets is not None:
            return [dithers.DitherPosition(i + 1, 1, float(x), float(y))
                    for i, (x, y) in enumerate(self.offsets)]
        return dithers.expand(self.pattern, self.points, self.subpixel, self.subpixel_points)


class Mosaic(StrictModel):
    """A rows x cols grid of tiles (one visit each) centred on the field centre."""

    rows: int = Field(1, ge=1, le=50, description="tiles along the ideal y axis")
    cols: int = Field(1, ge=1, le=50, description="tiles along the ideal x axis")
    overlap: float = Field(0.1, ge=0.0, lt=1.0,
                           description="fractional overlap of adjacent tiles (0 <= f < 1)")
