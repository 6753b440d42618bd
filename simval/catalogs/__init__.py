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

Galaxies may also carry ``redshift`` and ``source_id`` (the input file's own id); a
magnitude of NaN means the source is absent from that band (:meth:`SourceCatalog.for_band`
leaves it out, and says how many).

Sources: :func:`make_catalog` reads the scenario's ``catalog`` block — the ``simple``
generator (:mod:`simval.catalogs.simple`), the ``dream_like`` generator
(:mod:`simval.catalogs.dream_like`), or a file: ``dream`` (DREaM-style, Drakos et al. 2022)
and ``jaguar`` (Williams et al. 2018; star-forming and quiescent files) through
:mod:`simval.catalogs.readers`, ``generic`` (any table astropy reads — ECSV, FITS, Parquet —
with ``ra``, ``dec`` and ``mag`` or ``mag_<band>`` columns, optional galaxy columns, renamed
by ``column_map``) or MIRAGE's own ascii format. ``docs/catalogs.md`` describes the formats.

:func:`catalog_spec` / :func:`catalog_from_spec` split :func:`make_catalog` into a
JSON-serialisable description (what a run's catalog stage records) and its execution.
The data model lives in :mod:`simval.catalogs.model`, sky geometry in :mod:`simval.sky`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.catalogs.closure_grid import add_closure_grid
from simval.catalogs.dream_like import DreamLikeParams, generate_for_plan
from simval.catalogs.model import GALAXY_FILE, STAR_FILE, CatalogError, SourceCatalog, mag_column
from simval.catalogs.readers import Field, ReadOptions, checked_magnitudes, read_dream, read_jaguar
from simval.catalogs.simple import generate_simple
from simval.simulate.mirage_catalogs import magnitude_column
from simval.sky import DEFAULT_MARGIN_ARCSEC, Footprint

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Plan
    from simval.scenario import Scenario

log = logging.getLogger("simval.catalogs")

GALAXY_SHAPE_COLUMNS = ("radius", "ellipticity", "pos_angle", "sersic_index")


def catalog_spec(scenario: Scenario, plan: Plan) -> tuple[dict[str, Any], dict[str, str]]:
    """The scenario's catalog as (JSON-serialisable parameters, input files by name).

    ``params``: ``bands``, ``generator`` (``None`` or its parameters with the seed resolved),
    ``format``, ``column_map``, ``filter_pupils``, ``cosmology``, ``mag_limit``,
    ``margin_arcsec``, ``positions``, ``origin``; ``files``: ``catalog_file`` and, for
    JAGUAR, ``quiescent_file`` (absolute paths). :func:`catalog_from_spec` turns them into
    the catalog; a run's catalog stage can record them as its parameters.
    """

    cat = scenario.catalog
    bands = [p.filter_name for p in plan.products]
    params: dict[str, Any] = {"bands": bands}
    files: dict[str, str] = {}
    if cat.closure_grid is not None:
        params["closure_grid"] = cat.closure_grid.model_dump()
    if cat.generator is not None:
        g = cat.generator
        params["generator"] = g.spec(scenario.seed)
        return params, files
    params.update(
        generator=None, format=cat.format, column_map=dict(cat.column_map),
        filter_pupils={p.filter_name: [p.filter_wheel, p.pupil] for p in plan.products},
        cosmology=cat.cosmology or "Planck18", mag_limit=cat.mag_limit,
        margin_arcsec=(DEFAULT_MARGIN_ARCSEC if cat.margin_arcsec is None
                       else cat.margin_arcsec),
        positions=cat.positions, origin=list(cat.origin) if cat.origin else [0.0, 0.0])
    files["catalog_file"] = str(scenario.resolve_path(cat.file))
    if cat.quiescent_file is not None:
        files["quiescent_file"] = str(scenario.resolve_path(cat.quiescent_file))
    return params, files


def catalog_from_spec(params: dict[str, Any], files: dict[str, str], plan: Plan
                      ) -> SourceCatalog:
    """Make the catalog :func:`catalog_spec` describes for ``plan`` (with its closure grid
    of bright isolated stars when the scenario asks for one)."""
    catalog = _base_catalog(params, files, plan)
    grid = params.get("closure_grid")
    if grid:
        catalog = add_closure_grid(catalog, plan, bands=list(params["bands"]), **grid)
    return catalog


def _base_catalog(params: dict[str, Any], files: dict[str, str], plan: Plan
                  ) -> SourceCatalog:
    bands = list(params["bands"])
    g = params.get("generator")
    if g is not None:
        kind = g["kind"]
        if kind == "simple":
            return generate_simple(plan, n_stars=g["n_stars"], n_galaxies=g["n_galaxies"],
                                   mag_range=g["mag_range"], seed=g["seed"], bands=bands)
        if kind == "dream_like":
            p = DreamLikeParams(**{k: (tuple(v) if isinstance(v, list) else v)
                                   for k, v in g["params"].items()})
            return generate_for_plan(plan, seed=g["seed"], params=p, bands=bands)
        raise CatalogError(f"catalog.generator.kind: {kind!r} is not supported "
                           "(allowed: simple, dream_like)")

    options = ReadOptions(column_map=params.get("column_map") or {},
                          cosmology=params.get("cosmology") or "Planck18",
                          mag_limit=params.get("mag_limit"),
                          margin_arcsec=float(params.get("margin_arcsec", 2.0)),
                          positions=params.get("positions"),
                          origin=tuple(params.get("origin") or (0.0, 0.0)))
    return read_catalog_file(files["catalog_file"], params["format"], bands, plan=plan,
                             options=options, quiescent_file=files.get("quiescent_file"),
                             filter_pupils={b: tuple(v) for b, v in
                                            (params.get("filter_pupils") or {}).items()})


def make_catalog(scenario: Scenario, plan: Plan) -> SourceCatalog:
    """The scenario's input catalog for ``plan`` (generated, or read and cut to the
    footprint). Raises :class:`CatalogError` for unsupported or unusable input."""
    params, files = catalog_spec(scenario, plan)
    return catalog_from_spec(params, files, plan)


def read_catalog_file(path: str | os.PathLike, fmt: str, bands: list[str], *,
                      plan: Plan | None = None, column_map: dict[str, str] | None = None,
                      filter_pupils: dict[str, tuple[str, str]] | None = None,
                      centre: tuple[float, float] | None = None,
                      options: Any = None, quiescent_file: str | os.PathLike | None = None
                      ) -> SourceCatalog:
    """Read a catalog file into a :class:`SourceCatalog`, cut to ``plan``'s footprint.

    ``fmt``: ``generic`` (astropy-readable table — ECSV, FITS, Parquet...: ``ra``, ``dec``
    in deg, and ``mag`` for every band or ``mag_<band>`` per band, AB; a row is a galaxy if
    it has a finite ``radius`` > 0 and the galaxy columns exist, with ``axis_ratio`` accepted
    instead of ``ellipticity``; ``column_map`` renames simval name -> file column),
    ``mirage`` (one MIRAGE ascii catalog in RA/Dec and AB; a galaxy catalog if it has
    ``radius``), ``dream`` or ``jaguar`` (:mod:`simval.catalogs.readers`; ``path`` is
    JAGUAR's star-forming file and ``quiescent_file`` its quiescent one).

    ``options``: a :class:`simval.catalogs.readers.ReadOptions` (cosmology, magnitude limit,
    footprint margin, positions, origin); ``column_map`` is merged into it. Without ``plan``,
    ``centre`` = (ra, dec) deg is where DREaM offsets land (and nothing is cut).
    """

    options = options or ReadOptions()
    if column_map:
        from dataclasses import replace

        options = replace(options, column_map={**options.column_map, **column_map})
    if fmt in ("dream", "jaguar"):
        if plan is not None:
            field_ = Field.of_plan(plan, options.margin_arcsec)
        elif centre is not None:
            field_ = Field(float(centre[0]), float(centre[1]))
        else:
            field_ = None
        if fmt == "dream":
            if quiescent_file is not None:
                raise CatalogError("catalog.quiescent_file is a JAGUAR file; format 'dream' "
                                   "takes one file")
            return read_dream(path, bands, field_=field_, options=options)
        return read_jaguar(path, quiescent_file, bands, field_=field_, options=options)
    path = Path(path)
    drops: dict[str, int] = {}
    if fmt == "generic":
        stars, galaxies, drops = _read_generic(path, bands, dict(options.column_map))
    elif fmt == "mirage":
        stars, galaxies = _read_mirage(path, bands, filter_pupils or {})
    else:
        raise CatalogError(f"catalog.format: {fmt!r} is not a catalog format; use dream, "
                           "jaguar, generic or mirage")
    meta: dict[str, Any] = {"file": str(path), "format": fmt,
                            "rows_in_file": len(stars) + len(galaxies) + drops.get(
                                "no_magnitude_in_any_band", 0), "drops": dict(drops)}
    if plan is not None:
        footprint = Footprint.of_plan(plan, options.margin_arcsec)
        stars = stars[footprint.contains(stars["ra"], stars["dec"])] if len(stars) else stars
        galaxies = (galaxies[footprint.contains(galaxies["ra"], galaxies["dec"])]
                    if len(galaxies) else galaxies)
        before = meta["rows_in_file"] - drops.get("no_magnitude_in_any_band", 0)
        meta["rows_in_footprint"] = len(stars) + len(galaxies)
        dropped = before - meta["rows_in_footprint"]
        if dropped:
            meta["drops"]["outside_footprint"] = dropped
            log.info("%s: %d row(s) outside the footprint dropped", path, dropped)
        if meta["rows_in_file"] and not meta["rows_in_footprint"]:
            raise CatalogError(f"{path}: none of the {meta['rows_in_file']} sources falls on "
                               f"the field centred on RA {plan.ra_deg:.6f}, Dec "
                               f"{plan.dec_deg:.6f} deg; check the file's positions (deg)")
    _renumber(stars, galaxies, path)
    return SourceCatalog(stars=stars, galaxies=galaxies, meta=meta)


def _renumber(stars: Table, galaxies: Table, path: Path | None = None) -> None:
    """Keep a valid ``index`` (unique, >= 1, disjoint star/galaxy ranges), else number
    1..N+M and keep the file's values in ``source_id``. Duplicated values are an error."""
    have = "index" in stars.colnames and "index" in galaxies.colnames
    if have and (len(stars) + len(galaxies)):
        s = np.asarray(stars["index"], dtype=np.int64)
        g = np.asarray(galaxies["index"], dtype=np.int64)
        allv = np.concatenate([s, g])
        uniq, counts = np.unique(allv, return_counts=True)
        if (counts > 1).any():
            raise CatalogError(f"{path}: column 'index' has {int((counts > 1).sum())} "
                               f"duplicated value(s), e.g. {uniq[counts > 1][:5].tolist()}; "
                               "ids must be unique")
        disjoint = not (len(s) and len(g)) or s.max() < g.min() or g.max() < s.min()
        if allv.min() >= 1 and disjoint:
            stars["index"], galaxies["index"] = s, g
            return
        stars["source_id"], galaxies["source_id"] = s, g
        log.info("%s: 'index' values are not MIRAGE indices (>= 1, star and galaxy ranges "
                 "disjoint): renumbered 1..%d, the file's values kept in 'source_id'", path,
                 len(allv))
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

    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            raise CatalogError(f"{path}: reading Parquet needs pyarrow, which is not "
                               "installed; convert the file to FITS or ECSV") from exc
    try:
        raw = Table.read(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError(f"catalog.file: cannot read {path} as a table ({first}); expected "
                           "ECSV, FITS, Parquet or another format astropy reads") from exc
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
    _check_finite(table, need, path)

    drops: dict[str, int] = {}
    values = {band: checked_magnitudes(np.asarray(table[col], dtype=float),
                                       f"AB magnitude in {band}", path, col, drops, band)
              for band, col in mags.items()}
    usable = np.zeros(len(table), dtype=bool)
    for v in values.values():
        usable |= np.isfinite(v)
    if (~usable).any():
        drops["no_magnitude_in_any_band"] = int((~usable).sum())
        table = table[usable]
        values = {b: v[usable] for b, v in values.items()}
    for reason, count in drops.items():
        log.info("%s: %d row(s): %s", path, count, reason.replace("_", " "))
    if "ellipticity" not in table.colnames and "axis_ratio" in table.colnames:
        table["ellipticity"] = 1.0 - np.asarray(table["axis_ratio"], dtype=float)
    has_shapes = all(c in table.colnames for c in GALAXY_SHAPE_COLUMNS)
    radius = np.asarray(table["radius"], dtype=float) if has_shapes else None
    if radius is not None and (np.nan_to_num(radius) < 0).any():
        bad = np.flatnonzero(np.nan_to_num(radius) < 0)
        raise CatalogError(f"{path}: column 'radius' has {len(bad)} negative value(s) (row "
                           f"{int(bad[0])}: {radius[bad[0]]}); expected a half-light radius "
                           "> 0 arcsec (galaxies) or NaN / 0 (point sources)")
    is_gal = (np.isfinite(radius) & (radius > 0)) if radius is not None else np.zeros(
        len(table), bool)
    if is_gal.any():
        e = np.asarray(table["ellipticity"], dtype=float)[is_gal]
        n = np.asarray(table["sersic_index"], dtype=float)[is_gal]
        pa = np.asarray(table["pos_angle"], dtype=float)[is_gal]
        for name, ok, rule in (("ellipticity", np.isfinite(e) & (e >= 0) & (e < 1),
                                "in [0, 1) (axis_ratio in (0, 1])"),
                               ("sersic_index", np.isfinite(n) & (n > 0) & (n <= 10),
                                "in (0, 10]"),
                               ("pos_angle", np.isfinite(pa), "a finite angle, deg")):
            if not ok.all():
                raise CatalogError(f"{path}: column {name!r}: {int((~ok).sum())} galaxy "
                                   f"value(s) not {rule}")
    out = []
    for sel, shape_cols in ((~is_gal, ()), (is_gal, GALAXY_SHAPE_COLUMNS)):
        part = table[sel]
        t = Table()
        if "index" in part.colnames:
            t["index"] = np.asarray(part["index"], dtype=np.int64)
        t["ra"] = np.asarray(part["ra"], dtype=float) % 360.0
        t["dec"] = np.asarray(part["dec"], dtype=float)
        for band in mags:
            t[mag_column(band)] = values[band][sel]
        for col in shape_cols:
            t[col] = (np.asarray(part[col], dtype=float) if col in part.colnames
                      else np.zeros(len(part)))
        if shape_cols:
            t["axis_ratio"] = 1.0 - t["ellipticity"]
            if "redshift" in part.colnames:
                t["redshift"] = np.asarray(part["redshift"], dtype=float)
        out.append(t)
    return out[0], out[1], drops


def _read_mirage(path: Path, bands: list[str], filter_pupils: dict[str, tuple[str, str]]):
    from astropy.io import ascii
    from astropy.table import Table

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


__all__ = ["GALAXY_FILE", "STAR_FILE", "CatalogError", "SourceCatalog", "catalog_from_spec",
           "catalog_spec", "mag_column", "make_catalog", "read_catalog_file"]
