"""Truth tables: what the simulator says it put in, per mosaic, and the true sky per exposure.

:func:`build_truth` assembles, for one filter (one calwebb_image3 mosaic), one row per
source that MIRAGE listed in the truth list of at least one exposure of that filter
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

:func:`true_backgrounds` gives, per exposure, the injected sky (MJy/sr), the rate MIRAGE
was given and put into its noiseless seed image (ADU/s), the conversion back to MJy/sr with
the cal file's PHOTMJSR, and the sky level skymatch recorded.

Tables are written as ECSV (:func:`write_truth`, atomic) to ``truth/<product>_truth.ecsv``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simval.atomic import atomic_path
from simval.catalogs import GALAXY_FILE, STAR_FILE, mag_column
from simval.instruments.nircam import FULL_SIZE, NATIVE_SCALE_ARCSEC, REFPIX_BORDER, get_detector
from simval.kit.photometry import abmag_to_jy, background_adu_s
from simval.layout import RunLayout
from simval.match import default_match_radius, flag_bright_neighbours
from simval.plan import Plan
from simval.simulate.mirage_catalogs import read_galaxy_list, read_point_source_list

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.plan import Exposure, Plan, Product

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
#: Sub-directory of the run directory holding the truth tables.
TRUTH_DIR = "truth"
#: Rough S/N model: a star's aperture (as ``aper_total``) holds ``STAR_APERTURE_EE`` of its
#: flux within ``STAR_APERTURE_FWHM`` x FWHM; a galaxy's half light within
#: ``sqrt(r_half_circ**2 + (GALAXY_PSF_FWHM x FWHM)**2)``.
STAR_APERTURE_EE = 0.7
STAR_APERTURE_FWHM = 1.5
GALAXY_APERTURE_FRACTION = 0.5
GALAXY_PSF_FWHM = 1.0
#: Outer radius of the source catalog's sky annulus (kit APCORR ``skyout``), native pixels.
SKY_ANNULUS_OUTER_PIX = 13.0
#: Blending radius: a neighbour's core (this many FWHM) reaching the sky annulus.
BLEND_FWHM = 3.0
#: Largest |catalog - list| magnitude accepted (the point-source list prints 0.001 mag).
MAG_TOLERANCE = 0.002


class TruthError(ValueError):
    """The run directory's simulator outputs and input catalog do not fit together."""


# --- run directory ------------------------------------------------------------------------

def _layout(run: str | os.PathLike | RunLayout) -> RunLayout:
    return run if isinstance(run, RunLayout) else RunLayout(Path(run))


def load_plan(run: str | os.PathLike | RunLayout) -> Plan:
    """The run's plan (``plan.json``); ``FileNotFoundError`` naming the file if absent."""

    layout = _layout(run)
    if not layout.plan.is_file():
        raise FileNotFoundError(f"{layout.plan}: no plan.json in the run directory")
    return Plan.from_json(layout.plan.read_text())


def product_for(plan: Plan, filter: str) -> Product:
    """The plan's mosaic of ``filter`` (case-insensitive); ``KeyError`` lists the filters."""
    band = filter.strip().upper()
    for p in plan.products:
        if p.filter_name.upper() == band:
            return p
    raise KeyError(f"the plan has no product for filter {filter!r}; filters: "
                   f"{', '.join(p.filter_name for p in plan.products)}")


def truth_path(layout: RunLayout, product_name: str) -> Path:
    """``<run>/truth/<product>_truth.ecsv``."""
    return layout.truth_table(product_name)


def file_ending(directory: Path, suffix: str) -> Path | None:
    """The one file of ``directory`` whose name ends with ``suffix`` (None if there is none;
    :class:`TruthError` if there are several)."""
    found = sorted(directory.glob(f"*{suffix}"))
    if len(found) > 1:
        raise TruthError(f"{directory}: several *{suffix} files: "
                         f"{', '.join(p.name for p in found)}")
    return found[0] if found else None


# --- MIRAGE truth lists -------------------------------------------------------------------

