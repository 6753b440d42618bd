"""Cosmology of the catalog readers: angular-diameter distances and proper size -> angle.

:func:`angular_diameter_distance_mpc` (Mpc) is a cubic spline of astropy's transverse
comoving distance for many redshifts at once; :func:`kpc_to_arcsec` turns a proper size
(kpc) at a redshift into an angle (arcsec). Cosmologies are astropy realisations by name
(:data:`DEFAULT_COSMOLOGY`).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from simval.catalogs.model import CatalogError
from simval.constants import ARCSEC_PER_RAD

if TYPE_CHECKING:
    from astropy.cosmology import Cosmology
    from numpy.typing import ArrayLike

__all__ = ["DEFAULT_COSMOLOGY", "angular_diameter_distance_mpc", "get_cosmology",
           "kpc_to_arcsec"]

DEFAULT_COSMOLOGY = "Planck18"
_KPC_PER_MPC = 1000.0


@functools.lru_cache(maxsize=16)
def get_cosmology(name: str) -> Cosmology:
    """An astropy cosmology realisation by name (``Planck18``, ``WMAP9``, ...)."""
    import astropy.cosmology as ac
    from astropy.cosmology import realizations

    if name not in realizations.available:
        raise CatalogError(f"catalog.cosmology: unknown cosmology {name!r}; astropy provides "
                           f"{', '.join(realizations.available)}")
    return getattr(ac, name)


def angular_diameter_distance_mpc(z: ArrayLike, cosmology: str = DEFAULT_COSMOLOGY) -> np.ndarray:
    """Angular-diameter distance (Mpc) at redshifts ``z``.

    For more than 64 redshifts, astropy's transverse comoving distance D_M is evaluated on a
    grid of 800 points uniform in log(1+z) up to max(z), and the smooth ratio D_M(z) / z is
    interpolated with a cubic spline; D_A = D_M / (1 + z). Relative error < 1e-7 against
    astropy for 0.002 <= z <= 20 (a per-galaxy astropy call costs ~25 us with massive
    neutrinos).
    """
    from scipy.interpolate import CubicSpline

    z = np.asarray(z, dtype=float)
    cosmo = get_cosmology(cosmology)
    if z.size <= 64:
        return np.asarray(cosmo.angular_diameter_distance(z).to_value("Mpc"), dtype=float)
    zmax = float(np.nanmax(z))
    if not np.isfinite(zmax):
        raise CatalogError("redshifts must be finite to convert sizes")
    grid = np.expm1(np.linspace(math.log1p(1e-4), math.log1p(max(zmax, 0.01)) * 1.0001, 800))
    dm = np.asarray(cosmo.comoving_transverse_distance(grid).to_value("Mpc"), dtype=float)
    spline = CubicSpline(np.log1p(grid), dm / grid)
    zc = np.clip(z, grid[0], None)
    out = spline(np.log1p(zc)) * zc / (1.0 + zc)
    small = z < grid[0]
    if small.any():
        out[small] = np.asarray(cosmo.angular_diameter_distance(z[small]).to_value("Mpc"))
    return out


def kpc_to_arcsec(r_kpc: ArrayLike, z: ArrayLike, cosmology: str = DEFAULT_COSMOLOGY
                  ) -> np.ndarray:
    """Proper size ``r_kpc`` (kpc) at redshift ``z`` -> angle (arcsec): r / D_A(z)."""
    r = np.asarray(r_kpc, dtype=float)
    da_kpc = angular_diameter_distance_mpc(z, cosmology) * _KPC_PER_MPC
    return r / da_kpc * ARCSEC_PER_RAD
