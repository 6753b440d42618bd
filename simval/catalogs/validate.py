"""Is a mock catalog realistic? Number counts, sizes, colours and redshifts against
reference relations shipped with the package; and input vs recovered counts after a run.

Reference data (``simval/catalogs/reference/``, ECSV, citations in each file's header):

- ``number_counts_h.ecsv``: galaxy differential counts in the H band (F160W ~ F150W) from
  the published relation the ``dream_like`` generator uses (Yan et al. 1998 normalisation and
  slope, Windhorst et al. 2011 faint-end flattening; :mod:`simval.catalogs.dream_like`), per
  0.5 mag, with a tolerance band. It applies to the F150W column.
- ``model_relations.ecsv``: per band and reference-band magnitude bin, the counts, the
  median and 16-84% range of the colour (band - F150W), of log10 half-light radius (arcsec,
  major axis) and of the redshift, of a large ``dream_like`` draw (the relations cited in
  :mod:`simval.catalogs.dream_like`; rebuilt by :func:`build_model_relations`). These are the
  expectation *of the cited relations as combined by that model*, not measurements: a
  catalog that departs from them is not wrong, but the departure is worth knowing.

Checks (bins with at least ``MIN_PER_BIN`` galaxies; sigma is the statistical error of the
catalog's own value): counts |Delta log10 n| <= 0.25 dex (H band) or 0.3 dex (other bands)
+ 2 sigma_Poisson; median log10 radius within 0.15 dex + 2 sigma; median colours within
0.3 mag + 2 sigma; median log10(1+z) within 0.1 + 2 sigma.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.catalogs.bands import DEFAULT_BANDS
from simval.catalogs.dream_like import (
    CITATIONS,
    COUNTS_BREAKS_AB,
    COUNTS_NORM_MAG_AB,
    COUNTS_NORM_PER_DEG2,
    COUNTS_SLOPES,
    DreamLikeParams,
    differential_counts,
    generate_box,
)
from simval.catalogs.model import mag_column
from simval.catalogs.readers import kpc_to_arcsec
from simval.sky import to_tangent

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.catalogs.model import SourceCatalog

REFERENCE_DIR = Path(__file__).parent / "reference"
COUNTS_REFERENCE = REFERENCE_DIR / "number_counts_h.ecsv"
MODEL_REFERENCE = REFERENCE_DIR / "model_relations.ecsv"
REF_BAND = "F150W"
MAG_BINS = np.round(np.arange(16.0, 30.01, 0.5), 2)
MIN_PER_BIN = 10
TOL_COUNTS_H_DEX = 0.25
TOL_COUNTS_MODEL_DEX = 0.30
TOL_SIZE_DEX = 0.15
TOL_COLOUR_MAG = 0.30
TOL_LOG1PZ = 0.10
#: Reference-band limits for which the model counts in other bands are tabulated.
REF_LIMITS = (23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.0)
#: Magnitudes (AB) over which the H-band counts reference is given (NaN outside).
COUNTS_VALID_AB = (18.0, 28.0)


# --- reference data -------------------------------------------------------------------------

def build_counts_reference(path: str | os.PathLike | None = None) -> Table:
    """The H-band differential counts reference (what ``number_counts_h.ecsv`` holds)."""
    from astropy.table import Table

    lo, hi = MAG_BINS[:-1], MAG_BINS[1:]
    n = np.array([np.mean(differential_counts(np.linspace(a, b, 51)))
                  for a, b in itertools.pairwise(MAG_BINS)])
    t = Table()
    t["mag_lo"], t["mag_hi"] = lo, hi
    valid = (lo >= COUNTS_VALID_AB[0]) & (hi <= COUNTS_VALID_AB[1])
    t["log10_n_deg2_mag"] = np.where(valid, np.round(np.log10(n), 4), np.nan)
    t["tolerance_dex"] = TOL_COUNTS_H_DEX
    t["log10_n_deg2_mag"].description = "galaxies per deg^2 per mag (AB), bin average"
    t.meta.update({
        "band": "H (HST F160W), applied to NIRCam F150W",
        "relation": (f"d log10 N/dm = {COUNTS_SLOPES} with breaks at {COUNTS_BREAKS_AB} AB; "
                     f"N(<{COUNTS_NORM_MAG_AB} AB) = {COUNTS_NORM_PER_DEG2:g} deg^-2"),
        "citations": [
            "Yan et al. 1998, ApJ 503, L19: slope 0.31 fainter than H = 20 and "
            "N(H <= 24.75) = 4e5 deg^-2 (read as Vega, H_AB = H + 1.25)",
            "Windhorst et al. 2011, ApJS 193, 27: flattening of the faint near-IR counts "
            "(slope 0.25 adopted beyond AB 26)",
            "Guo et al. 2013, ApJS 207, 24: ~200 arcmin^-2 to H ~ 27 in GOODS-S (a check)",
        ],
        "valid_range_ab": list(COUNTS_VALID_AB),
    })
    if path is not None:
        t.write(path, format="ascii.ecsv", overwrite=True)
    return t


def build_model_relations(path: str | os.PathLike | None = None, *, area_arcmin2: float = 60.0,
                          seed: int = 20240611, bands: Sequence[str] | None = None) -> Table:
    """Median relations of a large ``dream_like`` draw (what ``model_relations.ecsv`` holds)."""
    from astropy.table import Table

    bands = list(bands or (*DEFAULT_BANDS, "F770W"))
    side = math.sqrt(area_arcmin2) * 60.0
    params = DreamLikeParams(mag_limit=float(MAG_BINS[-1]), mag_bright=float(MAG_BINS[0]),
                             n_stars=0)
    t = generate_box(side, side, seed=seed, params=params, bands=bands)
    g = t[t["type"] == "galaxy"]
    ref = np.asarray(g[REF_BAND], dtype=float)
    log_r = np.log10(kpc_to_arcsec(g["Re_maj"], g["redshift"]))
    z = np.asarray(g["redshift"], dtype=float)
    rows = []
    for band in bands:
        m = np.asarray(g[band], dtype=float)
        colour = m - ref
        for lo, hi in itertools.pairwise(MAG_BINS):
            in_band = (m >= lo) & (m < hi)
            in_ref = (ref >= lo) & (ref < hi)
            row = {"band": band, "mag_lo": lo, "mag_hi": hi,
                   "log10_n_deg2_mag": _log_density(in_band.sum(), area_arcmin2, hi - lo),
                   "n_model": int(in_band.sum())}
            for lim in REF_LIMITS:
                row[_limit_column(lim)] = _log_density((in_band & (ref < lim)).sum(),
                                                       area_arcmin2, hi - lo)
            c = colour[in_ref & np.isfinite(colour)]
            row.update(_pcts("colour", c))
            if band == REF_BAND:
                row.update(_pcts("log10_radius", log_r[in_ref]))
                row.update(_pcts("log10_1pz", np.log10(1.0 + z[in_ref])))
            else:
                row.update(_pcts("log10_radius", np.zeros(0)))
                row.update(_pcts("log10_1pz", np.zeros(0)))
            rows.append(row)
    out = Table(rows=rows)
    for col in out.colnames:
        if out[col].dtype.kind == "f":
            out[col] = np.round(out[col], 4)
    out.meta.update({
        "what": ("medians and 16-84% ranges of a dream_like draw (simval.catalogs.dream_like) "
                 "per band and 0.5-mag bin: the expectation of the cited relations as combined "
                 "by that model, not a measurement"),
        "colour": f"band - {REF_BAND}, AB, binned in {REF_BAND}",
        "log10_radius": "half-light radius along the major axis, arcsec, binned in F150W",
        "log10_1pz": "log10(1 + z), binned in F150W",
        "counts": "log10 galaxies per deg^2 per mag, binned in the band itself",
        "counts_ref_lt_L": f"the same for galaxies with {REF_BAND} < L (catalogs limited in "
                           f"{REF_BAND})",
        "area_arcmin2": area_arcmin2, "seed": seed, "n_galaxies": len(g),
        "citations": CITATIONS,
    })
    if path is not None:
        out.write(path, format="ascii.ecsv", overwrite=True)
    return out


def _log_density(n: int, area_arcmin2: float, width: float) -> float:
    return float(np.log10(n / (area_arcmin2 / 3600.0) / width)) if n else np.nan


def _limit_column(limit: float) -> str:
    return f"log10_n_ref_lt_{limit:g}"


def _pcts(name: str, values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 3:
        return {f"{name}_p16": np.nan, f"{name}_p50": np.nan, f"{name}_p84": np.nan}
    p16, p50, p84 = np.percentile(v, [16, 50, 84])
    return {f"{name}_p16": p16, f"{name}_p50": p50, f"{name}_p84": p84}


def load_references() -> tuple[Table, Table]:
    """(H-band counts reference, model relations) from ``simval/catalogs/reference``."""
    from astropy.table import Table

    return (Table.read(COUNTS_REFERENCE, format="ascii.ecsv"),
            Table.read(MODEL_REFERENCE, format="ascii.ecsv"))


def reference_counts(band: str, mags: np.ndarray) -> tuple[np.ndarray, str]:
    """Reference differential counts (per deg^2 per mag) at ``mags`` for ``band`` and the
    name of the source: the published H-band relation for F150W, the model elsewhere."""
    counts, model = load_references()
    band = band.upper()
    if band == REF_BAND:
        mid = 0.5 * (np.asarray(counts["mag_lo"]) + np.asarray(counts["mag_hi"]))
        return 10.0 ** np.interp(mags, mid, counts["log10_n_deg2_mag"], left=np.nan,
                                 right=np.nan), "number_counts_h.ecsv"
    rows = model[model["band"] == band]
    if not len(rows):
        return np.full(np.shape(mags), np.nan), "none"
    mid = 0.5 * (np.asarray(rows["mag_lo"]) + np.asarray(rows["mag_hi"]))
    return 10.0 ** np.interp(mags, mid, rows["log10_n_deg2_mag"], left=np.nan, right=np.nan), \
        "model_relations.ecsv"


# --- area -----------------------------------------------------------------------------------

def catalog_area_arcmin2(ra_deg: np.ndarray, dec_deg: np.ndarray) -> float:
    """Area of the bounding box of the positions in the tangent plane at their median, arcmin^2
    (an estimate: give the true area when known)."""

    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    if len(ra) < 3:
        raise ValueError("need at least 3 positions to estimate an area")
    ra0 = float(np.degrees(np.angle(np.mean(np.exp(1j * np.radians(ra))))) % 360.0)
    x, y = to_tangent(ra, dec, ra0, float(np.median(dec)))
    return float((x.max() - x.min()) * (y.max() - y.min()) / 3600.0)


# --- counts after a run ---------------------------------------------------------------------

def recovered_vs_input_counts(input_mags, recovered_mags, area_arcmin2: float, *, band: str,
                              bins: Sequence[float] | None = None,
                              matched_input_mags=None, reference: bool = True) -> Table:
    """Differential galaxy counts per magnitude bin: input catalog, pipeline catalog and the
    reference relation.

    Parameters
    ----------
    input_mags : AB magnitudes of the input sources over the area (e.g. the run's input
        catalog within the mosaic footprint).
    recovered_mags : AB magnitudes the pipeline measured (its source catalog over the same
        area); non-finite values are ignored.
    area_arcmin2 : area both refer to, arcmin^2.
    band : passband (selects the reference: the H-band relation for F150W, the model's
        counts for other bands).
    bins : bin edges, AB (default 16 to 30 in 0.5 mag).
    matched_input_mags : input magnitudes of the input sources matched to a detection; gives
        the completeness per bin (n_matched / n_input).
    reference : add the reference counts.

    Returns
    -------
    astropy Table with ``mag_lo``, ``mag_hi``, ``mag_mid``, ``n_input``, ``n_recovered``,
    ``density_input``, ``density_recovered`` (arcmin^-2 mag^-1), ``ratio`` (recovered /
    input), ``density_reference`` (NaN where there is none), and with matched magnitudes
    ``n_matched`` and ``completeness``; ``meta``: band, area, reference source.
    """
    from astropy.table import Table

    if not area_arcmin2 > 0:
        raise ValueError(f"area_arcmin2 must be > 0, got {area_arcmin2}")
    edges = np.asarray(MAG_BINS if bins is None else bins, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be increasing magnitude edges")
    m_in = np.asarray(input_mags, dtype=float)
    m_rec = np.asarray(recovered_mags, dtype=float)
    n_in = np.histogram(m_in[np.isfinite(m_in)], edges)[0]
    n_rec = np.histogram(m_rec[np.isfinite(m_rec)], edges)[0]
    width = np.diff(edges)
    t = Table()
    t["mag_lo"], t["mag_hi"] = edges[:-1], edges[1:]
    t["mag_mid"] = 0.5 * (edges[:-1] + edges[1:])
    t["n_input"], t["n_recovered"] = n_in, n_rec
    t["density_input"] = n_in / area_arcmin2 / width
    t["density_recovered"] = n_rec / area_arcmin2 / width
    with np.errstate(divide="ignore", invalid="ignore"):
        t["ratio"] = np.where(n_in > 0, n_rec / np.maximum(n_in, 1), np.nan)
    source = "none"
    if reference:
        ref, source = reference_counts(band, t["mag_mid"])
        t["density_reference"] = ref / 3600.0
    if matched_input_mags is not None:
        m_match = np.asarray(matched_input_mags, dtype=float)
        n_match = np.histogram(m_match[np.isfinite(m_match)], edges)[0]
        t["n_matched"] = n_match
        with np.errstate(divide="ignore", invalid="ignore"):
            t["completeness"] = np.where(n_in > 0, n_match / np.maximum(n_in, 1), np.nan)
    for col in ("density_input", "density_recovered", "density_reference"):
        if col in t.colnames:
            t[col].unit = "arcmin-2 mag-1"
    t.meta.update({"band": band.upper(), "area_arcmin2": float(area_arcmin2),
                   "reference": source})
    return t


# --- validation of a catalog ----------------------------------------------------------------

@dataclass
class Check:
    """One judged quantity: per-bin deviations and the verdict."""

    name: str
    band: str
    n_bins_judged: int
    n_bins_failed: int
    max_abs_deviation: float
    tolerance: float
    unit: str
    reference: str

    @property
    def rule(self) -> str:
        return f"|dev| <= {self.tolerance:g} {self.unit} + 2 sigma"

    @property
    def passed(self) -> bool:
        return self.n_bins_failed == 0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["passed"] = self.passed
        d["rule"] = self.rule
        if not math.isfinite(d["max_abs_deviation"]):
            d["max_abs_deviation"] = None
        return d


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_catalog`."""

    checks: list[Check]
    bins: Table
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def _median_sigma(v: np.ndarray) -> float:
    if len(v) < 2:
        return np.inf
    s = 0.5 * (np.percentile(v, 84) - np.percentile(v, 16))
    return 1.2533 * s / math.sqrt(len(v))


