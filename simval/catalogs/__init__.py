"""Input source catalogs: what a scenario puts on the sky (the input truth of a run).

A :class:`SourceCatalog` is two astropy tables in the column conventions of
:mod:`simval.simulate.mirage_catalogs`, plus one AB magnitude column per passband:

- ``stars``: ``index``, ``ra``, ``dec`` (deg), ``mag_<band>`` (AB, e.g. ``mag_f115w``);
- ``galaxies``: the same plus ``radius`` (arcsec, half-light radius along the major axis),
  ``ellipticity`` (1 - b/a), ``axis_ratio`` (b/a), ``pos_angle`` (deg East of North of the
  major axis), ``sersic_index``.

``index`` is unique across both tables (stars first), so every exposure's MIRAGE catalogs
and truth lists share the numbers. :meth:`SourceCatalog.for_band` gives the tables with the
single ``mag`` column :func:`simval.simulate.mirage_catalogs.write_catalogs` takes.

Sources: :func:`make_catalog` reads the scenario's ``catalog`` block — the ``simple``
generator (:mod:`simval.catalogs.simple`) or a file in the ``generic`` format (any table
astropy reads — ECSV, FITS, ... — with ``ra``, ``dec`` and ``mag`` or ``mag_<band>``
columns, optional galaxy columns, renamed by ``column_map``) or MIRAGE's own ascii format.
DREaM and JAGUAR files are not supported yet (:class:`CatalogError` says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import atomic_path

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Plan
    from simval.scenario import Scenario

STAR_FILE = "stars.ecsv"
GALAXY_FILE = "galaxies.ecsv"
GALAXY_SHAPE_COLUMNS = ("radius", "ellipticity", "pos_angle", "sersic_index")


class CatalogError(ValueError):
    """A catalog cannot be used; the message names the scenario field or column to fix."""


def mag_column(band: str) -> str:
    """Name of a passband's AB magnitude column, e.g. ``F115W -> mag_f115w``."""
    return f"mag_{band.strip().lower()}"


