"""The ``coronagraphy`` block of a scenario: a NIRCam coronagraphic observation.

A target star (at ``pointing.ra``/``dec``) behind a round band-limited mask, observed at
one or more telescope rolls, with companions given on the sky; a PSF reference star
observed on a small-grid dither, with its own (slightly drifted) wavefront. simval
simulates it with its own optics (poppy) and calibrates it with calwebb_image2 and
calwebb_coron3. Units: arcsec, deg, AB mag; contrast is a flux ratio in the filter.

Small-grid dithers (:data:`SMALL_GRIDS`, arcsec in the aperture's ideal frame): the DMS
names of NIRCam's coronagraphic patterns (SMGRDPAT) with 15 mas (box) and 20 mas (diamond,
circle) steps; explicit offsets are accepted instead.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator, model_validator

from simval.instruments.nircam_coron import MASKS, get_mask
from simval.scenario.base import StrictModel
from simval.scenario.errors import FieldError

__all__ = [
    "SMALL_GRIDS",
    "Companion",
    "CoronOpticsSpec",
    "Coronagraphy",
    "Reference",
    "small_grid",
]

_S = 0.015  # the box's corners, arcsec per axis (21 mas from the centre)
_C = 0.020 / math.sqrt(2.0)  # the circle's diagonal points, 20 mas from the centre

#: Small-grid dither patterns: name -> offsets (arcsec, ideal frame), first at the centre.
SMALL_GRIDS: dict[str, tuple[tuple[float, float], ...]] = {
    "NONE": ((0.0, 0.0),),
    "5-POINT-BOX": ((0.0, 0.0), (_S, _S), (-_S, _S), (-_S, -_S), (_S, -_S)),
    "5-POINT-DIAMOND": ((0.0, 0.0), (0.0, 0.02), (0.02, 0.0), (0.0, -0.02), (-0.02, 0.0)),
    "9-POINT-CIRCLE": ((0.0, 0.0), (0.0, 0.02), (_C, _C), (0.02, 0.0), (_C, -_C),
                       (0.0, -0.02), (-_C, -_C), (-0.02, 0.0), (-_C, _C)),
}


def small_grid(pattern: str) -> list[tuple[float, float]]:
    """The offsets of a small-grid pattern (:data:`SMALL_GRIDS`), arcsec."""
    return [(round(x, 9), round(y, 9)) for x, y in SMALL_GRIDS[pattern]]


class Companion(StrictModel):
    """A companion of the target, on the sky."""

    separation_arcsec: float = Field(gt=0.0, le=8.0, description="separation from the "
                                     "star, arcsec (the subarray reaches ~10\")")
    pa_deg: float = Field(ge=0.0, lt=360.0, description="position angle, deg East of North")
    contrast: float = Field(gt=0.0, lt=1.0, description="flux ratio to the star in the "
                                                        "filter")


class Reference(StrictModel):
    """The PSF reference star and how it is observed."""

    abmag: float | None = Field(None, ge=0.0, le=20.0, description="AB magnitude in the "
                                "filter; default: the target's")
    offset_arcsec: list[float] = Field(
        default_factory=lambda: [600.0, 300.0],
        description="[East, North] position on the sky from the target, arcsec")
    roll_deg: float | None = Field(None, ge=-180.0, le=180.0, description="its PA_V3 "
                                   "minus pointing.pa_v3, deg; default: the rolls' mean")
    dither: str | list[list[float]] = Field(
        "5-POINT-BOX",
        description="small-grid pattern (NONE, 5-POINT-BOX, 5-POINT-DIAMOND, "
                    "9-POINT-CIRCLE) or explicit [[dx, dy], ...] offsets, arcsec (ideal frame)")
    wavefront_drift: float = Field(0.05, ge=0.0, le=1.0, description="fractional change "
                                   "of the wavefront error between the target and the "
                                   "reference (0.05 = 5 % more)")

    @field_validator("offset_arcsec")
    @classmethod
    def _two(cls, v: list[float]) -> list[float]:
        if len(v) != 2:
            raise FieldError("must be [East, North]", allowed="two numbers, arcsec")
        return v

    @field_validator("dither", mode="before")
    @classmethod
    def _dither(cls, v: Any) -> Any:
        if isinstance(v, str):
            name = v.strip().upper()
            if name not in SMALL_GRIDS:
                raise FieldError("unknown small-grid dither",
                                 allowed=", ".join(SMALL_GRIDS) + " or [[dx, dy], ...]")
            return name
        if isinstance(v, list):
            for i, xy in enumerate(v):
                if not (isinstance(xy, list) and len(xy) == 2
                        and all(isinstance(a, int | float) and abs(a) <= 0.5 for a in xy)):
                    raise FieldError("an offset is [dx, dy] in arcsec, |d| <= 0.5",
                                     value=xy, subpath=(i,), allowed="[dx, dy]")
            if not v:
                raise FieldError("at least one position", allowed="[[0, 0]] or a pattern")
            return [[float(a) for a in xy] for xy in v]
        return v

    def offsets(self) -> list[tuple[float, float]]:
        """The reference's dither offsets, arcsec (ideal frame)."""
        if isinstance(self.dither, str):
            return small_grid(self.dither)
        return [(float(x), float(y)) for x, y in self.dither]

    def pattern_name(self) -> str:
        """DMS SMGRDPAT-like name: the pattern's, or ``EXPLICIT``."""
        return self.dither if isinstance(self.dither, str) else "EXPLICIT"


