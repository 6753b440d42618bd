"""MIRAGE source catalogs: write them from astropy Tables, read them and MIRAGE's truth lists.

Input tables (units fixed, magnitudes AB):

- stars: ``ra``, ``dec`` (deg), ``mag`` (AB), optional ``index``;
- galaxies: the same plus ``radius`` (arcsec), ``ellipticity``, ``pos_angle`` (deg),
  ``sersic_index``.

What MIRAGE 2.5.0 does with a galaxy row (``mirage/seed_image/catalog_seed_image.py``,
``filterGalaxyList``, ``create_galaxy``, ``calc_x_position_angle``):

- ``radius`` is the *half-light radius along the major axis*: it is divided by the
  aperture's ``XSciScale`` (arcsec/pixel) and passed as ``r_eff`` to
  ``astropy.modeling.models.Sersic2D``, whose semi-axes are ``a = r_eff`` and
  ``b = (1 - ellip) * r_eff``. A circularised radius would be ``radius * sqrt(1 - e)``.
- ``ellipticity`` is ``1 - b/a``;
- ``pos_angle`` is the major axis's position angle, degrees East of North (MIRAGE turns it
  into an angle from the detector x axis through its own sky->pixel transform).

The file format is MIRAGE's (``mirage.catalogs.catalog_generator``): an ascii table with an
``index`` column, ``x_or_RA``/``y_or_Dec``, one magnitude column named
``nircam_<filter>_<pupil>_magnitude`` (the name MIRAGE looks for first), and comment lines
declaring ``position_RA_Dec``, ``abmag`` and, for galaxies, ``radius_arcsec``. We write that
format with astropy rather than through MIRAGE's classes because importing any MIRAGE module
reconfigures the root logger (``logging.config.dictConfig``: every existing logger is
disabled, a stdout handler is added) and creates ``mirage_latest.log`` in the current
directory; ``tests/test_mirage_backend.py`` checks, in a subprocess, that MIRAGE's own classes
write the same table.

MIRAGE rejects catalogs whose index *ranges* overlap (it compares only min and max,
``mirage.catalogs.utils.catalog_index_check``) and an index of 0 (reserved for "no source" in
the segmentation map). :func:`write_catalogs` numbers stars ``1..N`` and galaxies from
``N + 1`` unless the tables carry their own ``index``, which must then obey the same rules.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import ascii
from astropy.table import Table

from simval.atomic import atomic_path

STAR_COLUMNS = ("ra", "dec", "mag")
GALAXY_COLUMNS = ("ra", "dec", "mag", "radius", "ellipticity", "pos_angle", "sersic_index")

_POSITION_COMMENT = "position_RA_Dec"
_MAGSYS_COMMENT = "abmag"
_RADIUS_COMMENT = "radius_arcsec"

#: Columns of MIRAGE's ``<base>_pointsources.list`` (written with a fixed printf format:
#: pixel x/y to 0.001 px, RA/Dec to 1e-8 deg, magnitude to 0.001 mag).
POINT_SOURCE_LIST_COLUMNS = (
    "index", "ra_hms", "dec_dms", "ra", "dec", "pixel_x", "pixel_y", "magnitude",
    "countrate_adu_s", "counts_per_frame_adu", "tso_lightcurve_catalog",
)


def magnitude_column(filter_name: str, pupil: str = "CLEAR") -> str:
    """MIRAGE's magnitude column name for a NIRCam filter/pupil pair.

    ``("F115W", "CLEAR")`` -> ``"nircam_f115w_clear_magnitude"``; this is the first name
    ``Catalog_seed.select_magnitude_column`` looks for.
    """
    return f"nircam_{filter_name.strip().lower()}_{pupil.strip().lower()}_magnitude"


def _require_columns(table: Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {', '.join(missing)}; "
                         f"it needs {', '.join(columns)} (has {', '.join(table.colnames)})")


def _check_finite(table: Table, columns: tuple[str, ...], what: str) -> None:
    for name in columns:
        values = np.asarray(table[name], dtype=float)
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(f"{what} row {bad}: column {name!r} is not finite ({values[bad]})")


def _check_values(table: Table, galaxy: bool, what: str) -> None:
    """Range checks of sky positions and Sersic parameters (raise ``ValueError``)."""
    columns = GALAXY_COLUMNS if galaxy else STAR_COLUMNS
    _require_columns(table, columns, what)
    _check_finite(table, columns, what)
    dec = np.asarray(table["dec"], dtype=float)
    if np.any(np.abs(dec) > 90):
        raise ValueError(f"{what}: dec must be within [-90, 90] deg")
    if not galaxy:
        return
    checks = {
        "radius": (np.asarray(table["radius"], float) > 0, "> 0 arcsec"),
        "ellipticity": (
            (np.asarray(table["ellipticity"], float) >= 0)
            & (np.asarray(table["ellipticity"], float) < 1), "in [0, 1)"),
        "sersic_index": (np.asarray(table["sersic_index"], float) > 0, "> 0"),
    }
    for name, (ok, rule) in checks.items():
        if not np.all(ok):
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"{what} row {bad}: {name}={table[name][bad]} must be {rule}")


def _indices(table: Table, start: int) -> np.ndarray:
    """The table's own ``index`` column (validated) or ``start, start+1, ...``."""
    if "index" in table.colnames:
        idx = np.asarray(table["index"])
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("catalog 'index' column must hold integers")
        idx = idx.astype(np.int64)
    else:
        idx = np.arange(start, start + len(table), dtype=np.int64)
    if len(idx) and idx.min() < 1:
        raise ValueError("MIRAGE source indices must be >= 1 (0 means 'no source' in its "
                         "segmentation map)")
    if len(np.unique(idx)) != len(idx):
        raise ValueError("catalog 'index' values are not unique")
    return idx


