"""The input catalog's data model: :class:`SourceCatalog`, :class:`CatalogError`, column names.

A :class:`SourceCatalog` is two astropy tables (``stars``, ``galaxies``) in the column
conventions of :mod:`simval.simulate.mirage_catalogs`, plus one AB magnitude column per
passband, ``mag_<band>`` (see :mod:`simval.catalogs`). Readers and generators build it;
nothing here reads a file format other than its own ECSV pair.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import atomic_path

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["GALAXY_FILE", "STAR_FILE", "CatalogError", "SourceCatalog", "mag_column"]

log = logging.getLogger("simval.catalogs")

STAR_FILE = "stars.ecsv"
GALAXY_FILE = "galaxies.ecsv"


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

    def to_table(self) -> Table:
        """Stars then galaxies in one table of the ``generic`` format: ``index``, ``type``,
        ``ra``, ``dec``, ``mag_<band>``, ``radius``, ``ellipticity``, ``axis_ratio``,
        ``pos_angle``, ``sersic_index``, ``redshift`` (NaN shapes and redshift for stars)
        and ``source_id`` when known. :func:`simval.catalogs.read_catalog_file` (format
        ``generic``) reads it back (a row with a finite radius > 0 is a galaxy)."""
        from astropy.table import Table, vstack

        cols = [c for c in self.galaxies.colnames if c.startswith("mag_")]
        shape = ["radius", "ellipticity", "axis_ratio", "pos_angle", "sersic_index",
                 "redshift"]
        parts = []
        for kind, t in (("star", self.stars), ("galaxy", self.galaxies)):
            out = Table()
            out["index"] = np.asarray(t["index"], dtype=np.int64)
            if "source_id" in t.colnames:
                out["source_id"] = np.asarray(t["source_id"])
            out["type"] = np.full(len(t), kind, dtype="U6")
            out["ra"] = np.asarray(t["ra"], dtype=float)
            out["dec"] = np.asarray(t["dec"], dtype=float)
            for c in cols:
                out[c] = (np.asarray(t[c], dtype=float) if c in t.colnames
                          else np.full(len(t), np.nan))
            for c in shape:
                out[c] = (np.asarray(t[c], dtype=float) if c in t.colnames
                          else np.full(len(t), np.nan))
            parts.append(out)
        table = vstack(parts, join_type="outer") if len(parts[0]) else parts[1]
        for c, unit in (("ra", "deg"), ("dec", "deg"), ("radius", "arcsec"),
                        ("pos_angle", "deg")):
            table[c].unit = unit
        table.meta = {k: v for k, v in self.meta.items() if k != "kind"}
        return table

    def write_generic(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_table` (ECSV, FITS or Parquet by the file's suffix), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            fmt = {".ecsv": "ascii.ecsv", ".fits": "fits", ".parquet": "parquet"}.get(
                path.suffix.lower())
            if fmt is None:
                raise CatalogError(f"{path}: write .ecsv, .fits or .parquet")
            table = self.to_table()
            if fmt != "ascii.ecsv":
                table.meta = {}
            table.write(tmp, format=fmt, overwrite=True)
        return path

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
    mag = np.asarray(table[col], dtype=float)
    present = np.isfinite(mag)
    out = table[present] if not present.all() else table.copy(copy_data=False)
    if not present.all():
        log.info("%d source(s) have no %s magnitude (NaN): left out of the %s catalogs",
                 int((~present).sum()), band, band)
    out["mag"] = mag[present]
    return out