class CoronOpticsSpec(StrictModel):
    """The offline optics the occulted PSFs are computed with (poppy)."""

    wavelengths: int = Field(4, ge=1, le=15, description="monochromatic PSFs across the "
                                                         "filter's band (equal weights)")
    wfe_seed: int = Field(3, ge=0, description="seed of the static wavefront error")
    wfe_scale: float = Field(1.0, ge=0.0, le=5.0, description="scale of the kit's ~50 nm "
                                                             "RMS wavefront error")


class Coronagraphy(StrictModel):
    """A coronagraphic observation (module docstring). Example::

        coronagraphy:
          mask: MASKA335R
          star_abmag: 8.0
          rolls_deg: [0, 10]              # PA_V3 offsets from pointing.pa_v3
          companions: [{separation_arcsec: 1.0, pa_deg: 60, contrast: 1.0e-4}]
          reference: {dither: 5-POINT-BOX, wavefront_drift: 0.05}
    """

    mask: str = Field(description="coronagraphic mask (DMS CORONMSK): " + ", ".join(MASKS))
    star_abmag: float = Field(ge=0.0, le=20.0, description="the target's AB magnitude in "
                                                           "the filter")
    rolls_deg: list[float] = Field(
        default_factory=lambda: [0.0, 10.0], min_length=1, max_length=4,
        description="telescope rolls: PA_V3 minus pointing.pa_v3, deg (one science "
                    "exposure each)")
    companions: list[Companion] = Field(default_factory=list,
                                        description="companions of the target")
    reference: Reference = Field(default_factory=Reference)
    optics: CoronOpticsSpec = Field(default_factory=CoronOpticsSpec)

    @field_validator("mask", mode="before")
    @classmethod
    def _mask(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return get_mask(v).name
            except ValueError:
                raise FieldError("not a coronagraphic mask simval simulates",
                                 allowed=", ".join(MASKS)) from None
        return v

    @field_validator("rolls_deg")
    @classmethod
    def _rolls(cls, v: list[float]) -> list[float]:
        for i, r in enumerate(v):
            if not -180.0 <= r <= 180.0:
                raise FieldError("a roll is an offset of PA_V3 in deg", value=r,
                                 subpath=(i,), allowed="-180..180")
        if len(set(v)) != len(v):
            raise FieldError("rolls listed twice", allowed="distinct rolls")
        return v

    @model_validator(mode="after")
    def _companions_on_the_subarray(self) -> Coronagraphy:
        mask = get_mask(self.mask)
        half = mask.size * 0.063 / 2.0
        for i, c in enumerate(self.companions):
            if c.separation_arcsec > half - 0.3:
                raise FieldError("the companion falls off the subarray at some roll",
                                 value=c.separation_arcsec, absolute=True,
                                 subpath=("coronagraphy", "companions", i,
                                          "separation_arcsec"),
                                 allowed=f"<= {half - 0.3:.1f} arcsec for {mask.subarray}")
        return self

    def reference_roll_deg(self) -> float:
        """The reference's PA_V3 offset, deg (default: the mean of the rolls)."""
        if self.reference.roll_deg is not None:
            return float(self.reference.roll_deg)
        return float(sum(self.rolls_deg) / len(self.rolls_deg))

    def reference_abmag(self) -> float:
        return self.star_abmag if self.reference.abmag is None else float(self.reference.abmag)


def coron_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A coronagraphy scenario's detectors, subarray and filters default to the mask's."""
    block = data.get("coronagraphy")
    if not isinstance(block, dict) or not isinstance(block.get("mask"), str):
        return data
    try:
        mask = get_mask(block["mask"])
    except ValueError:
        return data
    out = dict(data)
    out.setdefault("detectors", [mask.detector])
    out.setdefault("subarray", mask.subarray)
    out.setdefault("filters", list(mask.filters[:1]))
    return out
