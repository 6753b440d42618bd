"""DREaM-style catalogs (Drakos et al. 2022 conventions) into a SourceCatalog.

Positions default to offsets (deg) about ``origin``, moved onto the field centre; radii are
semi-major half-light radii in kpc, turned into arcsec at each galaxy's redshift; magnitudes
are AB in columns named after the band (``F150W``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from simval.catalogs.bands import normalise_band
from simval.catalogs.io import MemoryTableStream, open_table
from simval.catalogs.model import CatalogError, SourceCatalog
from simval.catalogs.readers.options import Field, ReadOptions
from simval.catalogs.readers.pipeline import (
    check_map_keys,
    checked_magnitudes,
    finish_catalog,
    resolve_columns,
    stream_select,
)

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["DREAM_COLUMNS", "DREAM_MAG_TEMPLATE", "dream_columns", "read_dream"]

#: DREaM-style default column names (simval name -> file column). ``mag_<band>`` columns
#: default to the band name in upper case (``F150W``). ``radius_kpc`` is the half-light
#: radius along the major axis in kpc (DREaM's convention); map ``radius`` instead to give
#: it in arcsec directly. ``type`` is optional ('galaxy' or 'star'; absent: all galaxies).
DREAM_COLUMNS: dict[str, str] = {
    "id": "ID",
    "ra": "RA",
    "dec": "DEC",
    "redshift": "redshift",
    "radius_kpc": "Re_maj",
    "axis_ratio": "axis_ratio",
    "sersic_index": "sersic_n",
    "pos_angle": "PA",
    "type": "type",
}
DREAM_MAG_TEMPLATE = "{BAND}"


def dream_columns(bands: list[str], column_map: Mapping[str, str] | None = None
                  ) -> dict[str, str]:
    """The DREaM-style column names for ``bands``: defaults overridden by ``column_map``."""
    column_map = dict(column_map or {})
    allowed = set(DREAM_COLUMNS) | {"radius"}
    check_map_keys(column_map, allowed, "mag_", "dream")
    cols = dict(DREAM_COLUMNS)
    if "radius" in column_map:
        cols.pop("radius_kpc")
    for b in bands:
        cols[f"mag_{b.lower()}"] = DREAM_MAG_TEMPLATE.format(BAND=b.upper())
    cols.update(column_map)
    return cols


def read_dream(path_or_table: str | os.PathLike | Table, bands: list[str], *,
               field_: Field | None = None, options: ReadOptions | None = None
               ) -> SourceCatalog:
    """Read a DREaM-style catalog (Drakos et al. 2022 conventions) into a SourceCatalog.

    ``path_or_table``: a file (Parquet, FITS, ECSV, ...) or an astropy Table in the same
    schema (the ``dream_like`` generator's output). Positions default to ``offsets`` about
    (0, 0) deg, moved onto ``field_``'s centre; radii are semi-major half-light radii in kpc,
    converted to arcsec with ``options.cosmology`` at each galaxy's redshift. See
    :mod:`simval.catalogs.readers` for the checks.
    """
    options = options or ReadOptions()
    bands = [normalise_band(b) for b in bands]
    positions = options.positions or "offsets"
    if isinstance(path_or_table, str | os.PathLike):
        src = open_table(path_or_table, "catalog.file", options.chunk_rows)
    else:
        src = MemoryTableStream(path_or_table,
                                Path(str(path_or_table.meta.get("file", "<table>"))), "catalog")
    cols = dream_columns(bands, options.column_map)
    mag_keys = [f"mag_{b.lower()}" for b in bands]
    has_type = resolve_columns(src.columns, {"type": cols["type"]}, set(), src.path, "dream")
    if not has_type:
        cols.pop("type")
    resolved = resolve_columns(src.columns, cols, set(cols) - {"type", "id"}, src.path, "dream")
    if field_ is None and positions == "offsets":
        raise CatalogError("a DREaM-style catalog gives offsets about (0, 0): reading it needs the "
                           "field centre (the scenario's pointing)")
    kept = stream_select(src, resolved, mag_keys, field_=field_, positions=positions,
                         origin=options.origin, mag_limit=options.mag_limit, flux=False)
    mags = {b: checked_magnitudes(kept.data[f"mag_{b.lower()}"], f"AB magnitude in {b}",
                                  src.path, resolved[f"mag_{b.lower()}"], kept.drops, b)
            for b in bands}
    return finish_catalog(kept, resolved, bands, mags, path=src.path, fmt="dream",
                          field_=field_, options=options, positions=positions,
                          files=[str(src.path)])
