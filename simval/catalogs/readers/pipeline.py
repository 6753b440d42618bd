"""The read pipeline the DREaM and JAGUAR readers share.

Column resolution (:func:`resolve_columns`: the file's column for each simval name), one
streamed pass that keeps the rows near the field and brighter than the magnitude limit
(:func:`stream_select`), magnitude checks (:func:`checked_magnitudes`, AB), and the
conversion of the kept rows into a :class:`~simval.catalogs.SourceCatalog`
(:func:`finish_catalog`: positions in deg, footprint, types, shapes with radii in arcsec,
ids). Rows removed on purpose are counted in ``drops``; bad values raise
:class:`~simval.catalogs.CatalogError` naming the file and the column.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simval.catalogs.cosmology import kpc_to_arcsec
from simval.catalogs.io import TableStream
from simval.catalogs.model import CatalogError, SourceCatalog, mag_column
from simval.catalogs.readers.options import Field, ReadOptions
from simval.constants import AB_ZEROPOINT_NJY as AB_NJY_ZEROPOINT
from simval.sky import angular_distance_deg, move_offsets

__all__ = ["MAG_RANGE", "MAG_SENTINEL", "SERSIC_MAX", "Kept", "check_map_keys",
           "checked_magnitudes", "concat_kept", "finish_catalog", "resolve_columns",
           "stream_select"]

log = logging.getLogger("simval.catalogs")

#: Magnitudes outside this range (AB) are absurd for a JWST field, unless they are a
#: "no data" marker (|m| >= MAG_SENTINEL, e.g. 99 or -99).
MAG_RANGE = (0.0, 45.0)
MAG_SENTINEL = 90.0
SERSIC_MAX = 10.0

#: What each simval column name means (in messages about a missing column).
_DESCRIPTIONS = {
    "id": "source id (unique)",
    "ra": "RA, deg",
    "dec": "Dec, deg",
    "redshift": "redshift",
    "radius_kpc": "half-light radius along the major axis, kpc",
    "radius": "half-light radius along the major axis, arcsec",
    "axis_ratio": "axis ratio b/a",
    "sersic_index": "Sersic index",
    "pos_angle": "major-axis position angle, deg East of North",
    "type": "'galaxy' or 'star'",
}


# --- column resolution ----------------------------------------------------------------------

def resolve_columns(available: list[str], wanted: Mapping[str, str], required: set[str],
                    path: Path, fmt: str) -> dict[str, str]:
    """simval name -> actual column (exact name, else a unique case-insensitive match)."""
    lower: dict[str, list[str]] = {}
    for c in available:
        lower.setdefault(c.lower(), []).append(c)
    out, missing = {}, []
    for key, name in wanted.items():
        if name in available:
            out[key] = name
        elif len(lower.get(name.lower(), [])) == 1:
            out[key] = lower[name.lower()][0]
        elif key in required:
            missing.append(f"{name!r} ({key}: {_describe(key)})")
    if missing:
        raise CatalogError(f"{path}: catalog.format: {fmt!r} file lacks column(s) "
                           f"{', '.join(missing)}; the file has: {', '.join(available)}. "
                           "Name the file's columns with catalog.column_map "
                           "(simval name -> column), e.g. {ra: RAJ2000}")
    return out


def _describe(key: str) -> str:
    if key.startswith("mag_"):
        return f"AB magnitude in {key[4:].upper()}"
    if key.startswith("flux_"):
        return f"flux density in {key[5:].upper()}, nJy"
    return _DESCRIPTIONS.get(key, key)


def check_map_keys(column_map: Mapping[str, str], allowed: set[str], prefix: str,
                   fmt: str) -> None:
    """``CatalogError`` for a ``column_map`` key that is neither allowed nor ``<prefix><band>``."""
    bad = [k for k in column_map if k not in allowed and not k.startswith(prefix)]
    if bad:
        raise CatalogError(f"catalog.column_map: unknown simval name(s) "
                           f"{', '.join(map(repr, bad))} "
                           f"for format {fmt!r}; allowed: {', '.join(sorted(allowed))}, "
                           f"{prefix}<band>")


# --- one streamed pass ----------------------------------------------------------------------

@dataclass
class Kept:
    """Rows kept from one file: column arrays plus bookkeeping."""

    data: dict[str, np.ndarray]
    n_rows: int
    drops: dict[str, int]


def stream_select(src: TableStream, cols: dict[str, str], mag_keys: list[str], *,
                  field_: Field | None, positions: str, origin: tuple[float, float],
                  mag_limit: float | None, flux: bool) -> Kept:
    """One pass: per chunk, cut to the field's circle and to the magnitude limit."""
    names = list(dict.fromkeys(cols.values()))
    keep_parts: dict[str, list[np.ndarray]] = {k: [] for k in cols}
    drops = {"outside_field_circle": 0, "fainter_than_mag_limit": 0}
    n_seen = 0
    if field_ is not None and field_.radius_deg is not None:
        centre = origin if positions == "offsets" else (field_.ra_deg, field_.dec_deg)
    else:
        centre = None
    limit_flux = None if mag_limit is None else 10 ** (-0.4 * (mag_limit - AB_NJY_ZEROPOINT))
    for chunk in src.chunks(names):
        first = next(iter(chunk.values())) if chunk else np.zeros(0)
        n = len(first)
        ra = np.asarray(chunk[cols["ra"]], dtype=float)
        dec = np.asarray(chunk[cols["dec"]], dtype=float)
        bad = ~(np.isfinite(ra) & np.isfinite(dec))
        if bad.any():
            i = n_seen + int(np.flatnonzero(bad)[0])
            which = cols["ra"] if not np.isfinite(ra[i - n_seen]) else cols["dec"]
            raise CatalogError(f"{src.path}: column {which!r} row {i} is not a finite number "
                               "(positions must be finite, deg)")
        if np.any(np.abs(dec) > 90.0):
            i = n_seen + int(np.flatnonzero(np.abs(dec) > 90.0)[0])
            raise CatalogError(f"{src.path}: column {cols['dec']!r} row {i} = "
                               f"{float(dec[i - n_seen]):g} is "
                               "outside [-90, 90] deg")
        keep = np.ones(n, dtype=bool)
        if centre is not None:
            inside = angular_distance_deg(ra, dec, *centre) <= field_.radius_deg
            drops["outside_field_circle"] += int((~inside).sum())
            keep &= inside
        if mag_limit is not None and mag_keys:
            bright = np.zeros(n, dtype=bool)
            for key in mag_keys:
                v = np.asarray(chunk[cols[key]], dtype=float)
                with np.errstate(invalid="ignore"):
                    bright |= (v >= limit_flux) if flux else (v <= mag_limit)
            drops["fainter_than_mag_limit"] += int((keep & ~bright).sum())
            keep &= bright
        idx = np.flatnonzero(keep)
        for key, name in cols.items():
            keep_parts[key].append(np.asarray(chunk[name])[idx])
        n_seen += n
    data = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in keep_parts.items()}
    return Kept(data, n_seen, drops)