def _mirage_table(table: Table, index: np.ndarray, mag_col: str, galaxy: bool) -> Table:
    out = Table()
    out["index"] = index
    out["x_or_RA"] = np.asarray(table["ra"], dtype=np.float64) % 360.0
    out["y_or_Dec"] = np.asarray(table["dec"], dtype=np.float64)
    if galaxy:
        out["radius"] = np.asarray(table["radius"], dtype=np.float64)
        out["ellipticity"] = np.asarray(table["ellipticity"], dtype=np.float64)
        out["pos_angle"] = np.asarray(table["pos_angle"], dtype=np.float64)
        out["sersic_index"] = np.asarray(table["sersic_index"], dtype=np.float64)
    out[mag_col] = np.asarray(table["mag"], dtype=np.float64)
    comments = [_POSITION_COMMENT, _MAGSYS_COMMENT]
    if galaxy:
        comments.append(_RADIUS_COMMENT)
    out.meta["comments"] = comments + [""] * (4 - len(comments))
    return out


def _write(table: Table, path: str | os.PathLike) -> Path:
    # astropy writes floats with repr(): RA/Dec keep full double precision.
    # Same call as MIRAGE's ``PointSourceCatalog.save``: comment lines become "# ..." lines.
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii", overwrite=True)
    return Path(path)


def write_point_source_catalog(
    stars: Table,
    path: str | os.PathLike,
    *,
    filter_name: str,
    pupil: str = "CLEAR",
    start_index: int = 1,
) -> Path:
    """Write a MIRAGE point-source catalog.

    Parameters
    ----------
    stars : columns ``ra``, ``dec`` (deg), ``mag`` (AB); optional integer ``index`` (>= 1).
    path : output file (written atomically).
    filter_name, pupil : the exposure's filter and pupil; they name the magnitude column.
    start_index : first index when ``stars`` has no ``index`` column.
    """
    _check_values(stars, galaxy=False, what="point-source")
    table = _mirage_table(stars, _indices(stars, start_index),
                          magnitude_column(filter_name, pupil), galaxy=False)
    return _write(table, path)


def write_galaxy_catalog(
    galaxies: Table,
    path: str | os.PathLike,
    *,
    filter_name: str,
    pupil: str = "CLEAR",
    start_index: int = 1,
) -> Path:
    """Write a MIRAGE galaxy (2-D Sersic) catalog.

    Parameters
    ----------
    galaxies : ``ra``, ``dec`` (deg), ``mag`` (AB, total), ``radius`` (arcsec, half-light
        radius along the major axis), ``ellipticity`` (1 - b/a), ``pos_angle`` (deg East of
        North of the major axis), ``sersic_index``; optional integer ``index`` (>= 1).
    path : output file (written atomically).
    filter_name, pupil : the exposure's filter and pupil; they name the magnitude column.
    start_index : first index when ``galaxies`` has no ``index`` column.
    """
    _check_values(galaxies, galaxy=True, what="galaxy")
    table = _mirage_table(galaxies, _indices(galaxies, start_index),
                          magnitude_column(filter_name, pupil), galaxy=True)
    return _write(table, path)


