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
  footprint's bounding box and kept if they fall inside it (:class:`Footprint`).
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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simval import offline

if TYPE_CHECKING:
    from simval.plan import Plan

#: Default growth of the footprint beyond the apertures, arcsec.
DEFAULT_MARGIN_ARCSEC = 2.0
RADIUS_MEDIAN_AT_21_ARCSEC = 0.30
RADIUS_SLOPE_DEX_PER_MAG = -0.1
RADIUS_SCATTER_DEX = 0.15
RADIUS_LIMITS_ARCSEC = (0.05, 1.0)
SERSIC_LIMITS = (0.8, 4.0)
AXIS_RATIO_LIMITS = (0.3, 1.0)
_ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0


def _siaf():
    return offline.nircam_siaf()


def _rotations():
    return offline.siaf_rotations()


# --- tangent plane ------------------------------------------------------------------------

def to_tangent(ra_deg, dec_deg, ra0_deg: float, dec0_deg: float):
    """Gnomonic projection about (ra0, dec0): sky (deg) -> (xi, eta) in arcsec."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    cosc = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.cos(dec) * np.sin(ra - ra0) / cosc
    eta = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cosc
    return xi * _ARCSEC_PER_RAD, eta * _ARCSEC_PER_RAD


def from_tangent(xi_arcsec, eta_arcsec, ra0_deg: float, dec0_deg: float):
    """Inverse of :func:`to_tangent`: (xi, eta) arcsec -> (ra, dec) deg, ra in [0, 360)."""
    xi, eta = np.asarray(xi_arcsec) / _ARCSEC_PER_RAD, np.asarray(eta_arcsec) / _ARCSEC_PER_RAD
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    denom = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


# --- footprint ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pointing:
    aperture: str
    attitude: np.ndarray


@dataclass(frozen=True)
class Footprint:
    """The sky covered by a set of exposures, grown by ``margin_arcsec``.

    ``pointings``: (SIAF aperture, attitude matrix) of each distinct exposure;
    ``ra0_deg``, ``dec0_deg``: centre of the tangent plane (the field centre).
    """

    pointings: tuple[_Pointing, ...]
    ra0_deg: float
    dec0_deg: float
    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC

    @classmethod
    def of_plan(cls, plan: Plan, margin_arcsec: float = DEFAULT_MARGIN_ARCSEC,
                base_names: list[str] | None = None) -> Footprint:
        """Footprint of ``plan``'s exposures (or of those named in ``base_names``)."""
        seen: dict[tuple, _Pointing] = {}
        for e in plan.exposures:
            if base_names is not None and e.base_name not in base_names:
                continue
            key = (e.aperture, e.ra_ref_deg, e.dec_ref_deg, e.roll_ref_deg)
            if key not in seen:
                seen[key] = _Pointing(e.aperture, e.attitude_matrix())
        if not seen:
            raise ValueError("a footprint needs at least one exposure")
        return cls(tuple(seen.values()), plan.ra_deg, plan.dec_deg, float(margin_arcsec))

    def corners_tangent(self) -> tuple[np.ndarray, np.ndarray]:
        """Tangent-plane coordinates (arcsec) of every aperture corner."""
        rot = _rotations()
        xs, ys = [], []
        for p in self.pointings:
            v2, v3 = _siaf()[p.aperture].corners("tel")
            ra, dec = rot.pointing(p.attitude, np.asarray(v2), np.asarray(v3))
            x, y = to_tangent(ra, dec, self.ra0_deg, self.dec0_deg)
            xs.append(np.atleast_1d(x))
            ys.append(np.atleast_1d(y))
        return np.concatenate(xs), np.concatenate(ys)

    def bounding_box(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) in the tangent plane, arcsec, margin included."""
        x, y = self.corners_tangent()
        m = self.margin_arcsec
        return float(x.min() - m), float(x.max() + m), float(y.min() - m), float(y.max() + m)

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        """Boolean array: inside at least one aperture grown by the margin."""
        rot = _rotations()
        ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
        dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
        inside = np.zeros(ra.shape, dtype=bool)
        for p in self.pointings:
            ap = _siaf()[p.aperture]
            v2, v3 = rot.getv2v3(p.attitude, ra, dec)
            x, y = ap.tel_to_idl(np.asarray(v2), np.asarray(v3))
            cx, cy = (np.asarray(c, dtype=float) for c in ap.corners("idl"))
            inside |= _in_convex_polygon(np.asarray(x), np.asarray(y), cx, cy,
                                         self.margin_arcsec)
        return inside

    def area_arcsec2(self, n: int = 200_000, seed: int = 0) -> float:
        """Monte-Carlo area of the footprint, arcsec^2 (for diagnostics)."""
        rng = np.random.default_rng(seed)
        x0, x1, y0, y1 = self.bounding_box()
        x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
        ra, dec = from_tangent(x, y, self.ra0_deg, self.dec0_deg)
        return float(self.contains(ra, dec).mean() * (x1 - x0) * (y1 - y0))


def _in_convex_polygon(x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                       margin: float) -> np.ndarray:
    """Points within ``margin`` of the inside of the convex polygon (cx, cy) (any winding)."""
    area2 = np.sum(cx * np.roll(cy, -1) - np.roll(cx, -1) * cy)
    sign = 1.0 if area2 > 0 else -1.0
    ok = np.ones(x.shape, dtype=bool)
    for i in range(len(cx)):
        ex, ey = cx[(i + 1) % len(cx)] - cx[i], cy[(i + 1) % len(cy)] - cy[i]
        dist = sign * (ex * (y - cy[i]) - ey * (x - cx[i])) / np.hypot(ex, ey)
        ok &= dist >= -margin
    return ok


def uniform_positions(footprint: Footprint, n: int, rng: np.random.Generator):
    """``n`` positions (ra, dec deg) uniform over ``footprint`` (rejection sampling)."""
    x0, x1, y0, y1 = footprint.bounding_box()
    ras, decs, have = [], [], 0
    for _ in range(1000):
        if have >= n:
            break
        batch = max(64, 2 * (n - have))
        ra, dec = from_tangent(rng.uniform(x0, x1, batch), rng.uniform(y0, y1, batch),
                               footprint.ra0_deg, footprint.dec0_deg)
        keep = footprint.contains(ra, dec)
        ras.append(ra[keep])
        decs.append(dec[keep])
        have += int(keep.sum())
    else:  # pragma: no cover - only for a degenerate footprint
        raise RuntimeError("could not place sources in the footprint")
    ra = np.concatenate(ras)[:n] if ras else np.zeros(0)
    dec = np.concatenate(decs)[:n] if decs else np.zeros(0)
    return ra, dec


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
                    margin_arcsec: float = DEFAULT_MARGIN_ARCSEC):
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

    from simval.catalogs import SourceCatalog, mag_column

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
