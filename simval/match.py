"""One-to-one sky matching of a measured source catalog to the truth.

Algorithm
---------
Positions become unit vectors on the sphere; a :class:`scipy.spatial.cKDTree` on the truth
finds every (measured, truth) pair closer than the match radius (the chord length
``2 sin(theta / 2)`` is monotonic in the angle ``theta``, so a Euclidean radius in 3-D is an
exact angular radius, with no RA wrap-around or pole problems). Pairs are then ranked by a
key — the separation (``prefer="distance"``), or the magnitude difference and then the
separation (``prefer="magnitude"``, for dense mock fields where the nearest candidate is
often a faint neighbour) — and resolved *greedily in global order*: a pair is kept if
neither of its sources is already used by a better-ranked pair. No source is used twice.

The greedy pass is vectorised: a pair that ranks first among all pairs of both of its
sources is exactly a pair the sequential greedy pass would keep, so each round keeps all
such pairs at once and drops the pairs that touch a kept source; rounds repeat until no
pair is left (a handful of rounds even for a million sources).

Catalog column contract
-----------------------
**Truth table** (one row per source the simulator put in; an :class:`astropy.table.Table`
or any mapping of column name to array). Units are in the names or below.

=======================  ========  ==========================================================
column                   required  meaning
=======================  ========  ==========================================================
``ra``, ``dec``          yes       ICRS position where the simulator placed the source, deg
``mag_true_ab``          yes       total AB magnitude the simulator injected in this filter
``type``                 yes       ``"star"`` or ``"galaxy"`` (case-insensitive)
``id``                   no        the simulator's source index (MIRAGE ``index``)
``flux_true_jy``         no        total injected flux, Jy (``3631 * 10**(-0.4 m)``); report
``in_footprint``         no        bool: inside the mosaic footprint (default: all true).
                                   Completeness counts only these; matching uses all rows
                                   so that detections of sources just outside are not
                                   called spurious.
``n_exposures``          no        int: number of exposures covering the position
``has_bright_neighbour`` no        bool: a source brighter than it (or up to
                                   ``delta_mag`` fainter) within the blending radius;
                                   computed with :func:`flag_bright_neighbours` if absent
``snr_expected``         no        expected S/N of the source (for completeness above S/N);
                                   estimated from the matched sources if absent
=======================  ========  ==========================================================

**Measured table**: the ``_cat.ecsv`` of jwst's ``source_catalog`` step, read with
``astropy.table.Table.read``. Used columns: ``sky_centroid`` (SkyCoord; or ``ra``, ``dec`` in
deg), ``aper_total_abmag`` (stars), ``isophotal_abmag`` (galaxies), ``aper_total_flux`` /
``aper_total_flux_err`` and ``isophotal_flux`` / ``isophotal_flux_err`` (Jy, for S/N).
Masked entries and NaN magnitudes (non-positive flux) are treated as not measured.

Conventions
-----------
Separations and offsets in milliarcseconds (``_mas``). Offsets are *measured minus truth*
in the tangent plane of the truth position: ``dra_cosdec_mas`` positive = measured east of
truth, ``ddec_mas`` positive = measured north.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simval.constants import MAS_PER_RAD
from simval.instruments.detectors import psf_fwhm_arcsec
from simval.instruments.nircam import NIRCAM_FWHM_ARCSEC
from simval.sky import standard_coordinates

__all__ = [
    "MEASURED_COLUMNS",
    "NIRCAM_FWHM_ARCSEC",
    "TRUTH_COLUMNS",
    "MatchResult",
    "column",
    "default_match_radius",
    "flag_bright_neighbours",
    "match_catalogs",
    "match_sky",
    "radec_of",
    "sky_offsets_mas",
    "unit_vectors",
]

#: Truth columns: name -> (required, meaning). See the module docstring.
TRUTH_COLUMNS: dict[str, tuple[bool, str]] = {
    "ra": (True, "ICRS right ascension where the simulator placed the source, deg"),
    "dec": (True, "ICRS declination, deg"),
    "mag_true_ab": (True, "total injected AB magnitude in this filter"),
    "type": (True, "'star' or 'galaxy'"),
    "id": (False, "simulator source index"),
    "flux_true_jy": (False, "total injected flux, Jy"),
    "in_footprint": (False, "bool, inside the mosaic footprint (default true)"),
    "n_exposures": (False, "int, number of exposures covering the source"),
    "has_bright_neighbour": (False, "bool, brighter neighbour within the blending radius"),
    "snr_expected": (False, "expected S/N of the source"),
}

#: Measured (jwst source_catalog ECSV) columns used by the metrics: name -> meaning.
MEASURED_COLUMNS: dict[str, str] = {
    "sky_centroid": "SkyCoord of the centroid (or columns ra, dec in deg)",
    "aper_total_abmag": "aperture-corrected total AB magnitude (stars)",
    "aper_total_flux": "aperture-corrected total flux, Jy",
    "aper_total_flux_err": "its error, Jy",
    "isophotal_abmag": "isophotal AB magnitude (galaxies)",
    "isophotal_flux": "isophotal flux, Jy",
    "isophotal_flux_err": "its error, Jy",
}

Prefer = Literal["distance", "magnitude"]


def default_match_radius(band: str, factor: float = 1.0) -> float:
    """Default match radius for a NIRCam or MIRI filter: ``factor`` x the PSF FWHM, in mas.

    Parameters
    ----------
    band : str
        NIRCam filter name (``F115W``; case-insensitive; a ``F444W/CLEAR``-style pupil
        suffix is ignored).
    factor : float
        Multiple of the FWHM (1 FWHM by default: 37 mas in F115W, 140 mas in F444W).
        Centroids of extended galaxies scatter more; use a larger factor for them.

    Returns
    -------
    float
        Radius in milliarcseconds.

    Raises
    ------
    KeyError
        For a filter with no known FWHM (:func:`simval.instruments.detectors.psf_fwhm_arcsec`;
        the message lists them).
    """
    return factor * psf_fwhm_arcsec(band) * 1e3


def unit_vectors(ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.float64]:
    """Cartesian unit vectors, shape (n, 3), of ICRS positions given in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cosd = np.cos(dec)
    return np.stack([cosd * np.cos(ra), cosd * np.sin(ra), np.sin(dec)], axis=-1)