def concat_kept(parts: list[Kept], extra: dict[str, list[np.ndarray]]) -> Kept:
    """The rows kept from several files as one (columns they all have, plus ``extra``)."""
    keys = set.intersection(*(set(p.data) for p in parts)) if parts else set()
    data = {k: np.concatenate([np.asarray(p.data[k]) for p in parts]) for k in keys}
    for k, v in extra.items():
        data[k] = np.concatenate(v)
    drops: dict[str, int] = {}
    for p in parts:
        for k, v in p.drops.items():
            drops[k] = drops.get(k, 0) + v
    return Kept(data, sum(p.n_rows for p in parts), drops)


def checked_magnitudes(values: np.ndarray, what: str, path: Path, column: str,
                       drops: dict[str, int], band: str) -> np.ndarray:
    """AB magnitudes of ``column`` (``what``, for messages) checked: NaN and |m| >= 90
    markers -> NaN ("not in this band", counted in ``drops``); other values outside
    :data:`MAG_RANGE` -> :class:`CatalogError`."""
    m = np.asarray(values, dtype=float).copy()
    missing = ~np.isfinite(m) | (np.abs(np.nan_to_num(m)) >= MAG_SENTINEL)
    lo, hi = MAG_RANGE
    with np.errstate(invalid="ignore"):
        absurd = ~missing & ((m < lo) | (m > hi))
    if absurd.any():
        i = int(np.flatnonzero(absurd)[0])
        raise CatalogError(f"{path}: column {column!r} ({what}) holds {int(absurd.sum())} absurd "
                           f"magnitude(s), e.g. {float(m[i]):g}; expected AB magnitudes in "
                           f"[{lo}, {hi}] or NaN / |m| >= {MAG_SENTINEL:g} for 'no data'")
    if missing.any():
        drops[f"no_magnitude_in_{band}"] = drops.get(f"no_magnitude_in_{band}", 0) + int(
            missing.sum())
        m[missing] = np.nan
    return m


