"""Sky geometry: gnomonic projection, angular distances, exposure footprints.

Angles on the sky are in degrees (RA, Dec, ICRS), tangent-plane coordinates ``(xi, eta)``
in arcsec about a tangent point, ``xi`` towards East and ``eta`` towards North.
A :class:`Footprint` is the union of a set of exposures' SIAF apertures, grown by a margin;
it reads only ``plan.exposures`` (aperture and attitude of each) and ``plan.ra_deg/dec_deg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simval import offline
from simval.constants import ARCSEC_PER_RAD

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from simval.plan import Plan

__all__ = ["DEFAULT_MARGIN_ARCSEC", "Footprint", "angular_distance_deg", "from_tangent",
           "move_offsets", "standard_coordinates", "to_tangent", "uniform_positions"]

#: Default growth of a footprint beyond the apertures, arcsec (PSF wings of sources just off
#: an edge still fall on it).
DEFAULT_MARGIN_ARCSEC = 2.0


def _rotations():
    return offline.siaf_rotations()


# --- tangent plane ------------------------------------------------------------------------

def standard_coordinates(ra_deg: ArrayLike, dec_deg: ArrayLike, ra0_deg: ArrayLike,
                         dec0_deg: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection about (ra0, dec0) (scalars, or one tangent point per position):
    sky (deg) -> standard coordinates (xi, eta) in radians, xi east, eta north."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    cosc = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.cos(dec) * np.sin(ra - ra0) / cosc
    eta = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cosc
    return xi, eta


def to_tangent(ra_deg: ArrayLike, dec_deg: ArrayLike, ra0_deg: float, dec0_deg: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection about (ra0, dec0): sky (deg) -> (xi, eta) in arcsec."""
    xi, eta = standard_coordinates(ra_deg, dec_deg, ra0_deg, dec0_deg)
    return xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD


def from_tangent(xi_arcsec: ArrayLike, eta_arcsec: ArrayLike, ra0_deg: float, dec0_deg: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_tangent`: (xi, eta) arcsec -> (ra, dec) deg, ra in [0, 360)."""
    xi, eta = np.asarray(xi_arcsec) / ARCSEC_PER_RAD, np.asarray(eta_arcsec) / ARCSEC_PER_RAD
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    denom = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def angular_distance_deg(ra_deg: ArrayLike, dec_deg: ArrayLike, ra0_deg: float,
                         dec0_deg: float) -> np.ndarray:
    """Great-circle distance (deg) of points from (ra0, dec0) (astropy's Vincenty formula)."""
    from astropy.coordinates import angular_separation

    return np.degrees(angular_separation(np.radians(ra_deg), np.radians(dec_deg),
                                         np.radians(ra0_deg), np.radians(dec0_deg)))


def move_offsets(ra_deg: ArrayLike, dec_deg: ArrayLike, ra0_deg: float, dec0_deg: float,
                 origin: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Move sources given about ``origin`` onto (ra0, dec0) by a rigid rotation of the
    sphere (North kept up at the centre). Returns (ra in [0, 360), dec), deg."""
    xi, eta = to_tangent(np.asarray(ra_deg, float), np.asarray(dec_deg, float), *origin)
    return from_tangent(xi, eta, ra0_deg, dec0_deg)


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
            v2, v3 = offline.siaf_aperture(p.aperture).corners("tel")
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

    def contains(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> np.ndarray:
        """Boolean array: inside at least one aperture grown by the margin."""
        rot = _rotations()
        ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
        dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
        inside = np.zeros(ra.shape, dtype=bool)
        for p in self.pointings:
            ap = offline.siaf_aperture(p.aperture)
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


def uniform_positions(footprint: Footprint, n: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
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
