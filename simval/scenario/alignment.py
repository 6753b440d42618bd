"""The ``alignment:`` block: errors in the recorded pointing, and tweakreg's absolute
reference catalog made from the truth.

A JWST exposure's WCS comes from the attitude the guide star's catalog position gives; its
error (tens of mas) is what tweakreg corrects. simval reproduces it where the pipeline meets
it: the simulated pixels are the true sky, and the pointing recorded in each exposure
(``meta.wcsinfo.ra_ref / dec_ref``, read by assign_wcs) is offset before image2 by a seeded
error drawn per exposure (or per visit), shared by the detectors that observed together. The
simulation is the same for every error size, so a sweep compares the calibration alone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from simval.scenario.base import StrictModel, two_numbers

__all__ = ["Alignment", "RefcatFromTruth"]


class RefcatFromTruth(StrictModel):
    """A Gaia-like star list drawn from the run's input catalog, given to tweakreg as
    ``abs_refcat`` (an ECSV with RA, DEC in deg)."""

    max_mag: float = Field(22.0, description="stars brighter than this AB magnitude in the "
                                             "mosaic's band")
    min_mag: float = Field(14.0, description="and fainter than this (saturated stars out)")
    noise_mas: float = Field(0.0, ge=0.0, description="Gaussian position error per axis, mas "
                                                      "(seeded)")
    bias_mas: list[float] = Field(
        default_factory=lambda: [0.0, 0.0],
        description="[RA cos Dec, Dec] offset added to every position, mas: a biased "
                    "reference catalog")

    @field_validator("bias_mas")
    @classmethod
    def _pair(cls, v: list[float]) -> list[float]:
        return two_numbers(v, "dRA cos Dec, dDec", "mas")


class Alignment(StrictModel):
    """Pointing errors and tweakreg's absolute reference (calibration-side: sweepable)."""

    pointing_error_mas: float = Field(
        0.0, ge=0.0, le=10000.0,
        description="sigma per axis (RA cos Dec, Dec) of the error in each exposure's "
                    "recorded pointing, mas; 0 = the recorded pointing is the true one")
    pointing_error_per: Literal["exposure", "visit"] = Field(
        "exposure", description="one error per exposure (all its detectors) or per visit")
    abs_refcat: RefcatFromTruth | None = Field(
        None, description="tweakreg's abs_refcat made from the truth's stars; null = "
                          "the pipeline's own abs_refcat parameter")
