"""The match table of one mosaic: what the evaluation matched, written once, read by all.

``evaluation/<product>_match.ecsv`` has one row per truth source (truth order), then one
row per spurious detection (measured order). The report, compare and users read it
instead of matching again, so everything they show rests on the sample the metrics used.

=====================  ==========================================================================
column                 meaning
=====================  ==========================================================================
``truth_row``          0-based row of ``truth/<product>_truth.ecsv`` (-1: spurious detection)
``measured_row``       0-based row of ``image3/<product>/<product>_cat.ecsv`` (-1: missed)
``id``                 truth ``id`` (simulator index; -1 for spurious)
``label``              the source catalog's ``label`` (-1 for missed)
``type``               ``star`` / ``galaxy`` (empty for spurious)
``ra_true``,           deg, truth position; ``mag_true_ab`` AB mag injected (NaN for spurious)
``dec_true``
``ra_measured``,       deg, the catalog's ``sky_centroid`` (NaN for missed)
``dec_measured``
``mag_measured_ab``    AB mag: ``aper_total_abmag`` for stars, ``isophotal_abmag`` for galaxies
                       and spurious detections
``separation_mas``     pair separation, mas (NaN unless matched)
``dra_cosdec_mas``,    measured - true offsets, mas (east, north)
``ddec_mas``
``in_footprint``       the truth source lies in the mosaic footprint (completeness denominator)
``matched``            the truth source has a counterpart / the detection has a truth source
``snr``                the S/N that defines ``completeness_snr20`` (truth ``snr_expected`` or
                       the estimate of :func:`simval.metrics.estimate_truth_snr`)
``resolvable``         in the footprint and no brighter neighbour within the blending radius
                       (the ``completeness_snr20`` sample, with ``snr >= 20``)
``bright_star``        the bright isolated fully covered star sample
                       (``phot_*_bright_star*``, ``astrom_rms_bright_star_mas``)
=====================  ==========================================================================

``meta``: ``band``, ``product``, ``radius_mas``, ``prefer``, ``n_truth``, ``n_measured`` and
the catalog metric ``settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.atomic import atomic_path
from simval.match import MatchResult, column, radec_of, sky_offsets_mas

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.metrics import CatalogMetrics

__all__ = ["MatchTable", "build_match_table", "read_match_table", "write_match_table"]

#: Measured magnitude column per truth type; spurious detections use the isophotal one.
_MAG_COLUMN = {"star": "aper_total_abmag", "galaxy": "isophotal_abmag"}
_SPURIOUS_MAG = "isophotal_abmag"


def _measured_mags(measured: Table, kinds: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.full(rows.size, np.nan)
    for kind, name in _MAG_COLUMN.items():
        sel = (kinds == kind) & (rows >= 0)
        if sel.any() and name in measured.colnames:
            out[sel] = column(measured, name)[rows[sel]]
    return out


def build_match_table(truth: Table, measured: Table, match: MatchResult,
                      catalog: CatalogMetrics | None, *, band: str, product: str) -> Table:
    """The match table (module docstring) of one mosaic's truth, catalog and match;
    ``catalog`` gives the samples (``snr``, ``bright_star``; False/NaN without it)."""
    from astropy.table import Table

    n_t, n_m = len(truth), len(measured)
    kinds = np.char.lower(np.asarray(truth["type"]).astype(str)) if n_t else np.zeros(0, "<U6")
    t2m = match.truth_to_measured
    spurious = np.flatnonzero(match.spurious)
    mra, mdec = radec_of(measured) if n_m else (np.zeros(0), np.zeros(0))
    tra, tdec = radec_of(truth) if n_t else (np.zeros(0), np.zeros(0))
    names = truth.colnames

    def flag(name: str) -> np.ndarray:
        return column(truth, name, bool) if name in names else np.zeros(n_t, bool)

    inside = column(truth, "in_footprint", bool) if "in_footprint" in names else \
        np.ones(n_t, bool)
    sep = np.full(n_t, np.nan)
    sep[match.truth_index] = match.separation_mas
    ok = t2m >= 0
    ra_m, dec_m = np.full(n_t, np.nan), np.full(n_t, np.nan)
    ra_m[ok], dec_m[ok] = mra[t2m[ok]], mdec[t2m[ok]]
    dx, dy = np.full(n_t, np.nan), np.full(n_t, np.nan)
    if ok.any():
        dx[ok], dy[ok] = sky_offsets_mas(ra_m[ok], dec_m[ok], tra[ok], tdec[ok])
    labels = column(measured, "label", np.int64) if "label" in measured.colnames else \
        np.arange(n_m, dtype=np.int64)
    snr = np.asarray(catalog.truth_snr, float) if catalog is not None else np.full(n_t, np.nan)
    bright = np.asarray(catalog.bright_star, bool) if catalog is not None else \
        np.zeros(n_t, bool)
    spur_mag = column(measured, _SPURIOUS_MAG)[spurious] if _SPURIOUS_MAG in \
        measured.colnames else np.full(spurious.size, np.nan)
    n_s = spurious.size
    nan_s = np.full(n_s, np.nan)
    t = Table()
    t["truth_row"] = np.concatenate([np.arange(n_t), np.full(n_s, -1)]).astype(np.int64)
    t["measured_row"] = np.concatenate([t2m, spurious]).astype(np.int64)
    ids = column(truth, "id", np.int64) if "id" in names else np.arange(n_t, dtype=np.int64)
    t["id"] = np.concatenate([ids, np.full(n_s, -1)]).astype(np.int64)
    t["label"] = np.concatenate([np.where(ok, labels[np.maximum(t2m, 0)] if n_m else -1, -1),
                                 labels[spurious]]).astype(np.int64)
    t["type"] = np.concatenate([kinds, np.full(n_s, "")]).astype("<U6")
    t["ra_true"] = np.concatenate([tra, nan_s])
    t["dec_true"] = np.concatenate([tdec, nan_s])
    t["mag_true_ab"] = np.concatenate([column(truth, "mag_true_ab") if n_t else np.zeros(0),
                                       nan_s])
    t["ra_measured"] = np.concatenate([ra_m, mra[spurious]])
    t["dec_measured"] = np.concatenate([dec_m, mdec[spurious]])
    t["mag_measured_ab"] = np.concatenate([_measured_mags(measured, kinds, t2m), spur_mag])
    t["separation_mas"] = np.concatenate([sep, nan_s])
    t["dra_cosdec_mas"] = np.concatenate([dx, nan_s])
    t["ddec_mas"] = np.concatenate([dy, nan_s])
    t["in_footprint"] = np.concatenate([inside, np.zeros(n_s, bool)])
    t["matched"] = np.concatenate([ok, np.zeros(n_s, bool)])
    t["snr"] = np.concatenate([snr, nan_s])
    t["resolvable"] = np.concatenate([inside & ~flag("has_bright_neighbour"),
                                      np.zeros(n_s, bool)])
    t["bright_star"] = np.concatenate([bright, np.zeros(n_s, bool)])
    for name, unit in (("ra_true", "deg"), ("dec_true", "deg"), ("ra_measured", "deg"),
                       ("dec_measured", "deg"), ("mag_true_ab", "mag"),
                       ("mag_measured_ab", "mag"), ("separation_mas", "mas"),
                       ("dra_cosdec_mas", "mas"), ("ddec_mas", "mas")):
        t[name].unit = unit
    t.meta = {"band": band, "product": product, "radius_mas": float(match.radius_mas),
              "prefer": match.prefer, "n_truth": int(n_t), "n_measured": int(n_m),
              "settings": dict(catalog.settings) if catalog is not None else {}}
    return t


def write_match_table(table: Table, path: str | os.PathLike) -> Path:
    """Write a match table as ECSV, atomically; return the path."""

    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    return Path(path)


@dataclass(frozen=True)
class MatchTable:
    """A match table as read back: the ``table``, the :class:`~simval.match.MatchResult`
    it records, and the per-truth-row sample flags (``bright_star``, ``resolvable``) and
    ``snr``."""

    table: Table
    match: MatchResult
    bright_star: np.ndarray
    resolvable: np.ndarray
    snr: np.ndarray

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.table.meta.get("settings") or {})


def read_match_table(path: str | os.PathLike) -> MatchTable:
    """Read ``evaluation/<product>_match.ecsv`` (ValueError naming the file and the column
    if it is not a match table)."""
    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv")
    need = ("truth_row", "measured_row", "separation_mas", "bright_star", "resolvable", "snr")
    missing = [c for c in need if c not in t.colnames]
    for key in ("radius_mas", "n_truth", "n_measured"):
        if key not in t.meta:
            missing.append(f"meta.{key}")
    if missing:
        raise ValueError(f"{path}: not a simval match table (no {', '.join(missing)})")
    truth_row = np.asarray(t["truth_row"], np.int64)
    measured_row = np.asarray(t["measured_row"], np.int64)
    is_truth = truth_row >= 0
    if int(is_truth.sum()) != int(t.meta["n_truth"]):
        raise ValueError(f"{path}: {int(is_truth.sum())} truth rows, meta.n_truth = "
                         f"{t.meta['n_truth']}")
    pair = is_truth & (measured_row >= 0)
    order = np.argsort(truth_row[pair], kind="stable")
    match = MatchResult(measured_row[pair][order], truth_row[pair][order],
                        np.asarray(t["separation_mas"], float)[pair][order],
                        int(t.meta["n_measured"]), int(t.meta["n_truth"]),
                        float(t.meta["radius_mas"]), str(t.meta.get("prefer", "distance")))
    rows = np.argsort(truth_row[is_truth], kind="stable")

    def per_truth(name: str, dtype: Any) -> np.ndarray:
        return np.asarray(t[name], dtype)[is_truth][rows]

    return MatchTable(t, match, per_truth("bright_star", bool), per_truth("resolvable", bool),
                      per_truth("snr", float))
