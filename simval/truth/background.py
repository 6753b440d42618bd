"""The true sky of every exposure of a run, and what the simulator and skymatch made of it.

:func:`true_backgrounds` gives, per exposure, the injected sky (MJy/sr), the rate MIRAGE
was given and put into its noiseless seed image (ADU/s/pixel), the conversion back to
MJy/sr with the simulator's PHOTMJSR (else the cal file's), and the sky level skymatch
recorded (from the image3 stage's ``_background.json``, else the i2d's ``HDRTAB``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.layout import RunLayout
from simval.plan import load_plan
from simval.truth.exposures import mirage_bkgdrate, mirage_photmjsr
from simval.truth.rundir import TruthError, as_layout, asn_members, file_ending

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Exposure, Plan, Product

__all__ = ["true_backgrounds"]


def _background_file(layout: RunLayout, product: Product) -> dict:
    """``image3/<product>/<product>_background.json`` (written by the image3 stage), or {}."""
    path = layout.product_file(product.name, "_background.json")
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise TruthError(f"{path}: not valid JSON ({exc})") from exc
    return doc if isinstance(doc, dict) else {}


def _levels(doc: dict, key: str) -> dict[str, float]:
    """Member base name -> level (MJy/sr) of one entry of the background file."""
    levels = doc.get(key) or {}
    return {k.removesuffix("_cal.fits"): float(v) for k, v in levels.items() if v is not None}


def _skymatch_levels(layout: RunLayout, product: Product) -> tuple[dict[str, float], str]:
    """Sky levels skymatch found for the members of a product, by base name (MJy/sr), and
    where they came from: the image3 stage's ``_background.json``, else the i2d's
    ``HDRTAB`` (``BKGLEVEL`` per input, in association order)."""
    out = _levels(_background_file(layout, product), "skymatch_levels_mjysr")
    if out:
        return out, layout.rel(layout.product_file(product.name, "_background.json"))
    i2d = layout.product_dir(product.name) / product.i2d_name
    if i2d.is_file():
        from astropy.io import fits

        with fits.open(i2d) as hdul:
            if "HDRTAB" in hdul and "BKGLEVEL" in hdul["HDRTAB"].columns.names:
                levels = np.asarray(hdul["HDRTAB"].data["BKGLEVEL"], float)
                members = asn_members(layout, product)
                if len(members) == len(levels):
                    return ({m: float(v) for m, v in zip(members, levels, strict=True)
                             if np.isfinite(v)}, f"{layout.rel(i2d)} HDRTAB")
    return {}, ""


def _seed_sky(exposure_dir: Path) -> float:
    """Sky rate of MIRAGE's noiseless seed image, ADU/s: the median of ``final - point
    sources - galaxies`` (exact where MIRAGE added only the sky), as the simulate stage
    recorded it in ``<base>_seed_sky.json`` (or, for a run made before, from the
    per-component seed images themselves); NaN if not available."""
    from astropy.io import fits

    recorded = file_ending(exposure_dir, "_seed_sky.json")
    if recorded is not None:
        return float(json.loads(recorded.read_text())["seed_sky_adu_s"])
    final = file_ending(exposure_dir, "_final_seed_image.fits")
    if final is None:
        return float("nan")
    data = np.asarray(fits.getdata(final, 1), float)
    for suffix in ("_ptsrc_seed_image.fits", "_galaxy_seed_image.fits"):
        part = file_ending(exposure_dir, suffix)
        if part is not None:
            data = data - np.asarray(fits.getdata(part, 1), float)
    return float(np.median(data))


def _photmjsr(layout: RunLayout, exposure: Exposure) -> float:
    """The simulator's PHOTMJSR (:func:`~simval.truth.exposures.mirage_photmjsr`), else the
    cal file's; NaN without either."""
    from astropy.io import fits

    simulated = mirage_photmjsr(layout, exposure)
    if simulated is not None:
        return simulated
    path = layout.image2 / exposure.cal_name
    if path.is_file():
        value = fits.getheader(path, "SCI").get("PHOTMJSR")
        if value is not None:
            return float(value)
    return float("nan")


def true_backgrounds(run: str | os.PathLike | RunLayout, plan: Plan | None = None) -> Table:
    """The injected sky of every exposure and what the simulator and skymatch made of it.

    Columns: ``exposure`` (base name), ``filter``, ``product``, ``injected_mjysr`` (the
    scenario's sky, MJy/sr), ``bkgdrate_adu_s`` (the rate MIRAGE was given, ADU/s/pixel),
    ``seed_sky_adu_s`` (the sky in MIRAGE's noiseless seed image, ADU/s; NaN without it),
    ``photmjsr`` (PHOTMJSR of the photom reference MIRAGE simulated with, else of the cal
    file, MJy/sr per ADU/s; NaN without either),
    ``simulated_mjysr`` (``seed_sky_adu_s`` or ``bkgdrate_adu_s`` times ``photmjsr``: the
    sky the cal file should hold), ``conversion_ratio`` (``simulated / injected``, 1 when
    the run converted MJy/sr to MIRAGE's rate with the pipeline's own PHOTMJSR),
    ``skymatch_level_mjysr`` (``meta.background.level``, NaN if none was recorded) and
    ``subtracted_level_mjysr`` (the ``median_masked`` recipe's level, else NaN).
    ``meta["skymatch_source"]`` names where the levels came from.

    Parameters
    ----------
    run : path or RunLayout
    plan : Plan, optional
        Read from ``plan.json`` if None.

    Returns
    -------
    astropy.table.Table
    """
    from astropy.table import Table

    layout = as_layout(run)
    plan = plan if plan is not None else load_plan(layout)
    rows = []
    sources = {}
    for product in plan.products:
        levels, source = _skymatch_levels(layout, product)
        subtracted = _levels(_background_file(layout, product), "subtracted_levels_mjysr")
        sources[product.filter_name] = source
        for e in plan.exposures_in(product):
            rate = mirage_bkgdrate(layout, e)
            seed = _seed_sky(layout.exposure_dir(e.base_name)) \
                if layout.exposure_dir(e.base_name).is_dir() else float("nan")
            phot = _photmjsr(layout, e)
            adu = seed if np.isfinite(seed) else (rate if rate is not None else float("nan"))
            sim = adu * phot
            rows.append((e.base_name, product.filter_name, product.name, e.background_mjysr,
                         float("nan") if rate is None else rate, seed, phot, sim,
                         sim / e.background_mjysr if e.background_mjysr else float("nan"),
                         levels.get(e.base_name, float("nan")),
                         subtracted.get(e.base_name, float("nan"))))
    names = ("exposure", "filter", "product", "injected_mjysr", "bkgdrate_adu_s",
             "seed_sky_adu_s", "photmjsr", "simulated_mjysr", "conversion_ratio",
             "skymatch_level_mjysr", "subtracted_level_mjysr")
    if rows:
        table = Table(rows=rows, names=names)
    else:
        table = Table(names=names, dtype=[str, str, str] + [float] * 8)
    table.meta = {"skymatch_source": sources,
                  "units": {"injected_mjysr": "MJy/sr", "bkgdrate_adu_s": "ADU/s/pixel",
                            "seed_sky_adu_s": "ADU/s/pixel", "photmjsr": "MJy/sr/(ADU/s)",
                            "simulated_mjysr": "MJy/sr", "skymatch_level_mjysr": "MJy/sr",
                            "subtracted_level_mjysr": "MJy/sr"}}
    return table