def _chord(angle_mas: float) -> float:
    return 2.0 * np.sin(0.5 * angle_mas / MAS_PER_RAD)


def _angle_mas(chord: NDArray[np.float64]) -> NDArray[np.float64]:
    return 2.0 * np.arcsin(np.clip(0.5 * chord, 0.0, 1.0)) * MAS_PER_RAD


def sky_offsets_mas(ra_deg: ArrayLike, dec_deg: ArrayLike, ra_ref_deg: ArrayLike,
                    dec_ref_deg: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Offsets of positions from reference positions, gnomonic (tangent-plane), in mas.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Positions (measured), deg.
    ra_ref_deg, dec_ref_deg : array_like
        Reference positions (truth), deg; the tangent point of each pair.

    Returns
    -------
    dra_cosdec_mas, ddec_mas : ndarray
        Standard coordinates (xi, eta) of each position about its reference, mas:
        ``dra_cosdec_mas > 0`` means east of the reference (RA larger, times cos Dec),
        ``ddec_mas > 0`` north. For small offsets ``xi = dRA cos(Dec)``, ``eta = dDec``.
    """
    xi, eta = standard_coordinates(*(np.asarray(a, dtype=np.float64)
                                     for a in (ra_deg, dec_deg, ra_ref_deg, dec_ref_deg)))
    return xi * MAS_PER_RAD, eta * MAS_PER_RAD


@dataclass(frozen=True)
class MatchResult:
    """A one-to-one match of a measured catalog (length ``n_measured``) to truth.

    Attributes
    ----------
    measured_index, truth_index : ndarray of int64, shape (n_pairs,)
        Row indices of the matched pairs, sorted by ``truth_index``.
    separation_mas : ndarray, shape (n_pairs,)
        Angular separation of each pair, mas.
    n_measured, n_truth : int
        Lengths of the two catalogs.
    radius_mas : float
        The match radius used, mas.
    prefer : {"distance", "magnitude"}
        How conflicts among candidates within the radius were resolved.
    """

    measured_index: NDArray[np.int64]
    truth_index: NDArray[np.int64]
    separation_mas: NDArray[np.float64]
    n_measured: int
    n_truth: int
    radius_mas: float
    prefer: str = "distance"

    @property
    def n_pairs(self) -> int:
        """Number of matched pairs."""
        return int(self.truth_index.size)

    @property
    def matched(self) -> NDArray[np.bool_]:
        """Truth mask, shape (n_truth,): the source has a measured counterpart."""
        out = np.zeros(self.n_truth, bool)
        out[self.truth_index] = True
        return out

    @property
    def missed(self) -> NDArray[np.bool_]:
        """Truth mask: no measured counterpart (``~matched``)."""
        return ~self.matched

    @property
    def measured_matched(self) -> NDArray[np.bool_]:
        """Measured mask, shape (n_measured,): the detection has a truth counterpart."""
        out = np.zeros(self.n_measured, bool)
        out[self.measured_index] = True
        return out

    @property
    def spurious(self) -> NDArray[np.bool_]:
        """Measured mask: no truth counterpart within the radius (``~measured_matched``)."""
        return ~self.measured_matched

    @property
    def truth_to_measured(self) -> NDArray[np.int64]:
        """For each truth row, its measured row, or -1 if missed."""
        out = np.full(self.n_truth, -1, np.int64)
        out[self.truth_index] = self.measured_index
        return out

    @property
    def measured_to_truth(self) -> NDArray[np.int64]:
        """For each measured row, its truth row, or -1 if spurious."""
        out = np.full(self.n_measured, -1, np.int64)
        out[self.measured_index] = self.truth_index
        return out


def _greedy(i: NDArray[np.int64], j: NDArray[np.int64], n_i: int, n_j: int,
            keys: tuple[NDArray[Any], ...]) -> NDArray[np.int64]:
    """Indices of the pairs kept by a greedy one-to-one pass in the order of ``keys``.

    ``keys`` are sort keys, most significant first (ties broken by i, then j, so the
    result is deterministic). Returns positions into ``i``/``j``.
    """
    order = np.argsort(keys[0], kind="stable") if len(keys) == 1 else None
    if order is None or _has_ties(keys[0][order]):
        order = np.lexsort((j, i, *reversed(keys)))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    alive = np.arange(i.size)
    kept: list[NDArray[np.int64]] = []
    big = np.iinfo(np.int64).max
    # work arrays allocated once; each round touches only the entries of live pairs
    best_i = np.full(n_i, big, np.int64)
    best_j = np.full(n_j, big, np.int64)
    used_i = np.zeros(n_i, bool)
    used_j = np.zeros(n_j, bool)
    while alive.size:
        ai, aj, ar = i[alive], j[alive], rank[alive]
        best_i[ai] = big
        best_j[aj] = big
        np.minimum.at(best_i, ai, ar)
        np.minimum.at(best_j, aj, ar)
        win = (best_i[ai] == ar) & (best_j[aj] == ar)
        kept.append(alive[win])
        used_i[ai[win]] = True
        used_j[aj[win]] = True
        alive = alive[~(used_i[ai] | used_j[aj])]
    return np.concatenate(kept) if kept else np.zeros(0, np.int64)


def _has_ties(sorted_key: NDArray[Any]) -> bool:
    return bool(sorted_key.size > 1 and np.any(sorted_key[1:] == sorted_key[:-1]))


def match_sky(measured_ra: ArrayLike, measured_dec: ArrayLike, truth_ra: ArrayLike,
              truth_dec: ArrayLike, radius_mas: float, *, prefer: Prefer = "distance",
              measured_mag: ArrayLike | None = None, truth_mag: ArrayLike | None = None,
              max_dmag: float | None = None) -> MatchResult:
    """Match measured positions to truth positions one-to-one within ``radius_mas``.

    Parameters
    ----------
    measured_ra, measured_dec, truth_ra, truth_dec : array_like
        ICRS positions, deg.
    radius_mas : float
        Match radius, mas: only pairs closer than this are candidates.
    prefer : {"distance", "magnitude"}
        ``"distance"``: the closest pairs win (greedy in global order of separation).
        ``"magnitude"``: among candidates within the radius, the pair closest in
        magnitude wins (then the closest in position); needs both magnitude arrays.
        A NaN magnitude ranks after every finite difference.
    measured_mag, truth_mag : array_like, optional
        AB magnitudes (for ``prefer="magnitude"`` and ``max_dmag``).
    max_dmag : float, optional
        Drop candidates whose ``|measured - truth|`` magnitude difference exceeds this
        (NaN differences are kept only if ``max_dmag`` is None).

    Returns
    -------
    MatchResult
    """
    from scipy.spatial import cKDTree

    if prefer not in ("distance", "magnitude"):
        raise ValueError(f"prefer must be 'distance' or 'magnitude', not {prefer!r}")
    if not radius_mas > 0:
        raise ValueError(f"radius_mas must be positive, not {radius_mas!r}")
    need_mag = prefer == "magnitude" or max_dmag is not None
    if need_mag and (measured_mag is None or truth_mag is None):
        raise ValueError("prefer='magnitude' and max_dmag need measured_mag and truth_mag")
    xm = unit_vectors(measured_ra, measured_dec).reshape(-1, 3)
    xt = unit_vectors(truth_ra, truth_dec).reshape(-1, 3)
    n_m, n_t = len(xm), len(xt)
    empty = np.zeros(0, np.int64)
    if n_m == 0 or n_t == 0:
        return MatchResult(empty, empty, np.zeros(0), n_m, n_t, float(radius_mas), prefer)

    # unbalanced, non-compact trees build ~2x faster and query as fast for sky catalogs
    tree_t = cKDTree(xt, balanced_tree=False, compact_nodes=False)
    tree_m = cKDTree(xm, balanced_tree=False, compact_nodes=False)
    pairs = tree_m.sparse_distance_matrix(tree_t, _chord(radius_mas), output_type="ndarray")
    i = pairs["i"].astype(np.int64)
    j = pairs["j"].astype(np.int64)
    sep = _angle_mas(pairs["v"])
    keys: tuple[NDArray[Any], ...] = (sep,)
    if need_mag:
        dmag = np.abs(np.asarray(measured_mag, np.float64)[i]
                      - np.asarray(truth_mag, np.float64)[j])
        if max_dmag is not None:
            keep = dmag <= max_dmag
            i, j, sep, dmag = i[keep], j[keep], sep[keep], dmag[keep]
            keys = (sep,)
        if prefer == "magnitude":
            keys = (np.where(np.isfinite(dmag), dmag, np.inf), sep)
    kept = _greedy(i, j, n_m, n_t, keys)
    order = kept[np.argsort(j[kept], kind="stable")]
    return MatchResult(i[order], j[order], sep[order], n_m, n_t, float(radius_mas), prefer)


def column(table: Any, name: str, dtype: Any = np.float64) -> NDArray[Any]:
    """A column as a plain ndarray; masked entries become NaN (float), else 0 / False.

    Raises ``KeyError`` naming the column and the available ones if it is missing.
    """
    names = _colnames(table)
    if name not in names:
        raise KeyError(f"column {name!r} not in the table (columns: {', '.join(names)})")
    col = table[name]
    if np.ma.isMaskedArray(col) or getattr(col, "mask", None) is not None:
        fill = np.nan if np.dtype(dtype).kind == "f" else 0
        return np.ma.filled(np.ma.asarray(col).astype(dtype), fill)
    if hasattr(col, "unit") and hasattr(col, "value"):  # Quantity
        col = col.value
    return np.asarray(col, dtype=dtype)


def _colnames(table: Any) -> list[str]:
    if hasattr(table, "colnames"):
        return list(table.colnames)
    if isinstance(table, Mapping):
        return list(table.keys())
    raise TypeError(f"expected an astropy Table or a mapping of columns, not {type(table)}")


def radec_of(table: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ICRS (ra, dec) in deg of a table with ``sky_centroid`` (SkyCoord) or ``ra``/``dec``."""
    names = _colnames(table)
    if "sky_centroid" in names:
        sc = table["sky_centroid"].icrs
        return (np.asarray(sc.ra.deg, np.float64), np.asarray(sc.dec.deg, np.float64))
    if "ra" in names and "dec" in names:
        return column(table, "ra"), column(table, "dec")
    raise KeyError(f"no sky position: need 'sky_centroid' or 'ra' and 'dec' "
                   f"(columns: {', '.join(names)})")


def match_catalogs(measured: Any, truth: Any, radius_mas: float | None = None, *,
                   band: str | None = None, prefer: Prefer = "distance",
                   measured_mag_column: str = "aper_total_abmag",
                   truth_mag_column: str = "mag_true_ab",
                   max_dmag: float | None = None) -> MatchResult:
    """Match a jwst source catalog to a truth table (see the column contract above).

    Parameters
    ----------
    measured : Table
        The pipeline's source catalog (``sky_centroid`` or ``ra``/``dec``).
    truth : Table
        Truth table (``ra``, ``dec``, ``mag_true_ab``, ...).
    radius_mas : float, optional
        Match radius, mas; default :func:`default_match_radius` of ``band``.
    band : str, optional
        NIRCam filter, for the default radius.
    prefer, max_dmag
        As in :func:`match_sky`; magnitudes come from ``measured_mag_column`` and
        ``truth_mag_column``.

    Returns
    -------
    MatchResult
    """
    if radius_mas is None:
        if band is None:
            raise ValueError("give radius_mas or band (for the default radius)")
        radius_mas = default_match_radius(band)
    mra, mdec = radec_of(measured)
    tra, tdec = radec_of(truth)
    mags: dict[str, Any] = {}
    if prefer == "magnitude" or max_dmag is not None:
        mags = {"measured_mag": column(measured, measured_mag_column),
                "truth_mag": column(truth, truth_mag_column)}
    return match_sky(mra, mdec, tra, tdec, radius_mas, prefer=prefer, max_dmag=max_dmag,
                     **mags)


def flag_bright_neighbours(ra_deg: ArrayLike, dec_deg: ArrayLike, mag: ArrayLike,
                           radius_mas: float, delta_mag: float = 0.0,
                           extent_mas: ArrayLike | None = None) -> NDArray[np.bool_]:
    """Flag sources with a brighter neighbour within ``radius_mas`` (plus the neighbour's
    own ``extent_mas``, for extended sources whose light reaches farther).

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Positions, deg.
    mag : array_like
        AB magnitudes.
    radius_mas : float
        Blending radius, mas.
    delta_mag : float
        A neighbour counts if ``mag_neighbour < mag + delta_mag`` (0: strictly brighter;
        e.g. 2: also neighbours up to 2 mag fainter).
    extent_mas : array_like, optional
        Per source, how much farther than ``radius_mas`` its light disturbs a neighbour
        (0 for point sources), mas.

    Returns
    -------
    ndarray of bool
        True where such a neighbour exists (the source is *not* isolated).
    """
    from scipy.spatial import cKDTree

    x = unit_vectors(ra_deg, dec_deg).reshape(-1, 3)
    m = np.asarray(mag, np.float64)
    out = np.zeros(len(x), bool)
    if len(x) < 2:
        return out
    ext = np.zeros(len(x)) if extent_mas is None else np.nan_to_num(
        np.asarray(extent_mas, np.float64).reshape(-1))
    pairs = cKDTree(x).query_pairs(_chord(radius_mas + float(ext.max())),
                                   output_type="ndarray")
    if pairs.size:
        a, b = pairs[:, 0], pairs[:, 1]
        sep = np.linalg.norm(x[a] - x[b], axis=1)
        a_hits_b = (m[a] < m[b] + delta_mag) & (sep < np.vectorize(_chord)(radius_mas + ext[a]))
        b_hits_a = (m[b] < m[a] + delta_mag) & (sep < np.vectorize(_chord)(radius_mas + ext[b]))
        out[a[b_hits_a]] = True
        out[b[a_hits_b]] = True
    return out
