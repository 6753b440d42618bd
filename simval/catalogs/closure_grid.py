"""A grid of bright isolated stars added to any catalog, for closure at full frame.

Survey-like fields (DREaM, JAGUAR) hold few bright isolated stars, so the photometric and
astrometric closure of the calibration cannot be measured on them. With
``catalog: {closure_grid: {spacing_arcsec: 12, mag: 20}}`` a scenario adds a square grid of
point sources over the plan's footprint: same AB magnitude in every band (flat f_nu), on
the tangent plane of the field centre, rows along +Dec. Catalog sources within
``clear_radius_arcsec`` of a grid star are removed, so every grid star is isolated at the
radius the evaluation's ``bright_star`` flag asks for; the number removed is recorded in the
catalog's ``meta``. Grid stars get indices after the catalog's own (stars first, then
galaxies renumbered after them, as MIRAGE requires disjoint ranges).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from simval.catalogs.model import SourceCatalog, mag_column
from simval.sky import Footprint, from_tangent, to_tangent

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Plan

#: Grid stars are kept this far inside the footprint's apertures (arcsec): a star on an
#: aperture edge is only partly on the detector.
EDGE_ARCSEC = 2.0


def grid_positions(footprint: Footprint, spacing_arcsec: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in deg of a square grid of ``spacing_arcsec`` over ``footprint``, kept
    :data:`EDGE_ARCSEC` inside its apertures."""
    if spacing_arcsec <= 0:
        raise ValueError(f"closure_grid.spacing_arcsec must be > 0, got {spacing_arcsec}")
    x0, x1, y0, y1 = footprint.bounding_box()
    xs = np.arange(np.ceil(x0 / spacing_arcsec), np.floor(x1 / spacing_arcsec) + 1)
    ys = np.arange(np.ceil(y0 / spacing_arcsec), np.floor(y1 / spacing_arcsec) + 1)
    gx, gy = np.meshgrid(xs * spacing_arcsec, ys * spacing_arcsec)
    ra, dec = from_tangent(gx.ravel(), gy.ravel(), footprint.ra0_deg, footprint.dec0_deg)
    inner = replace(footprint, margin_arcsec=-EDGE_ARCSEC)
    keep = inner.contains(ra, dec)
    return np.asarray(ra)[keep], np.asarray(dec)[keep]


def _near(table: Table, gx: np.ndarray, gy: np.ndarray, ra0: float, dec0: float,
          radius_arcsec: float) -> np.ndarray:
    """Rows of ``table`` within ``radius_arcsec`` of any grid point (tangent plane)."""
    from scipy.spatial import cKDTree

    if not len(table) or not len(gx):
        return np.zeros(len(table), dtype=bool)
    x, y = to_tangent(np.asarray(table["ra"], float), np.asarray(table["dec"], float), ra0, dec0)
    dist, _ = cKDTree(np.column_stack([gx, gy])).query(np.column_stack([x, y]))
    return dist < radius_arcsec


def add_closure_grid(catalog: SourceCatalog, plan: Plan, *, spacing_arcsec: float,
                     mag: float, clear_radius_arcsec: float, bands: list[str]
                     ) -> SourceCatalog:
    """``catalog`` with a grid of stars of AB ``mag`` in every band added (module docstring)."""
    from astropy.table import Table, vstack

    footprint = Footprint.of_plan(plan, 0.0)
    ra, dec = grid_positions(footprint, spacing_arcsec)
    gx, gy = to_tangent(ra, dec, footprint.ra0_deg, footprint.dec0_deg)
    args = (np.atleast_1d(gx), np.atleast_1d(gy), footprint.ra0_deg, footprint.dec0_deg,
            clear_radius_arcsec)
    drop_s = _near(catalog.stars, *args)
    drop_g = _near(catalog.galaxies, *args)
    stars, galaxies = catalog.stars[~drop_s], catalog.galaxies[~drop_g]
    grid = Table()
    start = int(np.max(stars["index"])) + 1 if len(stars) else 1
    grid["index"] = np.arange(start, start + len(ra), dtype=np.int64)
    grid["ra"], grid["dec"] = ra, dec
    grid["ra"].unit = grid["dec"].unit = "deg"
    for band in bands:
        grid[mag_column(band)] = np.full(len(ra), float(mag))
    grid["closure_grid"] = np.ones(len(ra), dtype=bool)
    if len(stars):
        stars = stars.copy()
        stars["closure_grid"] = np.zeros(len(stars), dtype=bool)
        stars = vstack([stars, grid], join_type="outer", metadata_conflicts="silent")
    else:
        stars = grid
    galaxies = galaxies.copy()
    if len(galaxies):
        if "source_id" not in galaxies.colnames:
            galaxies["source_id"] = galaxies["index"]
        galaxies["index"] = np.arange(len(galaxies), dtype=np.int64) + int(
            np.max(stars["index"])) + 1
    meta = {**catalog.meta, "closure_grid": {
        "n_stars": len(ra), "spacing_arcsec": float(spacing_arcsec), "mag_ab": float(mag),
        "clear_radius_arcsec": float(clear_radius_arcsec),
        "removed_stars": int(drop_s.sum()), "removed_galaxies": int(drop_g.sum())}}
    return SourceCatalog(stars=stars, galaxies=galaxies, meta=meta)
