"""An absolute astrometric reference catalog drawn from the input catalog's stars.

tweakreg's ``abs_refcat`` takes a table with ``RA`` and ``DEC`` (deg). Over a deep field Gaia
holds a few stars per detector, brighter than G ~ 21, with sub-mas to mas errors; this list
plays that part: the run's stars within a magnitude range in the mosaic's band, each moved by
a seeded Gaussian error of ``noise_mas`` per axis and by a common ``bias_mas`` (a biased
reference: the fault tweakreg should carry into the whole mosaic).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from simval.atomic import atomic_path
from simval.catalogs.model import mag_column

__all__ = ["reference_catalog", "write_reference_catalog"]

MAS_PER_DEG = 3.6e6


def reference_catalog(stars: Table, band: str, *, min_mag: float, max_mag: float,
                      noise_mas: float = 0.0, bias_mas: Sequence[float] = (0.0, 0.0),
                      rng: np.random.Generator | None = None) -> Table:
    """``RA``, ``DEC`` (deg), ``mag`` (AB in ``band``) and ``index`` of the stars with
    ``min_mag <= mag < max_mag``, positions moved by ``bias_mas`` + N(0, ``noise_mas``) per
    axis (RA cos Dec, Dec; mas). ``ValueError`` naming the column if ``band`` has none."""
    col = mag_column(band)
    if len(stars) and col not in stars.colnames:
        raise ValueError(f"the run's star catalog has no {col!r} column for {band}")
    if not len(stars):
        return Table({"RA": np.zeros(0), "DEC": np.zeros(0), "mag": np.zeros(0),
                      "index": np.zeros(0, np.int64)})
    mag = np.asarray(stars[col], float)
    keep = np.isfinite(mag) & (mag >= min_mag) & (mag < max_mag)
    ra = np.asarray(stars["ra"], float)[keep]
    dec = np.asarray(stars["dec"], float)[keep]
    d_ra = np.full(ra.size, float(bias_mas[0]))
    d_dec = np.full(ra.size, float(bias_mas[1]))
    if noise_mas > 0:
        gen = rng if rng is not None else np.random.default_rng(0)
        d_ra = d_ra + gen.normal(0.0, noise_mas, ra.size)
        d_dec = d_dec + gen.normal(0.0, noise_mas, ra.size)
    cosd = np.cos(np.radians(dec))
    table = Table()
    table["RA"] = (ra + d_ra / MAS_PER_DEG / np.where(cosd > 0, cosd, math.nan)) % 360.0
    table["DEC"] = dec + d_dec / MAS_PER_DEG
    table["mag"] = mag[keep]
    table["index"] = np.asarray(stars["index"], np.int64)[keep]
    table.meta.update({"band": band.upper(), "min_mag": min_mag, "max_mag": max_mag,
                       "noise_mas": noise_mas, "bias_mas": [float(b) for b in bias_mas],
                       "origin": "simval: stars of the run's input catalog"})
    return table


def write_reference_catalog(table: Table, path: str | os.PathLike) -> Path:
    """Write ``table`` as ECSV, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    return path
