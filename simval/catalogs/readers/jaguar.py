"""JAGUAR catalogs (Williams et al. 2018; star-forming and quiescent files) into a SourceCatalog.

Fluxes are nJy in ``NRC_<BAND>_fnu`` / ``MIRI_<BAND>_fnu`` and become AB magnitudes;
``Re_maj`` is already in arcsec; positions are absolute RA/Dec (deg) by default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from simval.catalogs.bands import instrument_of, normalise_band
from simval.catalogs.io import open_table
from simval.catalogs.model import CatalogError, SourceCatalog
from simval.catalogs.readers.options import Field, ReadOptions
from simval.catalogs.readers.pipeline import (
    check_map_keys,
    concat_kept,
    finish_catalog,
    resolve_columns,
    stream_select,
)
from simval.constants import AB_ZEROPOINT_NJY as AB_NJY_ZEROPOINT

__all__ = ["JAGUAR_COLUMNS", "JAGUAR_FLUX_TEMPLATE", "jaguar_columns", "read_jaguar"]

log = logging.getLogger("simval.catalogs")

#: JAGUAR (Williams et al. 2018) default column names. Fluxes are nJy in
#: ``NRC_<BAND>_fnu`` (NIRCam) or ``MIRI_<BAND>_fnu`` (MIRI); ``Re_maj`` is already in
#: arcsec (semi-major half-light radius); ``position_angle`` is taken as deg East of North.
JAGUAR_COLUMNS: dict[str, str] = {
    "id": "ID",
    "ra": "RA",
    "dec": "DEC",
    "redshift": "redshift",
    "radius": "Re_maj",
    "axis_ratio": "axis_ratio",
    "sersic_index": "sersic_n",
    "pos_angle": "position_angle",
}
JAGUAR_FLUX_TEMPLATE = {"NIRCAM": "NRC_{BAND}_fnu", "MIRI": "MIRI_{BAND}_fnu"}


def jaguar_columns(bands: list[str], column_map: Mapping[str, str] | None = None
                   ) -> dict[str, str]:
    """The JAGUAR column names for ``bands``: defaults overridden by ``column_map``."""
    column_map = dict(column_map or {})
    check_map_keys(column_map, set(JAGUAR_COLUMNS), "flux_", "jaguar")
    cols = dict(JAGUAR_COLUMNS)
    for b in bands:
        inst = instrument_of(b)
        if inst not in JAGUAR_FLUX_TEMPLATE:
            raise CatalogError(f"JAGUAR has no {b} column ({inst}); use NIRCam or MIRI bands")
        cols[f"flux_{b.lower()}"] = JAGUAR_FLUX_TEMPLATE[inst].format(BAND=b.upper())
    cols.update(column_map)
    return cols


def _fluxes_to_mag(values: np.ndarray, path: Path, column: str, drops: dict[str, int],
                   band: str) -> np.ndarray:
    """nJy -> AB (m = 31.4 - 2.5 log10 f). Non-positive or non-finite flux: NaN (the source
    is absent from that band; counted)."""
    f = np.asarray(values, dtype=float)
    ok = np.isfinite(f) & (f > 0)
    m = np.full(f.shape, np.nan)
    m[ok] = AB_NJY_ZEROPOINT - 2.5 * np.log10(f[ok])
    bad = int((~ok).sum())
    if bad:
        key = f"nonpositive_flux_in_{band}"
        drops[key] = drops.get(key, 0) + bad
        log.info("%s: %d source(s) with flux <= 0 or NaN in %r: dropped from %s (undetectable)",
                 path, bad, column, band)
    return m


def read_jaguar(star_forming: str | os.PathLike | None, quiescent: str | os.PathLike | None,
                bands: list[str], *, field_: Field | None = None,
                options: ReadOptions | None = None) -> SourceCatalog:
    """Read JAGUAR (Williams et al. 2018) star-forming and quiescent files into one
    SourceCatalog (galaxies only; ``population`` says which file a row came from).

    Either file may be ``None`` (not both). Fluxes (nJy) become AB magnitudes,
    m = 31.4 - 2.5 log10(f); a flux <= 0 (or NaN) removes the source from that band only
    (counted in ``meta['drops']`` and logged). Positions are absolute by default.
    """
    options = options or ReadOptions()
    bands = [normalise_band(b) for b in bands]
    positions = options.positions or "absolute"
    files = [(p, name) for p, name in ((star_forming, "star_forming"),
                                       (quiescent, "quiescent")) if p is not None]
    if not files:
        raise CatalogError("a JAGUAR catalog needs at least one of the star-forming and quiescent "
                           "files")
    if field_ is None and positions == "offsets":
        raise CatalogError("positions: offsets needs the field centre (the scenario's pointing)")
    cols = jaguar_columns(bands, options.column_map)
    flux_keys = [f"flux_{b.lower()}" for b in bands]
    parts, pops, resolved = [], [], {}
    for path, pop in files:
        src = open_table(path, f"catalog ({pop} file)", options.chunk_rows)
        resolved = resolve_columns(src.columns, cols, set(cols) - {"id"}, src.path, "jaguar")
        kept = stream_select(src, resolved, flux_keys, field_=field_, positions=positions,
                             origin=options.origin, mag_limit=options.mag_limit, flux=True)
        parts.append(kept)
        pops.append(np.full(len(kept.data["ra"]), pop))
    kept = concat_kept(parts, {"population": pops})
    main = Path(files[0][0])
    mags = {b: _fluxes_to_mag(kept.data[f"flux_{b.lower()}"], main, resolved[f"flux_{b.lower()}"],
                              kept.drops, b) for b in bands}
    return finish_catalog(kept, resolved, bands, mags, path=main, fmt="jaguar", field_=field_,
                          options=options, positions=positions,
                          files=[str(p) for p, _ in files])