def write_catalogs(
    stars: Table | None,
    galaxies: Table | None,
    out_dir: str | os.PathLike,
    base_name: str,
    *,
    filter_name: str,
    pupil: str = "CLEAR",
) -> tuple[Path | None, Path | None]:
    """Write the point-source and galaxy catalogs of one exposure with disjoint indices.

    Files are ``<out_dir>/<base_name>_pointsources.cat`` and ``..._galaxies.cat``; an empty or
    ``None`` table gives ``None`` (MIRAGE then adds no such sources). Without ``index``
    columns, stars are numbered ``1..N`` and galaxies ``N+1..N+M``; with them, the two index
    ranges must not overlap (MIRAGE's own rule).

    Returns
    -------
    (point-source catalog path or None, galaxy catalog path or None)
    """
    out = Path(out_dir)
    have_stars = stars is not None and len(stars) > 0
    have_gals = galaxies is not None and len(galaxies) > 0
    star_idx = _indices(stars, 1) if have_stars else np.array([], dtype=np.int64)
    gal_start = int(star_idx.max()) + 1 if len(star_idx) else 1
    gal_idx = _indices(galaxies, gal_start) if have_gals else np.array([], dtype=np.int64)
    if len(star_idx) and len(gal_idx):
        lo_s, hi_s, lo_g, hi_g = star_idx.min(), star_idx.max(), gal_idx.min(), gal_idx.max()
        if not (hi_s < lo_g or hi_g < lo_s):
            raise ValueError(f"star indices [{lo_s}, {hi_s}] and galaxy indices [{lo_g}, {hi_g}] "
                             "overlap; MIRAGE needs disjoint index ranges across catalogs")
    ps_path = gal_path = None
    if have_stars:
        ps_path = write_point_source_catalog(
            _with_index(stars, star_idx), out / f"{base_name}_pointsources.cat",
            filter_name=filter_name, pupil=pupil)
    if have_gals:
        gal_path = write_galaxy_catalog(
            _with_index(galaxies, gal_idx), out / f"{base_name}_galaxies.cat",
            filter_name=filter_name, pupil=pupil)
    return ps_path, gal_path


def _with_index(table: Table, index: np.ndarray) -> Table:
    copy = Table(table, copy=False)
    copy["index"] = index
    return copy


def read_mirage_catalog(path: str | os.PathLike) -> Table:
    """Read a MIRAGE point-source or galaxy catalog back into the input column names.

    Returns a Table with ``index``, ``ra``, ``dec`` (deg), ``mag`` (AB) and, for galaxies,
    ``radius`` (arcsec), ``ellipticity``, ``pos_angle`` (deg), ``sersic_index``;
    ``meta['magnitude_column']`` names the magnitude column it came from.
    Raises ``ValueError`` for catalogs in pixel units, non-AB magnitudes, radii in pixels,
    or with no or several magnitude columns.
    """
    raw = ascii.read(path)
    comments = [c.strip() for c in raw.meta.get("comments", [])][:4]
    if "position_pixels" in comments:
        raise ValueError(f"{path}: positions are in pixels; simval catalogs use RA/Dec")
    if any(c in ("stmag", "vegamag") for c in comments):
        raise ValueError(f"{path}: magnitudes are not AB ({comments})")
    if "radius_pixels" in comments:
        raise ValueError(f"{path}: galaxy radii are in pixels; simval uses arcsec")
    mag_cols = [c for c in raw.colnames if c.endswith("magnitude")]
    if len(mag_cols) != 1:
        raise ValueError(f"{path}: expected one magnitude column, found {mag_cols}")
    out = Table()
    out["index"] = np.asarray(raw["index"], dtype=np.int64)
    out["ra"] = np.asarray(raw["x_or_RA"], dtype=np.float64)
    out["dec"] = np.asarray(raw["y_or_Dec"], dtype=np.float64)
    out["mag"] = np.asarray(raw[mag_cols[0]], dtype=np.float64)
    for name in GALAXY_COLUMNS[3:]:
        if name in raw.colnames:
            out[name] = np.asarray(raw[name], dtype=np.float64)
    out.meta["magnitude_column"] = mag_cols[0]
    return out


def read_point_source_list(path: str | os.PathLike) -> Table:
    """Read MIRAGE's ``<base>_pointsources.list`` (truth for point sources).

    Columns (see :data:`POINT_SOURCE_LIST_COLUMNS`): ``pixel_x``/``pixel_y`` are 0-based
    pixel coordinates in the *subarray* frame, computed with MIRAGE's distortion model (the
    ``astrometric`` reference); ``ra``/``dec`` in deg; ``magnitude`` as MIRAGE used it (printed
    to 0.001 mag); ``countrate_adu_s`` is the total count rate in ADU/s for an infinite
    aperture. Only sources MIRAGE kept (on or near the aperture) are listed.
    """
    table = ascii.read(path, format="no_header", comment="#",
                       names=POINT_SOURCE_LIST_COLUMNS, guess=False)
    return table


def read_galaxy_list(path: str | os.PathLike) -> Table:
    """Read MIRAGE's ``<base>_galaxySources.list`` (truth for galaxies).

    Columns as MIRAGE writes them: ``index``, ``pixelx``, ``pixely`` (0-based subarray
    pixels), ``RA_degrees``, ``Dec_degrees``, ``V2``, ``V3`` (arcsec), ``radius`` (*pixels*:
    MIRAGE converted the catalog's arcsec with the aperture's XSciScale), ``ellipticity``,
    ``pos_angle`` (deg E of N, as in the catalog), ``sersic_index``, ``magnitude``,
    ``countrate_e/s`` (despite the name, ADU/s). MIRAGE stores these as float32, so RA/Dec
    carry only ~1e-5 deg (tens of mas): join to the input catalog on ``index`` for sky
    positions.
    """
    return ascii.read(path, format="basic", comment="#", guess=False)