def validate_catalog(cat: SourceCatalog, *, area_arcmin2: float | None = None,
                     bands: Sequence[str] | None = None, out_dir: str | os.PathLike | None = None,
                     label: str = "catalog", plots: bool = True) -> ValidationResult:
    """Compare ``cat``'s galaxies with the reference relations (module docstring).

    ``area_arcmin2``: sky area of the catalog (default: ``cat.meta['area_arcmin2']`` or the
    bounding box of the positions). Writes ``validation_summary.json``,
    ``validation_bins.ecsv`` and PNG plots into ``out_dir`` when given.
    """
    from astropy.table import Table

    counts_ref, model = load_references()
    g = cat.galaxies
    if bands is None:
        bands = [c[4:].upper() for c in g.colnames if c.startswith("mag_")]
    bands = [b.upper() for b in bands]
    if area_arcmin2 is None:
        area_arcmin2 = cat.meta.get("area_arcmin2")
    area_note = "given"
    if area_arcmin2 is None:
        allra = np.concatenate([np.asarray(cat.stars["ra"]), np.asarray(g["ra"])])
        alldec = np.concatenate([np.asarray(cat.stars["dec"]), np.asarray(g["dec"])])
        area_arcmin2 = catalog_area_arcmin2(allra, alldec)
        area_note = "bounding box of the positions (an estimate)"
    area_deg2 = float(area_arcmin2) / 3600.0
    lo, hi = MAG_BINS[:-1], MAG_BINS[1:]
    mid = 0.5 * (lo + hi)
    rows: list[dict[str, Any]] = []
    checks: list[Check] = []

    ref_mag = (np.asarray(g[mag_column(REF_BAND)], dtype=float)
               if mag_column(REF_BAND) in g.colnames else None)
    limit = _catalog_limit(cat, ref_mag)
    complete_ref = hi <= limit + 1e-9
    for band in bands:
        col = mag_column(band)
        if col not in g.colnames:
            continue
        m = np.asarray(g[col], dtype=float)
        n, _ = np.histogram(m[np.isfinite(m)], MAG_BINS)
        complete = np.ones(len(mid), dtype=bool)
        if band == REF_BAND:
            ref_log_n = np.asarray(counts_ref["log10_n_deg2_mag"], dtype=float)
            tol, source = TOL_COUNTS_H_DEX, "number_counts_h.ecsv"
            complete = complete_ref
        else:
            sel = model[model["band"] == band]
            ref_log_n, complete = _model_counts(sel, limit, len(mid))
            tol, source = TOL_COUNTS_MODEL_DEX, "model_relations.ecsv"
        with np.errstate(divide="ignore"):
            log_n = np.log10(n / area_deg2 / np.diff(MAG_BINS))
        sigma = 0.4343 / np.sqrt(np.maximum(n, 1))
        dev = log_n - ref_log_n
        judged = (n >= MIN_PER_BIN) & np.isfinite(ref_log_n) & complete
        failed = judged & (np.abs(dev) > tol + 2.0 * sigma)
        checks.append(Check("counts", band, int(judged.sum()), int(failed.sum()),
                            float(np.max(np.abs(dev[judged]))) if judged.any() else np.nan,
                            tol, "dex", source))
        for i in range(len(mid)):
            rows.append({"quantity": "log10_counts", "band": band, "mag_lo": lo[i],
                         "mag_hi": hi[i], "n": int(n[i]), "value": log_n[i],
                         "reference": ref_log_n[i], "deviation": dev[i],
                         "judged": bool(judged[i]), "failed": bool(failed[i])})

        if ref_mag is None:
            continue
        sel_model = model[model["band"] == band]
        if band != REF_BAND:
            colour = m - ref_mag
            _binned_check(rows, checks, "colour", band, ref_mag, colour, sel_model,
                          "colour_p50", TOL_COLOUR_MAG, "mag", complete_ref)
        else:
            radius = np.asarray(g["radius"], dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                _binned_check(rows, checks, "log10_radius", band, ref_mag, np.log10(radius),
                              sel_model, "log10_radius_p50", TOL_SIZE_DEX, "dex",
                              complete_ref)
            if "redshift" in g.colnames and np.isfinite(np.asarray(g["redshift"], float)).any():
                _binned_check(rows, checks, "log10_1pz", band, ref_mag,
                              np.log10(1.0 + np.asarray(g["redshift"], dtype=float)),
                              sel_model, "log10_1pz_p50", TOL_LOG1PZ, "dex", complete_ref)
    bins_table = Table(rows=rows) if rows else Table()
    summary = {
        "label": label, "area_arcmin2": round(float(area_arcmin2), 4), "area": area_note,
        "n_galaxies": len(g), "n_stars": len(cat.stars), "bands": bands,
        "reference_files": [str(COUNTS_REFERENCE.name), str(MODEL_REFERENCE.name)],
        "min_per_bin": MIN_PER_BIN, "ref_band_limit": limit,
        "checks": [c.as_dict() for c in checks],
        "passed": all(c.passed for c in checks),
        "galaxy_density_arcmin2": round(len(g) / float(area_arcmin2), 3),
    }
    result = ValidationResult(checks, bins_table, summary)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        p = out / "validation_summary.json"
        p.write_text(json.dumps(summary, indent=1, default=float))
        result.files["summary"] = p
        bp = out / "validation_bins.ecsv"
        bins_table.write(bp, format="ascii.ecsv", overwrite=True)
        result.files["bins"] = bp
        if plots:
            result.files.update(_plots(cat, bands, bins_table, model, out, label))
    return result


def _catalog_limit(cat, ref_mag: np.ndarray | None) -> float:
    """The catalog's faint limit in the reference band: its ``mag_limit`` (generator or
    reader) or, failing that, its faintest reference-band magnitude."""
    for key in ("mag_limit",):
        v = cat.meta.get(key)
        if v is not None:
            return float(v)
    params = cat.meta.get("params") or {}
    if isinstance(params, dict) and params.get("mag_limit") is not None:
        return float(params["mag_limit"])
    if ref_mag is not None and np.isfinite(ref_mag).any():
        return float(np.nanmax(ref_mag))
    return float(MAG_BINS[-1])


def _model_counts(rows, limit: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Model counts in a band for a catalog limited at ``limit`` in the reference band, and
    the bins those counts are exact for (unchanged between the two tabulated limits that
    bracket ``limit``)."""
    if not len(rows):
        return np.full(n_bins, np.nan), np.zeros(n_bins, dtype=bool)
    above = [lim for lim in REF_LIMITS if lim >= limit - 1e-9]
    below = [lim for lim in REF_LIMITS if lim <= limit + 1e-9]
    if not above:
        return np.asarray(rows["log10_n_deg2_mag"], dtype=float), np.ones(n_bins, dtype=bool)
    hi_col = np.asarray(rows[_limit_column(above[0])], dtype=float)
    if not below:
        return hi_col, np.zeros(n_bins, dtype=bool)
    lo_col = np.asarray(rows[_limit_column(below[-1])], dtype=float)
    with np.errstate(invalid="ignore"):
        same = np.isfinite(hi_col) & np.isfinite(lo_col) & (np.abs(hi_col - lo_col) < 0.02)
    return hi_col, same


def _binned_check(rows, checks, quantity: str, band: str, ref_mag: np.ndarray,
                  values: np.ndarray, model_rows, ref_col: str, tol: float, unit: str,
                  complete: np.ndarray) -> None:
    lo, hi = MAG_BINS[:-1], MAG_BINS[1:]
    ref = (np.asarray(model_rows[ref_col], dtype=float) if len(model_rows)
           else np.full(len(lo), np.nan))
    n_judged = n_failed = 0
    worst = np.nan
    for i in range(len(lo)):
        sel = (ref_mag >= lo[i]) & (ref_mag < hi[i]) & np.isfinite(values)
        v = values[sel]
        med = float(np.median(v)) if len(v) else np.nan
        dev = med - ref[i]
        judged = bool(len(v) >= MIN_PER_BIN and np.isfinite(ref[i]) and complete[i])
        failed = judged and abs(dev) > tol + 2.0 * _median_sigma(v)
        if judged:
            n_judged += 1
            n_failed += failed
            worst = abs(dev) if not np.isfinite(worst) else max(worst, abs(dev))
        rows.append({"quantity": quantity, "band": band, "mag_lo": lo[i], "mag_hi": hi[i],
                     "n": len(v), "value": med, "reference": ref[i], "deviation": dev,
                     "judged": bool(judged), "failed": bool(failed)})
    checks.append(Check(quantity, band, n_judged, n_failed, float(worst), tol, unit,
                        "model_relations.ecsv"))


def _plots(cat, bands, bins_table, model, out: Path, label: str) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, Path] = {}
    g = cat.galaxies
    # counts
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for band in bands:
        rows = bins_table[(bins_table["quantity"] == "log10_counts")
                          & (bins_table["band"] == band)]
        if not len(rows):
            continue
        x = 0.5 * (np.asarray(rows["mag_lo"]) + np.asarray(rows["mag_hi"]))
        line, = ax.plot(x, rows["value"], "o", ms=4, label=f"{band}")
        ax.plot(x, rows["reference"], "-", color=line.get_color(), lw=1, alpha=0.8)
    ax.set_xlabel("AB magnitude")
    ax.set_ylabel("log10 N / deg$^2$ / mag")
    ax.set_title(f"{label}: galaxy counts (points) vs reference (lines)")
    ax.legend(fontsize=7, ncol=2)
    files["counts_plot"] = _save(fig, out / "counts.png")
    if mag_column(REF_BAND) not in g.colnames:
        return files
    ref_mag = np.asarray(g[mag_column(REF_BAND)], dtype=float)
    sel = model[model["band"] == REF_BAND]
    x = 0.5 * (np.asarray(sel["mag_lo"]) + np.asarray(sel["mag_hi"]))
    # sizes
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.plot(ref_mag, np.asarray(g["radius"], dtype=float), ".", ms=2, alpha=0.5,
            label="catalog")
    ax.plot(x, 10 ** np.asarray(sel["log10_radius_p50"]), "k-", label="reference median")
    ax.fill_between(x, 10 ** np.asarray(sel["log10_radius_p16"]),
                    10 ** np.asarray(sel["log10_radius_p84"]), color="k", alpha=0.15,
                    label="reference 16-84%")
    ax.set_yscale("log")
    ax.set_xlabel(f"{REF_BAND} (AB)")
    ax.set_ylabel("half-light radius, major axis (arcsec)")
    ax.set_title(f"{label}: size-magnitude")
    ax.legend(fontsize=7)
    files["sizes_plot"] = _save(fig, out / "sizes.png")
    # colours
    others = [b for b in bands if b != REF_BAND]
    if others:
        fig, axes = plt.subplots(len(others), 1, figsize=(6.4, 2.2 * len(others)),
                                 sharex=True, squeeze=False)
        for ax, band in zip(axes[:, 0], others, strict=True):
            c = np.asarray(g[mag_column(band)], dtype=float) - ref_mag
            ax.plot(ref_mag, c, ".", ms=2, alpha=0.5)
            rows = model[model["band"] == band]
            if len(rows):
                ax.plot(x, rows["colour_p50"], "k-")
                ax.fill_between(x, rows["colour_p16"], rows["colour_p84"], color="k",
                                alpha=0.15)
            ax.set_ylabel(f"{band}-{REF_BAND}")
        axes[-1, 0].set_xlabel(f"{REF_BAND} (AB)")
        axes[0, 0].set_title(f"{label}: colours vs reference median and 16-84%")
        files["colours_plot"] = _save(fig, out / "colours.png")
    # redshift
    if "redshift" in g.colnames and np.isfinite(np.asarray(g["redshift"], float)).any():
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        ax.plot(ref_mag, np.asarray(g["redshift"], dtype=float), ".", ms=2, alpha=0.5)
        ax.plot(x, 10 ** np.asarray(sel["log10_1pz_p50"]) - 1, "k-", label="reference median")
        ax.fill_between(x, 10 ** np.asarray(sel["log10_1pz_p16"]) - 1,
                        10 ** np.asarray(sel["log10_1pz_p84"]) - 1, color="k", alpha=0.15)
        ax.set_xlabel(f"{REF_BAND} (AB)")
        ax.set_ylabel("redshift")
        ax.set_title(f"{label}: redshift-magnitude")
        files["redshift_plot"] = _save(fig, out / "redshift.png")
    return files


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":  # pragma: no cover - rebuilds the shipped reference files
    REFERENCE_DIR.mkdir(exist_ok=True)
    build_counts_reference(COUNTS_REFERENCE)
    build_model_relations(MODEL_REFERENCE)
    print(f"wrote {COUNTS_REFERENCE} and {MODEL_REFERENCE}")