@dataclass
class SourceCatalog:
    """Stars and galaxies with per-band AB magnitudes (see module docstring)."""

    stars: Table
    galaxies: Table
    meta: dict[str, Any] = field(default_factory=dict)

    def for_band(self, band: str) -> tuple[Table, Table]:
        """(stars, galaxies) with a ``mag`` column holding ``band``'s AB magnitude."""
        return _with_mag(self.stars, band), _with_mag(self.galaxies, band)

    def write(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``stars.ecsv`` and ``galaxies.ecsv`` into ``directory`` (atomically)."""
        directory = Path(directory)
        paths = directory / STAR_FILE, directory / GALAXY_FILE
        for table, path, kind in ((self.stars, paths[0], "stars"),
                                  (self.galaxies, paths[1], "galaxies")):
            out = table.copy(copy_data=False)
            out.meta = {**self.meta, "kind": kind}
            with atomic_path(path) as tmp:
                out.write(tmp, format="ascii.ecsv", overwrite=True)
        return paths

    @classmethod
    def read(cls, directory: str | os.PathLike) -> SourceCatalog:
        """Read what :meth:`write` wrote."""
        from astropy.table import Table

        directory = Path(directory)
        stars = Table.read(directory / STAR_FILE, format="ascii.ecsv")
        galaxies = Table.read(directory / GALAXY_FILE, format="ascii.ecsv")
        meta = {k: v for k, v in stars.meta.items() if k != "kind"}
        return cls(stars=stars, galaxies=galaxies, meta=meta)


def _with_mag(table: Table, band: str) -> Table:
    col = mag_column(band)
    if col not in table.colnames:
        raise CatalogError(f"catalog has no magnitude column {col!r} for {band} "
                           f"(columns: {', '.join(table.colnames)})")
    out = table.copy(copy_data=False)
    out["mag"] = np.asarray(table[col], dtype=float)
    return out


def make_catalog(scenario: Scenario, plan: Plan) -> SourceCatalog:
    """The scenario's input catalog for ``plan`` (generated, or read and cut to the
    footprint). Raises :class:`CatalogError` for unsupported or unusable input."""
    bands = [p.filter_name for p in plan.products]
    cat = scenario.catalog
    if cat.generator is not None:
        from simval.catalogs.simple import generate_simple

        gen = cat.generator
        if gen.kind != "simple":
            raise CatalogError(f"catalog.generator.kind: {gen.kind!r} is not supported yet "
                               "(allowed: simple)")
        return generate_simple(plan, n_stars=gen.n_stars, n_galaxies=gen.n_galaxies,
                               mag_range=gen.mag_range,
                               seed=scenario.seed if gen.seed is None else gen.seed,
                               bands=bands)
    path = scenario.resolve_path(cat.file)
    return read_catalog_file(path, cat.format, bands, plan=plan, column_map=cat.column_map,
                             filter_pupils={p.filter_name: (p.filter_wheel, p.pupil)
                                            for p in plan.products})


def read_catalog_file(path: str | os.PathLike, fmt: str, bands: list[str], *,
                      plan: Plan | None = None, column_map: dict[str, str] | None = None,
                      filter_pupils: dict[str, tuple[str, str]] | None = None
                      ) -> SourceCatalog:
    """Read a catalog file into a :class:`SourceCatalog`, cut to ``plan``'s footprint.

    ``fmt``: ``generic`` (astropy-readable table: ``ra``, ``dec`` in deg, and ``mag`` for
    every band or ``mag_<band>`` per band, AB; a row is a galaxy if it has a finite
    ``radius`` > 0 and the galaxy columns exist, with ``axis_ratio`` accepted instead of
    ``ellipticity``; ``column_map`` renames simval name -> file column) or ``mirage`` (one
    MIRAGE ascii catalog in RA/Dec and AB; a galaxy catalog if it has ``radius``).
    """
    path = Path(path)
    if fmt == "generic":
        stars, galaxies = _read_generic(path, bands, column_map or {})
    elif fmt == "mirage":
        stars, galaxies = _read_mirage(path, bands, filter_pupils or {})
    else:
        raise CatalogError(f"catalog.format: {fmt!r} files are not supported by `simval run` "
                           "yet (the catalog readers are issue 5); use format 'generic' (a "
                           "table with ra, dec, mag or mag_<filter> columns) or 'mirage', or "
                           "catalog.generator")
    meta = {"file": str(path), "format": fmt, "rows_in_file": len(stars) + len(galaxies)}
    if plan is not None:
        from simval.catalogs.simple import Footprint

        footprint = Footprint.of_plan(plan)
        stars = stars[footprint.contains(stars["ra"], stars["dec"])] if len(stars) else stars
        galaxies = (galaxies[footprint.contains(galaxies["ra"], galaxies["dec"])]
                    if len(galaxies) else galaxies)
        meta["rows_in_footprint"] = len(stars) + len(galaxies)
    _renumber(stars, galaxies)
    return SourceCatalog(stars=stars, galaxies=galaxies, meta=meta)


def _renumber(stars: Table, galaxies: Table) -> None:
    """Keep a valid ``index`` (unique, >= 1, disjoint ranges), else number 1..N+M."""
    have = "index" in stars.colnames and "index" in galaxies.colnames
    if have and (len(stars) + len(galaxies)):
        s = np.asarray(stars["index"], dtype=np.int64)
        g = np.asarray(galaxies["index"], dtype=np.int64)
        allv = np.concatenate([s, g])
        disjoint = not (len(s) and len(g)) or s.max() < g.min() or g.max() < s.min()
        if allv.min() >= 1 and len(np.unique(allv)) == len(allv) and disjoint:
            stars["index"], galaxies["index"] = s, g
            return
    stars["index"] = np.arange(1, len(stars) + 1, dtype=np.int64)
    galaxies["index"] = np.arange(len(stars) + 1, len(stars) + len(galaxies) + 1,
                                  dtype=np.int64)


def _check_finite(table: Table, columns: list[str], path: Path) -> None:
    for name in columns:
        values = np.asarray(table[name], dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise CatalogError(f"{path}: column {name!r} row {int(np.flatnonzero(bad)[0])} is "
                               "not a finite number")


def _read_generic(path: Path, bands: list[str], column_map: dict[str, str]):
    from astropy.table import Table

    try:
        raw = Table.read(path)
    except Exception as exc:
        raise CatalogError(f"catalog.file: cannot read {path} as a table ({exc})") from exc
    rename = {v: k for k, v in column_map.items()}
    missing_map = [v for v in column_map.values() if v not in raw.colnames]
    if missing_map:
        raise CatalogError(f"catalog.column_map names columns not in {path}: "
                           f"{', '.join(missing_map)} (has {', '.join(raw.colnames)})")
    table = Table({rename.get(c, c): raw[c] for c in raw.colnames})
    need = ["ra", "dec"]
    mags = {}
    for band in bands:
        col = mag_column(band) if mag_column(band) in table.colnames else "mag"
        if col not in table.colnames:
            raise CatalogError(f"{path}: no magnitude for {band}: expected a column "
                               f"{mag_column(band)!r} or 'mag' (AB); found "
                               f"{', '.join(table.colnames)}")
        mags[band] = col
    for col in need:
        if col not in table.colnames:
            raise CatalogError(f"{path}: missing column {col!r} (deg); found "
                               f"{', '.join(table.colnames)} (map names with "
                               "catalog.column_map)")
    _check_finite(table, need + sorted(set(mags.values())), path)
    if "ellipticity" not in table.colnames and "axis_ratio" in table.colnames:
        table["ellipticity"] = 1.0 - np.asarray(table["axis_ratio"], dtype=float)
    has_shapes = all(c in table.colnames for c in GALAXY_SHAPE_COLUMNS)
    radius = np.asarray(table["radius"], dtype=float) if has_shapes else None
    is_gal = (np.isfinite(radius) & (radius > 0)) if radius is not None else np.zeros(
        len(table), bool)
    out = []
    for sel, shape_cols in ((~is_gal, ()), (is_gal, GALAXY_SHAPE_COLUMNS)):
        part = table[sel]
        t = Table()
        if "index" in part.colnames:
            t["index"] = np.asarray(part["index"], dtype=np.int64)
        t["ra"] = np.asarray(part["ra"], dtype=float) % 360.0
        t["dec"] = np.asarray(part["dec"], dtype=float)
        for band, col in mags.items():
            t[mag_column(band)] = np.asarray(part[col], dtype=float)
        for col in shape_cols:
            t[col] = np.asarray(part[col], dtype=float)
        if shape_cols:
            t["axis_ratio"] = 1.0 - t["ellipticity"]
        out.append(t)
    return out[0], out[1]


def _read_mirage(path: Path, bands: list[str], filter_pupils: dict[str, tuple[str, str]]):
    from astropy.io import ascii
    from astropy.table import Table

    from simval.simulate.mirage_catalogs import magnitude_column

    try:
        raw = ascii.read(path)
    except Exception as exc:
        raise CatalogError(f"catalog.file: cannot read {path} as a MIRAGE catalog "
                           f"({exc})") from exc
    comments = [c.strip() for c in raw.meta.get("comments", [])][:4]
    if "position_pixels" in comments or any(c in ("stmag", "vegamag") for c in comments):
        raise CatalogError(f"{path}: simval needs RA/Dec positions and AB magnitudes "
                           f"(header says {comments})")
    mag_cols = [c for c in raw.colnames if c.endswith("magnitude")]
    t = Table()
    if "index" in raw.colnames:
        t["index"] = np.asarray(raw["index"], dtype=np.int64)
    t["ra"] = np.asarray(raw["x_or_RA"], dtype=float) % 360.0
    t["dec"] = np.asarray(raw["y_or_Dec"], dtype=float)
    for band in bands:
        fw, pw = filter_pupils.get(band, (band, "CLEAR"))
        want = magnitude_column(fw, pw)
        col = want if want in mag_cols else (mag_cols[0] if len(mag_cols) == 1 else None)
        if col is None:
            raise CatalogError(f"{path}: no magnitude column for {band} (expected {want!r}; "
                               f"found {', '.join(mag_cols) or 'none'})")
        t[mag_column(band)] = np.asarray(raw[col], dtype=float)
    if "radius" in raw.colnames:
        if "radius_pixels" in comments:
            raise CatalogError(f"{path}: galaxy radii are in pixels; simval needs arcsec")
        for col in GALAXY_SHAPE_COLUMNS:
            t[col] = np.asarray(raw[col], dtype=float)
        t["axis_ratio"] = 1.0 - t["ellipticity"]
        empty = Table({"index": np.zeros(0, np.int64), "ra": np.zeros(0), "dec": np.zeros(0),
                       **{mag_column(b): np.zeros(0) for b in bands}})
        return empty, t
    empty = Table({"index": np.zeros(0, np.int64), "ra": np.zeros(0), "dec": np.zeros(0),
                   **{mag_column(b): np.zeros(0) for b in bands},
                   **{c: np.zeros(0) for c in (*GALAXY_SHAPE_COLUMNS, "axis_ratio")}})
    return t, empty


__all__ = ["CatalogError", "SourceCatalog", "mag_column", "make_catalog", "read_catalog_file"]