def read_exposure_lists(exposure_dir: str | os.PathLike) -> dict[str, Table]:
    """MIRAGE's truth lists of one exposure, in common column names.

    Parameters
    ----------
    exposure_dir : path
        ``exposures/<base>/`` of a run.

    Returns
    -------
    dict
        ``{"star": Table, "galaxy": Table}`` (a type is absent if MIRAGE wrote no list),
        with columns ``index``, ``pixel_x``, ``pixel_y`` (0-based subarray pixels),
        ``magnitude`` (AB, as MIRAGE used it) and ``countrate_adu_s`` (catalog flux,
        infinite aperture, ADU/s); galaxies also ``radius_pix``.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist.
    """
    from astropy.table import Table


    d = Path(exposure_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: the exposure's simulator directory is missing")
    out: dict[str, Table] = {}
    ps = file_ending(d, "_pointsources.list")
    if ps is not None:
        raw = read_point_source_list(ps)
        out["star"] = Table({
            "index": np.asarray(raw["index"], np.int64),
            "pixel_x": np.asarray(raw["pixel_x"], np.float64),
            "pixel_y": np.asarray(raw["pixel_y"], np.float64),
            "magnitude": np.asarray(raw["magnitude"], np.float64),
            "countrate_adu_s": np.asarray(raw["countrate_adu_s"], np.float64)},
            meta={"path": str(ps)})
    gal = file_ending(d, "_galaxySources.list")
    if gal is not None:
        raw = read_galaxy_list(gal)
        out["galaxy"] = Table({
            "index": np.asarray(raw["index"], np.int64),
            "pixel_x": np.asarray(raw["pixelx"], np.float64),
            "pixel_y": np.asarray(raw["pixely"], np.float64),
            "magnitude": np.asarray(raw["magnitude"], np.float64),
            "countrate_adu_s": np.asarray(raw["countrate_e/s"], np.float64),
            "radius_pix": np.asarray(raw["radius"], np.float64)},
            meta={"path": str(gal)})
    return out


def science_region(layout: RunLayout, exposure: Exposure) -> tuple[int, int, int, int]:
    """Science pixels of an exposure's subarray: ``(x0, x1, y0, y1)``, 0-based, end-exclusive.

    The reference-pixel border (4 pixels on every side of the 2048 x 2048 detector) is
    excluded using the subarray origin ``SUBSTRT1/2`` of the cal (or uncal) file; without
    either file the whole subarray counts.
    """
    from astropy.io import fits

    x0, x1, y0, y1 = 0, exposure.xsize, 0, exposure.ysize
    for path in (layout.image2 / exposure.cal_name,
                 layout.exposure_dir(exposure.base_name) / exposure.uncal_name):
        if not path.is_file():
            continue
        hdr = fits.getheader(path, 0)
        if "SUBSTRT1" not in hdr or "SUBSTRT2" not in hdr:
            continue
        sx, sy = int(hdr["SUBSTRT1"]) - 1, int(hdr["SUBSTRT2"]) - 1
        lo, hi = REFPIX_BORDER, FULL_SIZE - REFPIX_BORDER
        return (max(x0, lo - sx), min(x1, hi - sx), max(y0, lo - sy), min(y1, hi - sy))
    return x0, x1, y0, y1


def _inside(x: np.ndarray, y: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    x0, x1, y0, y1 = region
    return (x >= x0 - 0.5) & (x < x1 - 0.5) & (y >= y0 - 0.5) & (y < y1 - 0.5)


# --- mosaic footprint ---------------------------------------------------------------------

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


# --- expected S/N -------------------------------------------------------------------------

def _fwhm_arcsec(filter: str) -> float:
    return default_match_radius(filter) / 1e3


def default_blend_radius_mas(filter: str, channel: str = "SHORT") -> float:
    """Default blending radius, mas: the source catalog's sky annulus (13 native pixels)
    plus ``BLEND_FWHM`` x FWHM, so a brighter neighbour's core cannot reach the annulus
    (514 mas in F115W, 550 mas in F150W, 1240 mas in F444W)."""
    scale = NATIVE_SCALE_ARCSEC[channel]
    return (SKY_ANNULUS_OUTER_PIX * scale + BLEND_FWHM * _fwhm_arcsec(filter)) * 1e3


@dataclass(frozen=True)
class ExposureNoise:
    """What the S/N model needs of one exposure (units in the names).

    ``gain_e_per_adu``: MIRAGE's mean gain; ``readnoise_group_e``: read noise of one group
    (CDS noise / sqrt 2 / sqrt nframes); ``sky_adu_s``: sky per pixel;
    ``pixel_scale_arcsec``: native scale.
    """

    gain_e_per_adu: float
    readnoise_group_e: float
    sky_adu_s: float
    ngroups: int
    nints: int
    tgroup_s: float
    pixel_scale_arcsec: float


def expected_snr(countrate_adu_s: np.ndarray, radius_pix: np.ndarray, fraction: float | np.ndarray,
                 covered: np.ndarray, noise: Sequence[ExposureNoise]) -> np.ndarray:
    """Rough expected S/N of sources in the mosaic of several exposures.

    Per exposure that covers a source, an up-the-ramp slope over ``ngroups`` equally spaced
    groups (per integration ``t = (ngroups - 1) tgroup``) gives, in electrons::

        S   = f R g t
        var = c (f R + n B) g t + n 12 (ngroups - 1) / (ngroups (ngroups + 1)) sigma_g**2

    with ``f`` the flux fraction in an aperture of ``n = pi r**2`` pixels, ``R`` the count
    rate (ADU/s), ``B`` the sky (ADU/s/pixel), ``g`` the gain, ``sigma_g`` the read noise of
    one group and ``c = 6 (ngroups**2 + 1) / (5 ngroups (ngroups + 1))`` the photon-noise
    factor of the fit. Exposures add (signals and variances; drizzle keeps totals); the S/N
    is ``sum S / sqrt(sum var)``. It ignores flat-field and sky-estimate noise, correlated
    drizzle noise, saturation and cosmic rays: a guide for "S/N >= 20" samples, not a
    prediction of measured errors.

    Parameters
    ----------
    countrate_adu_s : ndarray, shape (n,)
        Total count rate, ADU/s.
    radius_pix : ndarray, shape (n,)
        Aperture radius, native pixels.
    fraction : float or ndarray
        Flux fraction inside the aperture.
    covered : ndarray of bool, shape (n, n_exposures)
        Whether each exposure covers each source.
    noise : sequence of ExposureNoise, length n_exposures

    Returns
    -------
    ndarray
        S/N per source (0 where no exposure covers it; NaN if an exposure has < 2 groups).
    """
    rate = np.asarray(countrate_adu_s, float)
    npix = np.pi * np.asarray(radius_pix, float) ** 2
    f = np.broadcast_to(np.asarray(fraction, float), rate.shape)
    sig = np.zeros(rate.shape)
    var = np.zeros(rate.shape)
    cov = np.asarray(covered, bool).reshape(rate.size, len(noise))
    for k, e in enumerate(noise):
        ng = e.ngroups
        if ng < 2:
            return np.full(rate.shape, np.nan)
        t = (ng - 1) * e.tgroup_s
        c = 6.0 * (ng**2 + 1) / (5.0 * ng * (ng + 1))
        rn2 = 12.0 * (ng - 1) / (ng * (ng + 1)) * e.readnoise_group_e**2
        s = f * rate * e.gain_e_per_adu * t * e.nints
        v = e.nints * (c * (f * rate + npix * e.sky_adu_s) * e.gain_e_per_adu * t + npix * rn2)
        sig += np.where(cov[:, k], s, 0.0)
        var += np.where(cov[:, k], v, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, sig / np.sqrt(var), 0.0)


def _sky_adu_s(layout: RunLayout, exposure: Exposure) -> float:
    """MIRAGE's ``bkgdrate`` from the exposure's yaml, else the run's conversion."""
    rate = _yaml_bkgdrate(layout, exposure)
    if rate is not None:
        return rate
    return float(background_adu_s(exposure.detector, exposure.filter_name,
                                  exposure.background_mjysr))


def _yaml_bkgdrate(layout: RunLayout, exposure: Exposure) -> float | None:
    import yaml

    path = layout.exposure_dir(exposure.base_name) / f"{exposure.base_name}.yaml"
    if not path.is_file():
        return None
    doc = yaml.safe_load(path.read_text()) or {}
    value = (doc.get("simSignals") or {}).get("bkgdrate")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # a file name or "low"/"medium"/"high": not a number we can use


def _exposure_noise(layout: RunLayout, exposure: Exposure) -> ExposureNoise:
    det = get_detector(exposure.detector)
    return ExposureNoise(
        gain_e_per_adu=det.gain_e_per_dn,
        readnoise_group_e=det.readnoise_cds_e / math.sqrt(2.0) / math.sqrt(exposure.nframes),
        sky_adu_s=_sky_adu_s(layout, exposure), ngroups=exposure.ngroups, nints=exposure.nints,
        tgroup_s=exposure.tgroup_s, pixel_scale_arcsec=NATIVE_SCALE_ARCSEC[det.channel])


# --- the truth table ----------------------------------------------------------------------

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


@dataclass(frozen=True)
class Listed:
    """The union of one source type over a mosaic's exposures (MIRAGE truth lists).

    ``index`` (sorted, unique), the first listing's ``magnitude`` and ``countrate_adu_s``,
    the file it came from (``source``), and ``covered`` (n_sources x n_exposures bool: on
    that exposure's science pixels).
    """

    index: np.ndarray
    magnitude: np.ndarray
    countrate_adu_s: np.ndarray
    source: list[str]
    covered: np.ndarray


def _gather(layout: RunLayout, exposures: Sequence[Exposure]) -> dict[str, Listed]:
    """Union of the exposures' truth lists per type (vectorised over sources)."""
    parts: dict[str, list[tuple[int, Table, np.ndarray]]] = {"star": [], "galaxy": []}
    for k, e in enumerate(exposures):
        lists = read_exposure_lists(layout.exposure_dir(e.base_name))
        region = science_region(layout, e)
        for kind, t in lists.items():
            parts[kind].append((k, t, _inside(np.asarray(t["pixel_x"]),
                                              np.asarray(t["pixel_y"]), region)))
    out = {}
    for kind, items in parts.items():
        idx = np.concatenate([np.asarray(t["index"], np.int64) for _, t, _ in items]) \
            if items else np.zeros(0, np.int64)
        uniq, first = np.unique(idx, return_index=True)  # first listing of each index
        covered = np.zeros((uniq.size, len(exposures)), bool)
        mags, rates, srcs = [], [], []
        for k, t, inside in items:
            covered[np.searchsorted(uniq, np.asarray(t["index"], np.int64)), k] |= inside
            mags.append(np.asarray(t["magnitude"], float))
            rates.append(np.asarray(t["countrate_adu_s"], float))
            srcs += [t.meta["path"]] * len(t)
        out[kind] = Listed(uniq, _firsts(mags, first), _firsts(rates, first),
                           [srcs[i] for i in first], covered)
    return out


def _firsts(arrays: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    return np.concatenate(arrays)[first] if arrays else np.zeros(0)


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
    fwhm = _fwhm_arcsec(band)
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


def build_truth(run: str | os.PathLike | RunLayout, plan: Plan | None, filter: str, *,
                blend_radius_mas: float | None = None, i2d: str | os.PathLike | None = None,
                write: bool = True) -> Table:
    """Truth table of one filter's mosaic (columns: see the module docstring).

    Parameters
    ----------
    run : path or RunLayout
        The run directory.
    plan : Plan or None
        The run's plan (read from ``plan.json`` if None).
    filter : str
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

    layout = _layout(run)
    plan = plan if plan is not None else load_plan(layout)
    product = product_for(plan, filter)
    band = product.filter_name
    exposures = plan.exposures_in(product)
    catalog = _catalog(layout, band)
    listed = _gather(layout, exposures)
    noise = [_exposure_noise(layout, e) for e in exposures]

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


    channel = get_detector(exposures[0].detector).channel if exposures else "SHORT"
    radius_mas = blend_radius_mas if blend_radius_mas is not None else \
        default_blend_radius_mas(band, channel)
    truth["has_bright_neighbour"] = flag_bright_neighbours(
        truth["ra"], truth["dec"], truth["mag_true_ab"], radius_mas)

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
        "snr_model": (f"simval.truth.expected_snr: stars {STAR_APERTURE_EE:g} of the flux in "
                      f"r = {STAR_APERTURE_FWHM:g} FWHM, galaxies {GALAXY_APERTURE_FRACTION:g}"
                      f" in r = hypot(r_half_circ, {GALAXY_PSF_FWHM:g} FWHM); rough"),
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


# --- backgrounds --------------------------------------------------------------------------

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


def asn_members(layout: RunLayout, product: Product) -> list[str]:
    """Base names of a product's association members, in association order (the order of
    resample's context bits and of the i2d ``HDRTAB``); the plan's order without the file."""
    asn = layout.product_dir(product.name) / product.asn_name
    if not asn.is_file():
        return list(product.members)
    doc = json.loads(asn.read_text())
    return [m["expname"].removesuffix("_cal.fits")
            for p in doc.get("products", []) for m in p.get("members", [])]


def _seed_sky(exposure_dir: Path) -> float:
    """Sky rate of MIRAGE's noiseless seed image, ADU/s: the median of ``final - point
    sources - galaxies`` (exact where MIRAGE added only the sky), NaN if not available."""
    from astropy.io import fits

    final = file_ending(exposure_dir, "_final_seed_image.fits")
    if final is None:
        return float("nan")
    data = np.asarray(fits.getdata(final, 1), float)
    for suffix in ("_ptsrc_seed_image.fits", "_galaxy_seed_image.fits"):
        part = file_ending(exposure_dir, suffix)
        if part is not None:
            data = data - np.asarray(fits.getdata(part, 1), float)
    return float(np.median(data))


def _cal_photmjsr(layout: RunLayout, exposure: Exposure) -> float:
    from astropy.io import fits

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
    ``photmjsr`` (PHOTMJSR of the cal file, MJy/sr per ADU/s; NaN without it),
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

    layout = _layout(run)
    plan = plan if plan is not None else load_plan(layout)
    rows = []
    sources = {}
    for product in plan.products:
        levels, source = _skymatch_levels(layout, product)
        subtracted = _levels(_background_file(layout, product), "subtracted_levels_mjysr")
        sources[product.filter_name] = source
        for e in plan.exposures_in(product):
            rate = _yaml_bkgdrate(layout, e)
            seed = _seed_sky(layout.exposure_dir(e.base_name)) \
                if layout.exposure_dir(e.base_name).is_dir() else float("nan")
            phot = _cal_photmjsr(layout, e)
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