# --- kept rows -> SourceCatalog -------------------------------------------------------------

def _check_range(values: np.ndarray, ok: np.ndarray, path: Path, column: str,
                 expectation: str, ids: np.ndarray) -> None:
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise CatalogError(f"{path}: column {column!r}: {int((~ok).sum())} galaxy value(s) not "
                           f"{expectation}, e.g. {float(values[i]):g} (source id {ids[i]})")


def finish_catalog(kept: Kept, cols: dict[str, str], bands: list[str],
                   mags: dict[str, np.ndarray], *, path: Path, fmt: str, field_: Field | None,
                   options: ReadOptions, positions: str, files: list[str]) -> SourceCatalog:
    """Positions, footprint, types, shapes, ids -> SourceCatalog."""
    from astropy.table import Table

    d, drops = kept.data, kept.drops
    ra = np.asarray(d["ra"], dtype=float)
    dec = np.asarray(d["dec"], dtype=float)
    if field_ is not None and positions == "offsets":
        ra, dec = move_offsets(ra, dec, field_.ra_deg, field_.dec_deg, options.origin)
    else:
        ra = ra % 360.0
    keep = np.ones(len(ra), dtype=bool)
    if field_ is not None and field_.footprint is not None and len(ra):
        keep = np.asarray(field_.footprint.contains(ra, dec))
        drops["outside_footprint"] = int((~keep).sum())
    in_field = int(keep.sum())
    if field_ is not None and kept.n_rows and in_field == 0:
        where = ("as offsets about origin " + str(tuple(options.origin)) + " deg"
                 if positions == "offsets" else "as absolute RA/Dec")
        raise CatalogError(f"{path}: none of the {kept.n_rows} sources falls on the field centred "
                           f"on RA {field_.ra_deg:.6f}, Dec {field_.dec_deg:.6f} deg "
                           f"(positions read {where}; "
                           f"{drops.get('fainter_than_mag_limit', 0)} were fainter than "
                           "the magnitude limit). Check catalog.positions / catalog.origin, "
                           "the pointing, or the file")
    sel = np.flatnonzero(keep)
    ra, dec = ra[sel], dec[sel]
    mags = {b: m[sel] for b, m in mags.items()}
    usable = np.zeros(len(sel), dtype=bool)
    for m in mags.values():
        usable |= np.isfinite(m)
    if (~usable).any():
        drops["no_magnitude_in_any_band"] = int((~usable).sum())
    sel2 = np.flatnonzero(usable)
    sel = sel[sel2]
    ra, dec = ra[sel2], dec[sel2]
    mags = {b: m[sel2] for b, m in mags.items()}

    n = len(sel)
    ids = (np.asarray(d["id"])[sel] if "id" in d else np.arange(n, dtype=np.int64))
    if "population" in d:
        pop = np.asarray(d["population"])[sel]
        keys = np.char.add(pop.astype(str), np.char.add(":", ids.astype(str)))
    else:
        keys = ids
    uniq, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        raise CatalogError(f"{path}: column {cols.get('id', 'id')!r} has {len(dup)} "
                           f"duplicated id(s) among the sources in the field, e.g. "
                           f"{', '.join(map(str, dup[:5]))}; ids must be unique")

    if "type" in d:
        raw = np.char.lower(np.char.strip(np.asarray(d["type"])[sel].astype(str)))
        known = np.isin(raw, ["galaxy", "star"])
        if not known.all():
            found = sorted(set(raw[~known].tolist()))[:5]
            raise CatalogError(f"{path}: column {cols['type']!r} holds {found}; expected "
                               "'galaxy' or 'star'")
        is_star = raw == "star"
    else:
        is_star = np.zeros(n, dtype=bool)
    g = np.flatnonzero(~is_star)
    s = np.flatnonzero(is_star)

    gal = Table()
    star = Table()
    for t, rows in ((star, s), (gal, g)):
        t["index"] = np.zeros(len(rows), dtype=np.int64)
        t["ra"] = ra[rows]
        t["dec"] = dec[rows]
        t["ra"].unit = t["dec"].unit = "deg"
        for b in bands:
            t[mag_column(b)] = mags[b][rows]
        t["source_id"] = ids[rows]
    gids = ids[g]
    if len(g):
        z = (np.asarray(d["redshift"], dtype=float)[sel][g] if "redshift" in d
             else np.full(len(g), np.nan))
        if "radius" in d:
            radius = np.asarray(d["radius"], dtype=float)[sel][g]
            rcol = cols["radius"]
        else:
            r_kpc = np.asarray(d["radius_kpc"], dtype=float)[sel][g]
            _check_range(r_kpc, np.isfinite(r_kpc) & (r_kpc > 0), path, cols["radius_kpc"],
                         "a finite size > 0 kpc", gids)
            _check_range(z, np.isfinite(z) & (z > 0), path, cols["redshift"],
                         "a redshift > 0 (needed to turn kpc into arcsec)", gids)
            radius = kpc_to_arcsec(r_kpc, z, options.cosmology)
            rcol = cols["radius_kpc"]
        _check_range(radius, np.isfinite(radius) & (radius > 0), path, rcol,
                     "a finite half-light radius > 0", gids)
        q = np.asarray(d["axis_ratio"], dtype=float)[sel][g]
        _check_range(q, np.isfinite(q) & (q > 0) & (q <= 1), path, cols["axis_ratio"],
                     "an axis ratio b/a in (0, 1]", gids)
        nser = np.asarray(d["sersic_index"], dtype=float)[sel][g]
        _check_range(nser, np.isfinite(nser) & (nser > 0) & (nser <= SERSIC_MAX), path,
                     cols["sersic_index"], f"a Sersic index in (0, {SERSIC_MAX:g}]", gids)
        pa = np.asarray(d["pos_angle"], dtype=float)[sel][g]
        _check_range(pa, np.isfinite(pa), path, cols["pos_angle"], "a finite angle (deg)",
                     gids)
    else:
        z = radius = q = nser = pa = np.zeros(0)
    gal["radius"] = radius
    gal["radius"].unit = "arcsec"
    gal["ellipticity"] = 1.0 - q
    gal["axis_ratio"] = q
    gal["pos_angle"] = np.mod(pa, 180.0)
    gal["pos_angle"].unit = "deg"
    gal["sersic_index"] = nser
    gal["redshift"] = z
    if "population" in d:
        gal["population"] = np.asarray(d["population"])[sel][g].astype(str)
    star["index"] = np.arange(1, len(s) + 1, dtype=np.int64)
    gal["index"] = np.arange(len(s) + 1, len(s) + len(g) + 1, dtype=np.int64)

    drops = {k: v for k, v in drops.items() if v}
    for reason, count in drops.items():
        log.info("%s: %d row(s) dropped: %s", path, count, reason.replace("_", " "))
    meta: dict[str, Any] = {
        "file": files[0] if len(files) == 1 else files, "format": fmt,
        "rows_in_file": kept.n_rows, "rows_in_field": n, "n_stars": len(s),
        "n_galaxies": len(g), "positions": positions, "drops": drops,
        "cosmology": options.cosmology, "mag_limit": options.mag_limit,
    }
    if positions == "offsets":
        meta["origin_deg"] = list(options.origin)
    if field_ is not None:
        meta["field_centre_deg"] = [field_.ra_deg, field_.dec_deg]
    return SourceCatalog(stars=star, galaxies=gal, meta=meta)
