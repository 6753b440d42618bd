"""What to read of a catalog file and where to put it: :class:`ReadOptions` and :class:`Field`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simval.catalogs.cosmology import DEFAULT_COSMOLOGY
from simval.catalogs.io import DEFAULT_CHUNK_ROWS
from simval.sky import Footprint

if TYPE_CHECKING:
    from simval.plan import Plan

__all__ = ["Field", "ReadOptions"]


@dataclass(frozen=True)
class ReadOptions:
    """How to read a DREaM-style or JAGUAR file (the scenario's ``catalog`` block).

    column_map : simval name -> file column, overriding the format's defaults (keys: ``id``,
        ``ra``, ``dec``, ``redshift``, ``radius_kpc``, ``radius``, ``axis_ratio``,
        ``sersic_index``, ``pos_angle``, ``type``, ``mag_<band>`` (DREaM), ``flux_<band>``
        (JAGUAR)).
    cosmology : name of an astropy cosmology realisation (``Planck18``, ``WMAP9``...) used to
        turn kpc into arcsec.
    mag_limit : keep only sources brighter than this (AB) in at least one requested band.
    margin_arcsec : growth of the field beyond the exposures' apertures.
    positions : ``offsets`` or ``absolute`` (``None``: the format's default).
    origin : (ra, dec) deg of the file's frame that lands on the pointing (``offsets``).
    chunk_rows : rows per streamed chunk.
    """

    column_map: Mapping[str, str] = field(default_factory=dict)
    cosmology: str = DEFAULT_COSMOLOGY
    mag_limit: float | None = None
    margin_arcsec: float = 2.0
    positions: str | None = None
    origin: tuple[float, float] = (0.0, 0.0)
    chunk_rows: int = DEFAULT_CHUNK_ROWS


@dataclass(frozen=True)
class Field:
    """Where the catalog is put and cut: the pointing (field centre) and, optionally, the
    exact footprint (a :class:`~simval.sky.Footprint`) and a radius (deg) around
    the centre that contains it (the cheap pre-cut)."""

    ra_deg: float
    dec_deg: float
    footprint: Footprint | None = None
    radius_deg: float | None = None

    @classmethod
    def of_plan(cls, plan: Plan, margin_arcsec: float = 2.0) -> Field:
        """The field of ``plan``'s exposures, grown by ``margin_arcsec``."""
        fp = Footprint.of_plan(plan, margin_arcsec)
        x, y = fp.corners_tangent()
        radius = (float(np.max(np.hypot(x, y))) + margin_arcsec + 1.0) / 3600.0
        return cls(plan.ra_deg, plan.dec_deg, fp, radius)
