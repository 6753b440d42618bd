"""The ``simple`` catalog generator: stars and Sersic galaxies spread uniformly over a plan.

A scenario's ``catalog: {generator: {kind: simple, n_stars, n_galaxies, mag_range, seed}}``
becomes a :class:`~simval.catalogs.SourceCatalog` (a star table and a galaxy table in the
column conventions of :mod:`simval.simulate.mirage_catalogs`, with one AB magnitude column
per passband, ``mag_<band>``).

What is drawn (all from ``numpy.random.default_rng`` seeded by ``seed``; stars and galaxies
use independent streams, so changing ``n_galaxies`` does not move the stars):

* **Positions**: uniform over the plan's *footprint* — the union of every exposure's
  aperture, grown by ``margin_arcsec`` (default 2 arcsec, so that sources just off an edge
  still throw their PSF wings onto it). Points are drawn uniformly in the tangent plane of
  the field centre (gnomonic; over an arcminute the area distortion is < 1e-7) inside the
  footprint's bounding box and kept if they fall inside it (:class:`simval.sky.Footprint`).
* **Magnitudes**: AB, uniform in ``mag_range``; the same in every band (a flat f_nu
  spectrum, colour 0). The per-band columns let catalogs with colours share the schema.
* **Galaxy shapes** (MIRAGE's Sersic conventions, see :mod:`simval.simulate.mirage_catalogs`):

  - ``radius``: half-light radius along the major axis, arcsec; log-normal with median
    ``0.30 * 10**(-0.1 * (mag - 21))`` arcsec (fainter galaxies are smaller, roughly the
    slope of observed size-magnitude relations) and 0.15 dex scatter, clipped to
    [0.05, 1.0] arcsec;
  - ``sersic_index``: log-uniform in [0.8, 4] (discs to spheroids);
  - ``axis_ratio`` b/a uniform in [0.3, 1]; ``ellipticity = 1 - axis_ratio``;
  - ``pos_angle``: major-axis position angle, uniform in [0, 180) deg East of North.

``index`` numbers stars 1..N and galaxies N+1..N+M (MIRAGE's rule: unique, disjoint ranges,
>= 1); every exposure uses the same numbers, so truth lists join on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simval.catalogs.model import SourceCatalog, mag_column
from simval.sky import (
    DEFAULT_MARGIN_ARCSEC,
    Footprint,
    from_tangent,
    to_tangent,
    uniform_positions,
)

if TYPE_CHECKING:
    from simval.plan import Plan

__all__ = ["DEFAULT_MARGIN_ARCSEC", "Footprint", "from_tangent", "galaxy_shapes",
           "generate_simple", "to_tangent", "uniform_positions"]

RADIUS_MEDIAN_AT_21_ARCSEC = 0.30
RADIUS_SLOPE_DEX_PER_MAG = -0.1
RADIUS_SCATTER_DEX = 0.15
RADIUS_LIMITS_ARCSEC = (0.05, 1.0)
SERSIC_LIMITS = (0.8, 4.0)
AXIS_RATIO_LIMITS = (0.3, 1.0)


# --- the generator ------------------------------------------------------------------------

def galaxy_shapes(mags: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sersic parameters for galaxies of AB magnitude ``mags`` (see module docstring)."""
    n = len(mags)
    log_r = (np.log10(RADIUS_MEDIAN_AT_21_ARCSEC) + RADIUS_SLOPE_DEX_PER_MAG * (mags - 21.0)
             + rng.normal(0.0, RADIUS_SCATTER_DEX, n))
    radius = np.clip(10.0 ** log_r, *RADIUS_LIMITS_ARCSEC)
    sersic = 10.0 ** rng.uniform(np.log10(SERSIC_LIMITS[0]), np.log10(SERSIC_LIMITS[1]), n)
    q = rng.uniform(*AXIS_RATIO_LIMITS, n)
    pa = rng.uniform(0.0, 180.0, n)
    return {"radius": radius, "sersic_index": sersic, "axis_ratio": q,
            "ellipticity": 1.0 - q, "pos_angle": pa}


def generate_simple(plan: Plan, *, n_stars: int, n_galaxies: int,
                    mag_range: tuple[float, float] | list[float], seed: int,
                    bands: list[str] | None = None,
                    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC) -> SourceCatalog:
    """Stars and Sersic galaxies uniform over ``plan``'s footprint (module docstring).

    Parameters
    ----------
    plan : the plan whose exposures define the footprint.
    n_stars, n_galaxies : numbers of sources.
    mag_range : [bright, faint] AB magnitudes; magnitudes are uniform in between.
    seed : seed of every draw (same seed and plan -> identical tables).
    bands : passbands with a magnitude column (default: the plan's products' filters).
    margin_arcsec : growth of the footprint beyond the apertures, arcsec.

    Returns
    -------
    :class:`simval.catalogs.SourceCatalog`
    """
    from astropy.table import Table

    lo, hi = float(mag_range[0]), float(mag_range[1])
    if not lo < hi:
        raise ValueError(f"mag_range must be [bright, faint] with bright < faint, got "
                         f"{list(mag_range)}")
    if n_stars < 0 or n_galaxies < 0:
        raise ValueError("n_stars and n_galaxies must be >= 0")
    bands = list(bands) if bands is not None else [p.filter_name for p in plan.products]
    footprint = Footprint.of_plan(plan, margin_arcsec)
    rng_stars = np.random.default_rng([int(seed), 1])
    rng_gals = np.random.default_rng([int(seed), 2])

    def table(n: int, rng: np.random.Generator, start: int) -> Table:
        ra, dec = uniform_positions(footprint, n, rng)
        mags = rng.uniform(lo, hi, n)
        t = Table()
        t["index"] = np.arange(start, start + n, dtype=np.int64)
        t["ra"], t["dec"] = ra, dec
        t["ra"].unit = t["dec"].unit = "deg"
        for band in bands:
            t[mag_column(band)] = mags
        return t

    stars = table(n_stars, rng_stars, 1)
    galaxies = table(n_galaxies, rng_gals, n_stars + 1)
    mags = np.asarray(galaxies[mag_column(bands[0])]) if bands else np.zeros(n_galaxies)
    for name, values in galaxy_shapes(mags, rng_gals).items():
        galaxies[name] = values
    galaxies["radius"].unit = "arcsec"
    galaxies["pos_angle"].unit = "deg"
    meta = {"generator": "simple", "seed": int(seed), "mag_range": [lo, hi],
            "margin_arcsec": float(margin_arcsec), "bands": bands,
            "footprint_area_arcsec2": round(footprint.area_arcsec2(), 3)}
    return SourceCatalog(stars=stars, galaxies=galaxies, meta=meta)
