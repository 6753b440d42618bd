"""Truth tables: what the simulator says it put in, per mosaic, and the true sky per exposure.

:func:`build_truth` assembles, for one band (one calwebb_image3 mosaic), one row per
source that MIRAGE listed in the truth list of at least one exposure of that band
(``<base>_uncal_pointsources.list`` and ``<base>_uncal_galaxySources.list``), joined on
MIRAGE's ``index`` with the run's input catalog (``catalog/stars.ecsv``,
``catalog/galaxies.ecsv``). The columns follow the truth contract of :mod:`simval.match`:

=========================  =====================================================================
column                     meaning
=========================  =====================================================================
``id``                     MIRAGE source index (= catalog ``index``)
``ra``, ``dec``            deg, the input catalog's position (MIRAGE's galaxy list holds RA/Dec
                           as float32, ~20 mas; its point-source list rounds to 1e-8 deg)
``type``                   ``star`` or ``galaxy``
``mag_true_ab``            AB mag MIRAGE injected in this filter: the catalog magnitude for
                           stars; for Sersic galaxies the catalog magnitude
                           ``- 2.5 log10(MIRAGE_SERSIC_FLUX_FRACTION)`` (+0.0015 mag, MIRAGE
                           puts 99.86% of the catalog flux into the image)
``mag_catalog_ab``         AB mag of the input catalog in this filter
``flux_true_jy``           Jy, ``3631 * 10**(-0.4 mag_true_ab)``
``countrate_adu_s``        MIRAGE's count rate for the catalog flux, infinite aperture, ADU/s
``in_footprint``           bool: the mosaic pixel holding the position has weight > 0 (i2d WHT)
``n_exposures``            exposures whose truth list has the source inside the array's
                           science pixels (reference pixels excluded)
``has_bright_neighbour``   bool: a brighter truth source within ``blend_radius_mas``
``snr_expected``           rough expected S/N in the mosaic (see :func:`expected_snr`)
``mosaic_x``, ``mosaic_y`` 0-based pixel position in the i2d (NaN without a mosaic)
``r_half_arcsec``          galaxies: half-light radius along the major axis, arcsec (NaN
                           for stars); ``r_half_circ_arcsec`` = ``r_half * sqrt(1 - e)``
``ellipticity``,           galaxies: ``1 - b/a``, major-axis PA (deg E of N), Sersic index
``pos_angle``, ``sersic_n``
=========================  =====================================================================

Known simulator systematic (not corrected here): MIRAGE ignores the distortion's pixel-area
variation for point sources while drizzle conserves surface brightness, so stars come back
about ``AREA`` times brighter or fainter (+0.010 mag in NRCB1 SUB400P).

Tables are written as ECSV (:func:`write_truth`, atomic) to ``truth/<product>_truth.ecsv``.

The rest of the truth lives in the package's modules: :mod:`simval.truth.exposures`
(MIRAGE's truth lists of each exposure and their union), :mod:`simval.truth.snr` (the S/N
model), :mod:`simval.truth.background` (:func:`true_backgrounds`, the true sky of every
exposure), :mod:`simval.truth.mosaic` (the noiseless truth mosaic) and
:mod:`simval.truth.rundir` (:class:`TruthError` and the run-directory files). Their public
names used before the split are importable from here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.atomic import atomic_path
from simval.catalogs import GALAXY_FILE, STAR_FILE, mag_column
from simval.instruments.detectors import detector_facts
from simval.instruments.nircam import NATIVE_SCALE_ARCSEC
from simval.kit.photometry import abmag_to_jy
from simval.layout import RunLayout
from simval.match import flag_bright_neighbours
from simval.plan import Plan, load_plan, product_for
from simval.truth.background import true_backgrounds
from simval.truth.exposures import Listed, gather_truth_lists, read_exposure_lists, science_region
from simval.truth.rundir import TruthError, as_layout, asn_members, file_ending, truth_path
from simval.truth.snr import (
    GALAXY_APERTURE_FRACTION,
    GALAXY_PSF_FWHM,
    MODEL_SUMMARY,
    STAR_APERTURE_EE,
    STAR_APERTURE_FWHM,
    ExposureNoise,
    default_blend_radius_mas,
    expected_snr,
    exposure_noise,
    fwhm_arcsec,
)

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = [
    "MIRAGE_SERSIC_FLUX_FRACTION",
    "TRUTH_DIR",
    "ExposureNoise",
    "Listed",
    "TruthError",
    "asn_members",
    "build_truth",
    "default_blend_radius_mas",
    "expected_snr",
    "file_ending",
    "load_plan",
    "mosaic_positions",
    "product_for",
    "read_exposure_lists",
    "read_truth",
    "science_region",
    "true_backgrounds",
    "truth_path",
    "write_truth",
]

#: Fraction of a Sersic galaxy's catalog flux that MIRAGE 2.5.0 puts into the image
#: (offline facts, "Closure": 99.86%).
MIRAGE_SERSIC_FLUX_FRACTION = 0.9986
#: Half-light radii of a brighter galaxy within which a source is not isolated (beyond the
#: blend radius).
GALAXY_HALO_REFF = 3.0
#: Sub-directory of the run directory holding the truth tables.
TRUTH_DIR = "truth"
#: Largest |catalog - list| magnitude accepted (the point-source list prints 0.001 mag).
MAG_TOLERANCE = 0.002


def mosaic_positions(i2d: str | os.PathLike, ra_deg: np.ndarray, dec_deg: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mosaic pixel positions and footprint flags of sky positions.

    The i2d ``SCI`` header's FITS WCS is used (resample writes its output grid as a plain
    gnomonic WCS, identical to the product's gwcs). A position is in the footprint if its
    nearest pixel lies inside the image and has ``WHT > 0`` (or, without ``WHT``, a
    non-zero context ``CON``).

    Returns
    -------
    x, y : ndarray
        0-based pixel coordinates.
    inside : ndarray of bool
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(i2d) as hdul:
        names = {h.name for h in hdul}
        wcs = WCS(hdul["SCI"].header)
        if "WHT" in names:
            covered = np.isfinite(hdul["WHT"].data) & (hdul["WHT"].data > 0)
        elif "CON" in names:
            con = np.asarray(hdul["CON"].data)
            covered = (con.reshape(-1, *con.shape[-2:]) != 0).any(axis=0)
        else:
            raise TruthError(f"{i2d}: neither a WHT nor a CON extension to tell the footprint")
    x, y = wcs.all_world2pix(np.asarray(ra_deg, float), np.asarray(dec_deg, float), 0)
    ix = np.floor(np.asarray(x) + 0.5)
    iy = np.floor(np.asarray(y) + 0.5)
    ny, nx = covered.shape
    ok = np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    inside = np.zeros(ix.shape, bool)
    inside[ok] = covered[iy[ok].astype(int), ix[ok].astype(int)]
    return np.asarray(x, float), np.asarray(y, float), inside


def _catalog(layout: RunLayout, band: str) -> dict[str, Table]:
    from astropy.table import Table

    out = {}
    for kind, name in (("star", STAR_FILE), ("galaxy", GALAXY_FILE)):
        path = layout.catalog / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the run's input catalog is missing")
        t = Table.read(path, format="ascii.ecsv")
        col = mag_column(band)
        if len(t) and col not in t.colnames:
            raise TruthError(f"{path}: no magnitude column {col!r} for {band} "
                             f"(columns: {', '.join(t.colnames)})")
        t.meta["path"] = str(path)
        out[kind] = t
    return out


def _join(kind: str, listed: Listed, catalog: Table, band: str) -> Table:
    """Catalog rows of the listed indices, in index order; checks the magnitudes agree."""

    cat_index = np.asarray(catalog["index"], np.int64) if len(catalog) else np.zeros(0, int)
    order = np.argsort(cat_index, kind="stable")
    pos = np.searchsorted(cat_index[order], listed.index)
    pos = np.clip(pos, 0, max(cat_index.size - 1, 0))
    found = cat_index[order][pos] == listed.index if cat_index.size else \
        np.zeros(listed.index.size, bool)
    if not found.all():
        missing = listed.index[~found]
        first = int(np.flatnonzero(~found)[0])
        raise TruthError(f"MIRAGE listed {kind} index(es) {missing[:10].tolist()} that are "
                         f"not in {catalog.meta.get('path', 'the input catalog')} (e.g. "
                         f"{listed.source[first]})")
    rows = catalog[order[pos]] if listed.index.size else catalog[:0]
    cat_mag = np.asarray(rows[mag_column(band)], float) if len(rows) else np.zeros(0)
    bad = np.flatnonzero(~(np.abs(listed.magnitude - cat_mag) <= MAG_TOLERANCE))
    if bad.size:
        b = int(bad[0])
        raise TruthError(f"{kind} {int(listed.index[b])}: MIRAGE used magnitude "
                         f"{listed.magnitude[b]:.4f} ({listed.source[b]}) but the input "
                         f"catalog has {cat_mag[b]:.4f} in {band}; {bad.size} source(s) differ "
                         f"by more than {MAG_TOLERANCE} mag: the catalog is not what was "
                         "simulated")
    return rows


_SHAPE_COLUMNS = ("r_half_arcsec", "r_half_circ_arcsec", "ellipticity", "pos_angle",
                  "sersic_n")


def _type_table(kind: str, rows: Table, listed: Listed, noise: Sequence[ExposureNoise],
                band: str) -> Table:
    """Truth rows of one source type (everything but the mosaic and neighbour columns)."""
    from astropy.table import Table

    n = listed.index.size
    t = Table()
    t["id"] = listed.index
    t["ra"] = np.asarray(rows["ra"], float) if n else np.zeros(0)
    t["dec"] = np.asarray(rows["dec"], float) if n else np.zeros(0)
    t["type"] = np.array([kind] * n, dtype="<U6")
    mag_cat = np.asarray(rows[mag_column(band)], float) if n else np.zeros(0)
    shift = -2.5 * math.log10(MIRAGE_SERSIC_FLUX_FRACTION) if kind == "galaxy" else 0.0
    t["mag_true_ab"] = mag_cat + shift
    t["mag_catalog_ab"] = mag_cat
    t["countrate_adu_s"] = listed.countrate_adu_s
    t["n_exposures"] = listed.covered.sum(axis=1).astype(np.int64)
    fwhm = fwhm_arcsec(band)
    scale = float(np.mean([x.pixel_scale_arcsec for x in noise])) if noise else \
        NATIVE_SCALE_ARCSEC["SHORT"]
    if kind == "galaxy" and n:
        r = np.asarray(rows["radius"], float)
        e = np.asarray(rows["ellipticity"], float)
        t["r_half_arcsec"] = r
        t["r_half_circ_arcsec"] = r * np.sqrt(1.0 - e)
        t["ellipticity"] = e
        t["pos_angle"] = np.asarray(rows["pos_angle"], float)
        t["sersic_n"] = np.asarray(rows["sersic_index"], float)
        radius = np.hypot(t["r_half_circ_arcsec"], GALAXY_PSF_FWHM * fwhm) / scale
        frac = GALAXY_APERTURE_FRACTION
    else:
        for c in _SHAPE_COLUMNS:
            t[c] = np.full(n, np.nan)
        radius = np.full(n, STAR_APERTURE_FWHM * fwhm / scale)
        frac = STAR_APERTURE_EE
    t["snr_expected"] = expected_snr(listed.countrate_adu_s, radius, frac, listed.covered,
                                     noise)
    return t


def build_truth(run: str | os.PathLike | RunLayout, plan: Plan | None, band: str, *,
                blend_radius_mas: float | None = None, i2d: str | os.PathLike | None = None,
                write: bool = True) -> Table:
    """Truth table of one band's mosaic (columns: see the module docstring).

    Parameters
    ----------
    run : path or RunLayout
        The run directory.
    plan : Plan or None
        The run's plan (read from ``plan.json`` if None).
    band : str
        Passband of the mosaic (``F115W``).
    blend_radius_mas : float, optional
        Radius for ``has_bright_neighbour``, mas (default :func:`default_blend_radius_mas`).
    i2d : path, optional
        The mosaic (default: the product's ``_i2d.fits`` in ``image3/<product>/``). Without
        a mosaic file ``in_footprint`` is ``n_exposures > 0`` and ``meta["in_footprint"]``
        says so.
    write : bool
        Write ``truth/<product>_truth.ecsv`` (atomically).

    Returns
    -------
    astropy.table.Table
        One row per source, sorted by ``id``; ``meta`` records the inputs and settings.

    Raises
    ------
    FileNotFoundError
        For a missing plan, input catalog or exposure directory (the message names it).
    TruthError
        If the simulator's lists and the input catalog disagree (index or magnitude).
    """
    from astropy.table import vstack

    layout = as_layout(run)
    plan = plan if plan is not None else load_plan(layout)
    product = product_for(plan, band)
    band = product.filter_name
    exposures = plan.exposures_in(product)
    catalog = _catalog(layout, band)
    listed = gather_truth_lists(layout, exposures)
    noise = [exposure_noise(layout, e) for e in exposures]

    parts = [_type_table(kind, _join(kind, listed[kind], catalog[kind], band), listed[kind],
                         noise, band) for kind in ("star", "galaxy")]
    truth = vstack(parts, join_type="exact", metadata_conflicts="silent")
    truth.sort("id")
    truth["flux_true_jy"] = abmag_to_jy(truth["mag_true_ab"])

    i2d_path = Path(i2d) if i2d is not None else layout.product_dir(product.name) / \
        product.i2d_name
    if i2d_path.is_file():
        x, y, inside = mosaic_positions(i2d_path, truth["ra"], truth["dec"])
        footprint_note = f"WHT > 0 at the nearest pixel of {layout.rel(i2d_path)}"
    else:
        x = y = np.full(len(truth), np.nan)
        inside = np.asarray(truth["n_exposures"]) > 0
        footprint_note = "no mosaic: n_exposures > 0"
    truth["in_footprint"] = inside
    truth["mosaic_x"], truth["mosaic_y"] = x, y

    scale = detector_facts(exposures[0].detector).pixel_scale_arcsec if exposures else \
        NATIVE_SCALE_ARCSEC["SHORT"]
    radius_mas = blend_radius_mas if blend_radius_mas is not None else \
        default_blend_radius_mas(band, scale)
    # a galaxy's light reaches GALAXY_HALO_REFF half-light radii beyond the blend radius:
    # stars 1-2 r_eff from 8-15" galaxies had their centroids pulled by 30-90 mas (MIRI
    # Stephan's Quintet run), beyond 3 r_eff by < 3 mas
    extent = GALAXY_HALO_REFF * 1e3 * np.nan_to_num(np.asarray(truth["r_half_arcsec"], float))
    truth["has_bright_neighbour"] = flag_bright_neighbours(
        truth["ra"], truth["dec"], truth["mag_true_ab"], radius_mas, extent_mas=extent)

    order = ["id", "ra", "dec", "type", "mag_true_ab", "mag_catalog_ab", "flux_true_jy",
             "countrate_adu_s", "in_footprint", "n_exposures", "has_bright_neighbour",
             "snr_expected", "mosaic_x", "mosaic_y", "r_half_arcsec", "r_half_circ_arcsec",
             "ellipticity", "pos_angle", "sersic_n"]
    truth = truth[order]
    _describe(truth)
    truth.meta = {
        "filter": band, "product": product.name, "scenario": plan.scenario_name,
        "exposures": [e.base_name for e in exposures],
        "in_footprint": footprint_note,
        "n_exposures": "truth-list position inside the science pixels of the exposure",
        "blend_radius_mas": float(radius_mas),
        "galaxy_flux_fraction": MIRAGE_SERSIC_FLUX_FRACTION,
        "snr_model": MODEL_SUMMARY,
        "catalog": [layout.rel(catalog[k].meta["path"]) for k in ("star", "galaxy")],
    }
    if write:
        write_truth(truth, truth_path(layout, product.name))
    return truth


_DESCRIPTIONS = {
    "id": ("", "MIRAGE source index = input catalog index"),
    "ra": ("deg", "ICRS RA of the input catalog"),
    "dec": ("deg", "ICRS Dec of the input catalog"),
    "type": ("", "star or galaxy"),
    "mag_true_ab": ("mag", "AB magnitude MIRAGE injected in this filter"),
    "mag_catalog_ab": ("mag", "AB magnitude of the input catalog in this filter"),
    "flux_true_jy": ("Jy", "3631 * 10**(-0.4 mag_true_ab)"),
    "countrate_adu_s": ("adu / s", "MIRAGE count rate of the catalog flux, infinite aperture"),
    "in_footprint": ("", "nearest mosaic pixel has weight > 0"),
    "n_exposures": ("", "exposures with the source on their science pixels"),
    "has_bright_neighbour": ("", "a brighter truth source within meta blend_radius_mas"),
    "snr_expected": ("", "rough expected S/N in the mosaic (meta snr_model)"),
    "mosaic_x": ("pix", "0-based x in the i2d"),
    "mosaic_y": ("pix", "0-based y in the i2d"),
    "r_half_arcsec": ("arcsec", "half-light radius along the major axis (galaxies)"),
    "r_half_circ_arcsec": ("arcsec", "circularised half-light radius (galaxies)"),
    "ellipticity": ("", "1 - b/a (galaxies)"),
    "pos_angle": ("deg", "major-axis position angle East of North (galaxies)"),
    "sersic_n": ("", "Sersic index (galaxies)"),
}


def _describe(table: Table) -> None:
    for name, (unit, text) in _DESCRIPTIONS.items():
        if name in table.colnames:
            table[name].description = text
            if unit:
                table[name].unit = unit


def write_truth(table: Table, path: str | os.PathLike) -> Path:
    """Write a truth table as ECSV, atomically; return the path."""

    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    return Path(path)


def read_truth(path: str | os.PathLike) -> Table:
    """Read a truth table written by :func:`write_truth` (units dropped to plain columns)."""
    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv")
    for name in t.colnames:
        t[name].unit = None
    return t
