"""Builders for tests of simval and of code built on it: synthetic run directories.

A synthetic run holds the files a real one holds, written by hand or by the real metric
functions; these helpers add what the evaluation and the readers need on top:

- :func:`record_stage` writes a complete stage record for files already in place (so
  :func:`simval.run.ensure_evaluated` can run the real truth and evaluation stages on a
  run that no simulator or pipeline made);
- :func:`record_finished_run` records every catalog, simulate, image2 and image3 output
  that exists at its standard place (:mod:`simval.layout`);
- :func:`write_evaluation` writes one product's match table and metrics and the
  ``metrics.json`` join with the real functions (for runs without a plan's exposures);
- :func:`tan_wcs` is the gnomonic WCS of a synthetic mosaic.

A whole **finished fake run** (no simulator, no pipeline: what ``simval report``,
``simval compare`` and the pytest plugin read) is made by :func:`make_fake_run` from three
builders that can also be called alone, in the spirit of :mod:`photutils.datasets`:

- :func:`make_truth`: a truth table (the contract of :mod:`simval.match`) of stars and
  galaxies placed uniformly at random on a mosaic grid;
- :func:`make_catalog`: a source catalog like jwst's ``source_catalog`` writes, "measured"
  from a truth table with known errors (position noise and shift, magnitude noise, a
  flux scale, missed and spurious sources);
- :func:`make_i2d`: an ``_i2d.fits`` like calwebb_image3 writes (SCI in MJy/sr with a TAN
  WCS, ERR, CON, WHT), the truth's sources drawn as Gaussians on a flat sky with white noise
  (or noise correlated by a known kernel, as drizzle correlates it);
- :func:`make_truth_mosaic` and :func:`make_segmentation`: the truth stage's noiseless
  mosaic of the same scene and a ``_segm.fits`` for a catalog.

Every number is a known answer: a run made with ``scale=1.05`` has catalog fluxes and
mosaic pixels 1.05 times the truth's; one made with ``shift_mas=20`` reads
``astrom_dra_mas`` = 20 mas through the real matching and metrics. Units: positions in deg
(sky) or 0-based pixels, offsets in mas, magnitudes AB, fluxes in Jy, surface brightness in
MJy/sr. The same seeds give the same files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from simval.constants import AB_FLUX_JY, JY_PER_MJY, SR_PER_ARCSEC2
from simval.evaluate import join_metrics
from simval.layout import RunLayout
from simval.manifest_schema import Manifest
from simval.match import match_catalogs
from simval.match_table import build_match_table, write_match_table
from simval.metrics import background_residual, catalog_metrics, source_mask
from simval.metrics_schema import MetricsDocument, write_metrics
from simval.run.manifest import build_manifest
from simval.run.records import FileRef, StageOutcome, StageSpec, now_utc, record_complete
from simval.run.resources import Usage
from simval.sky import from_tangent, to_tangent
from simval.truth import write_truth
from simval.truth.mosaic import write_truth_mosaic

if TYPE_CHECKING:
    from simval.metrics_schema import Measurement
    from simval.plan import Plan

__all__ = [
    "FIELD_CENTRE_DEG",
    "PHOTOM_REFERENCE",
    "PIXEL_SCALE_ARCSEC",
    "make_catalog",
    "make_fake_run",
    "make_i2d",
    "make_segmentation",
    "make_truth",
    "make_truth_mosaic",
    "manifest_of",
    "product_name",
    "record_finished_run",
    "record_stage",
    "tan_wcs",
    "write_evaluation",
]


def record_stage(layout: RunLayout, stage_id: str, outputs: Mapping[str, str | os.PathLike],
                 *, info: Mapping[str, Any] | None = None) -> None:
    """A ``complete`` record of stage ``stage_id`` (kind: the part before the first dot)
    whose outputs are the given files (name -> path, which must exist)."""
    kind = stage_id.partition(".")[0]
    spec = StageSpec(stage_id, kind, str(layout.root))
    refs = {name: FileRef.of(path, layout) for name, path in outputs.items()}
    record_complete(spec, layout, inputs={}, fp="synthetic", started=now_utc(),
                    usage=Usage(), outputs=refs, info=dict(info or {}))


def manifest_of(layout: RunLayout, outcomes: Mapping[str, StageOutcome], *,
                scenario: tuple[str, str] = ("t", "0" * 16)) -> dict[str, Any]:
    """The manifest :func:`simval.run.manifest.build_manifest` makes of these stage
    outcomes, with empty kit, CRDS, execution and pipeline facts."""
    plan = SimpleNamespace(scenario_name=scenario[0], scenario_hash=scenario[1])
    return build_manifest(layout=layout, plan=plan, scenario_source=f"{scenario[0]}.yaml",
                          outcomes=outcomes, kit_info={}, crds={}, execution={}, pipeline={},
                          background_recipe="skymatch", started_utc="", wall_s=1.0)


def _existing(paths: Mapping[str, Path | None]) -> dict[str, Path]:
    return {k: p for k, p in paths.items() if p is not None and p.is_file()}


def record_finished_run(layout: RunLayout, plan: Plan) -> None:
    """Record the catalog, simulate, detector1, image2 and image3 outputs of a synthetic run that
    exist at their standard places (missing optional files are left out)."""
    record_stage(layout, "catalog", _existing({"stars": layout.catalog / "stars.ecsv",
                                               "galaxies": layout.catalog / "galaxies.ecsv"}))
    for e in plan.exposures:
        d = layout.exposure_dir(e.base_name)
        base = e.base_name
        record_stage(layout, f"simulate.{base}", _existing({
            "seed_image": next(iter(sorted(d.glob("*_final_seed_image.fits"))), None),
            "yaml": d / f"{base}.yaml",
            "point_sources": d / f"{base}_uncal_pointsources.list",
            "galaxies": d / f"{base}_uncal_galaxySources.list",
            "uncal": d / e.uncal_name}))
        record_stage(layout, f"detector1.{base}",
                     _existing({"rate": layout.detector1 / e.rate_name}))
        record_stage(layout, f"image2.{base}", _existing({"cal": layout.image2 / e.cal_name}))
    for p in plan.products:
        record_stage(layout, f"image3.{p.name}", _existing({
            suffix.removeprefix("_").split(".")[0].replace("cat", "catalog").replace(
                "segm", "segmentation"): layout.product_file(p.name, suffix)
            for suffix in ("_i2d.fits", "_cat.ecsv", "_asn.json", "_background.json",
                           "_segm.fits")}))


def write_evaluation(root: str | os.PathLike, *, band: str, product: str, truth: Table,
                     measured: Table, radius_mas: float,
                     extra: Mapping[str, Measurement] | None = None,
                     catalog_options: Mapping[str, Any] | None = None,
                     scenario: tuple[str, str] = ("synthetic", "0123456789abcdef"),
                     provenance: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Evaluate one synthetic product with the real matching and catalog metrics: write
    ``truth/<product>_truth.ecsv``, ``evaluation/<product>_match.ecsv`` and
    ``_metrics.json`` (catalog metrics plus ``extra``), and re-join ``metrics.json`` over
    every product evaluated so far. Returns the paths written."""

    layout = RunLayout(Path(root))
    for d in (layout.truth, layout.evaluation):
        d.mkdir(parents=True, exist_ok=True)
    options = dict(catalog_options or {})
    match = match_catalogs(measured, truth, radius_mas=radius_mas)
    cm = catalog_metrics(truth, measured, match, **options)
    out = {"truth": write_truth(truth, layout.truth_table(product)),
           "match": write_match_table(build_match_table(truth, measured, match, cm,
                                                        band=band, product=product),
                                      layout.match_table(product))}
    doc = MetricsDocument(scenario[0], "-")
    doc.add(band, {**cm.measurements(), **dict(extra or {})})
    doc.provenance = {"filters": {band.upper(): {"product": product,
                                                 "match_radius_mas": radius_mas,
                                                 "match_table": layout.rel(out["match"])}},
                      "catalog_options": options}
    out["metrics"] = write_metrics(layout.product_metrics(product), doc)
    parts = sorted(layout.evaluation.glob("*_metrics.json"))
    out["joined"] = join_metrics(layout, parts, scenario_name=scenario[0],
                                 scenario_hash=scenario[1], crds_context=None,
                                 versions={"simval": "0.1.0"})
    if provenance:
        data = json.loads(out["joined"].read_text())
        data["provenance"].update(provenance)
        out["joined"].write_text(json.dumps(data, indent=2))
    return out


def tan_wcs(shape: tuple[int, int], crval: tuple[float, float], scale_arcsec: float) -> WCS:
    """A gnomonic WCS centred on ``shape`` (ny, nx) at ``crval`` (deg), north up, east
    left, ``scale_arcsec`` per pixel."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w


# --- a finished fake run ------------------------------------------------------------------

#: Centre of the fake field (ICRS, deg): GOODS-S.
FIELD_CENTRE_DEG = (53.1625, -27.7914)
#: Pixel scale of the fake mosaics, arcsec (NIRCam short wavelength).
PIXEL_SCALE_ARCSEC = 0.0311
#: Photom reference file a fake run's manifest records.
PHOTOM_REFERENCE = "simval_nircam_photom_nrcb1_b9747364e40a.fits"
#: Mosaic shape (ny, nx) of the builders' defaults, pixels.
_SHAPE = (180, 200)
#: The error of every failed stage of a fake run.
_ERROR = "ValueError: resample found no valid pixels"
#: Fixed times of a fake run (UTC).
_CREATED, _FINISHED, _EVALUATED = ("2026-01-01T00:00:00+00:00", "2026-01-01T00:05:00+00:00",
                                   "2026-01-01T00:06:00+00:00")


def product_name(band: str) -> str:
    """The image3 product (mosaic) name of ``band`` in a fake run."""
    return f"jw00001-o001_t001_nircam_clear-{band.lower()}"


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _field_wcs(wcs: WCS | None, shape: tuple[int, int]) -> WCS:
    return wcs if wcs is not None else tan_wcs(shape, FIELD_CENTRE_DEG, PIXEL_SCALE_ARCSEC)


def _pixel_area_sr(wcs: WCS) -> float:
    return float(abs(np.linalg.det(wcs.pixel_scale_matrix))) * (3600.0 ** 2) * SR_PER_ARCSEC2


def make_truth(seed: int | np.random.Generator = 1, *, n_stars: int = 300,
               n_galaxies: int = 60, shape: tuple[int, int] = _SHAPE, wcs: WCS | None = None,
               mag_range: tuple[float, float] = (18.0, 26.0), margin_pix: float = 8.0,
               snr_mag: float = 27.0, n_exposures: int = 2) -> Table:
    """A truth table (the contract of :mod:`simval.match`) of a synthetic field.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Random state of the positions and magnitudes.
    n_stars, n_galaxies : int
        Sources of each ``type`` (stars first, ``id`` 1..n).
    shape : (ny, nx)
        Mosaic grid, pixels; positions are uniform over it, ``margin_pix`` from the edges.
    wcs : astropy.wcs.WCS, optional
        Of the grid; default :func:`tan_wcs` at :data:`FIELD_CENTRE_DEG`,
        :data:`PIXEL_SCALE_ARCSEC` per pixel.
    mag_range : (float, float)
        Uniform range of ``mag_true_ab``, AB mag.
    snr_mag : float
        AB magnitude of expected S/N 1: ``snr_expected = 10**(0.4 (snr_mag - mag))``.
    n_exposures : int
        Coverage of every source.

    Returns
    -------
    astropy.table.Table
        ``id, ra, dec`` (deg), ``type``, ``mag_true_ab``, ``flux_true_jy`` (Jy),
        ``in_footprint`` (all true), ``n_exposures``, ``has_bright_neighbour`` (all false),
        ``snr_expected``, ``mosaic_x, mosaic_y`` (0-based pixels of the grid).
    """
    rng = _rng(seed)
    w = _field_wcs(wcs, shape)
    n = n_stars + n_galaxies
    x = rng.uniform(margin_pix, shape[1] - 1 - margin_pix, n)
    y = rng.uniform(margin_pix, shape[0] - 1 - margin_pix, n)
    ra, dec = w.all_pix2world(x, y, 0)
    mag = rng.uniform(*mag_range, n)
    return Table({"id": np.arange(1, n + 1), "ra": ra, "dec": dec,
                  "type": np.array(["star"] * n_stars + ["galaxy"] * n_galaxies),
                  "mag_true_ab": mag, "flux_true_jy": AB_FLUX_JY * 10 ** (-0.4 * mag),
                  "in_footprint": np.ones(n, bool), "n_exposures": np.full(n, n_exposures),
                  "has_bright_neighbour": np.zeros(n, bool),
                  "snr_expected": 10 ** (0.4 * (snr_mag - mag)), "mosaic_x": x, "mosaic_y": y})


def make_catalog(truth: Table, *, seed: int | np.random.Generator = 7, scale: float = 1.0,
                 shift_mas: float = 0.0, sigma_mas: float = 5.0, sigma_mag: float = 0.02,
                 mag_limit: float | None = 25.5, missing_every: int | None = None,
                 n_spurious: int = 6, spurious_mag_range: tuple[float, float] = (25.0, 26.0),
                 min_separation_pix: float = 10.0, galaxy_loss_mag: float = 0.4,
                 snr_mag: float = 27.0, shape: tuple[int, int] = _SHAPE,
                 wcs: WCS | None = None) -> Table:
    """A source catalog "measured" from ``truth`` with known errors, with the columns of
    jwst's ``source_catalog`` that simval reads.

    Parameters
    ----------
    truth : astropy.table.Table
        Truth table (``ra``, ``dec``, ``mag_true_ab``, ``type``; :func:`make_truth`).
    seed : int or numpy.random.Generator
        Random state of the noise and of the spurious sources.
    scale : float
        Flux calibration factor: every flux is ``scale`` times the truth's (times the
        magnitude noise); errors scale alike, so the S/N does not change.
    shift_mas, sigma_mas : float
        Systematic offset to the east and Gaussian noise per axis of the positions, mas.
    sigma_mag : float
        Gaussian noise of the magnitudes, mag.
    mag_limit : float, optional
        Only truth sources brighter than this are detected (AB mag).
    missing_every : int, optional
        Also miss every ``missing_every``-th truth row (rows 0, k, 2k, ...).
    n_spurious : int
        Detections of nothing: 8 pixels or more inside the grid, more than
        ``min_separation_pix`` from every truth source, magnitudes uniform in
        ``spurious_mag_range``.
    galaxy_loss_mag : float
        Isophotal magnitudes of galaxies are this much fainter (the isophote loses the
        wings); aperture-total magnitudes and every star's are the true ones.
    snr_mag : float
        AB magnitude of S/N 1 for the flux errors: ``S/N = 10**(0.4 (snr_mag - mag))``.
    shape, wcs
        The mosaic grid (default as :func:`make_truth`'s): spurious sources inside it,
        ``xcentroid``, ``ycentroid`` in its 0-based pixels.

    Returns
    -------
    astropy.table.Table
        ``label``, ``xcentroid``, ``ycentroid``, ``sky_centroid`` (SkyCoord),
        ``aper_total_flux[_err]`` and ``isophotal_flux[_err]`` (Jy), ``aper_total_abmag``,
        ``isophotal_abmag`` and their ``_err`` (AB mag), ``is_extended``; detections in
        truth order, then the spurious ones.
    """
    rng = _rng(seed)
    w = _field_wcs(wcs, shape)
    mag_true = np.asarray(truth["mag_true_ab"], float)
    keep = np.ones(mag_true.size, bool)
    if mag_limit is not None:
        keep &= mag_true < mag_limit
    if missing_every:
        keep &= np.arange(mag_true.size) % missing_every != 0
    det = np.flatnonzero(keep)
    centre = tuple(float(c) for c in w.wcs.crval)
    xi, eta = to_tangent(np.asarray(truth["ra"], float)[det],
                         np.asarray(truth["dec"], float)[det], *centre)
    xi = xi + (shift_mas + rng.normal(0.0, sigma_mas, det.size)) / 1000.0
    eta = eta + rng.normal(0.0, sigma_mas, det.size) / 1000.0
    ra, dec = from_tangent(xi, eta, *centre)
    mag = mag_true[det] + rng.normal(0.0, sigma_mag, det.size)
    galaxy = np.char.lower(np.asarray(truth["type"]).astype(str))[det] == "galaxy"

    tx, ty = w.all_world2pix(np.asarray(truth["ra"], float), np.asarray(truth["dec"], float), 0)
    sx: list[float] = []
    sy: list[float] = []
    tries = 0
    while len(sx) < n_spurious:
        tries += 1
        if tries > 1000 * n_spurious:
            raise ValueError(f"no room for {n_spurious} spurious sources "
                             f"{min_separation_pix} pixels from every truth source")
        x, y = rng.uniform(8, shape[1] - 9), rng.uniform(8, shape[0] - 9)
        if tx.size == 0 or np.min(np.hypot(tx - x, ty - y)) > min_separation_pix:
            sx.append(x)
            sy.append(y)
    sra, sdec = w.all_pix2world(sx, sy, 0)
    ra, dec = np.concatenate([ra, sra]), np.concatenate([dec, sdec])
    mag = np.concatenate([mag, rng.uniform(*spurious_mag_range, n_spurious)])
    galaxy = np.concatenate([galaxy, np.zeros(n_spurious, bool)])
    snr = 10 ** (0.4 * (snr_mag - mag))
    flux = AB_FLUX_JY * 10 ** (-0.4 * mag) * scale
    iso = flux * np.where(galaxy, 10 ** (-0.4 * galaxy_loss_mag), 1.0)
    x, y = w.all_world2pix(ra, dec, 0)
    mag_err = 2.5 / math.log(10) / snr
    return Table({"label": np.arange(1, ra.size + 1), "xcentroid": x, "ycentroid": y,
                  "sky_centroid": SkyCoord(ra * u.deg, dec * u.deg),
                  "aper_total_flux": flux * u.Jy, "aper_total_flux_err": flux / snr * u.Jy,
                  "aper_total_abmag": -2.5 * np.log10(flux / AB_FLUX_JY),
                  "aper_total_abmag_err": mag_err,
                  "isophotal_flux": iso * u.Jy, "isophotal_flux_err": iso / snr * u.Jy,
                  "isophotal_abmag": -2.5 * np.log10(iso / AB_FLUX_JY),
                  "isophotal_abmag_err": mag_err, "is_extended": galaxy})


def _render_sources(img: np.ndarray, truth: Table, w: WCS, psf_sigma_pix: float,
                    pixar_sr: float) -> np.ndarray:
    """Add the truth's sources (``flux_true_jy``, else from ``mag_true_ab``) to ``img``
    (MJy/sr) as circular Gaussians of ``psf_sigma_pix`` sampled at the pixel centres;
    return ``img``."""
    ny, nx = img.shape
    names = truth.colnames
    flux = np.asarray(truth["flux_true_jy"], float) if "flux_true_jy" in names else \
        AB_FLUX_JY * 10 ** (-0.4 * np.asarray(truth["mag_true_ab"], float))
    peak = flux / (2 * math.pi * psf_sigma_pix ** 2 * pixar_sr * JY_PER_MJY)  # MJy/sr
    xs, ys = w.all_world2pix(np.asarray(truth["ra"], float), np.asarray(truth["dec"], float), 0)
    r = math.ceil(6 * psf_sigma_pix)
    for x, y, a in zip(xs, ys, peak, strict=True):
        i0, j0 = round(float(y)), round(float(x))
        sl = (slice(min(max(i0 - r, 0), ny), min(max(i0 + r + 1, 0), ny)),
              slice(min(max(j0 - r, 0), nx), min(max(j0 + r + 1, 0), nx)))
        yy, xx = np.mgrid[sl]
        img[sl] += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * psf_sigma_pix ** 2))
    return img


def make_i2d(path: str | os.PathLike, truth: Table, *, seed: int | np.random.Generator = 7,
             sky_mjysr: float = 0.2, noise_mjysr: float = 0.01, scale: float = 1.0,
             psf_sigma_pix: float = 1.2, shape: tuple[int, int] = _SHAPE,
             wcs: WCS | None = None,
             hole: tuple[slice, slice] | None = (slice(0, 10), slice(0, 10)),
             noise_kernel: Any = None, err_scale: float = 1.0,
             resample: Mapping[str, float] | None = None) -> np.ndarray:
    """Write an ``_i2d.fits`` like calwebb_image3's and return its SCI array (MJy/sr).

    The truth's sources (``flux_true_jy``, else from ``mag_true_ab``) are circular
    Gaussians of ``psf_sigma_pix`` on a flat sky of ``sky_mjysr`` with white noise of
    ``noise_mjysr``; then everything (sky, sources, noise, ERR) is multiplied by ``scale``,
    as a photometric calibration factor would. Pixels in ``hole`` (a pair of slices) have
    no data: NaN, weight 0. HDUs: primary (TELESCOP, INSTRUME), SCI (TAN WCS, BUNIT,
    PIXAR_SR, PIXAR_A2), ERR (``noise_mjysr * scale * err_scale``), CON, WHT (inverse
    variance). ``shape`` and ``wcs`` as in :func:`make_truth`; sources are placed by their
    ``ra``, ``dec`` through ``wcs``.

    Correlated noise, as drizzle makes it: with ``noise_kernel`` (a 2-D array) the white
    noise is convolved with the kernel divided by its sum, so the noise of a large-area
    sum is ``noise_mjysr`` per pixel, which is what jwst's ERR says of a drizzled mosaic
    (:mod:`simval.metrics.aperture_noise`); ``err_scale`` makes a wrong ERR.
    ``resample`` (``{"pixfrac", "pixel_scale_ratio"}``) writes the primary header's
    PIXFRAC and PXSCLRT, as resample does.
    """
    rng = _rng(seed)
    w = _field_wcs(wcs, shape)
    ny, nx = shape
    pixar_sr = _pixel_area_sr(w)
    img = _render_sources(np.full(shape, sky_mjysr, float), truth, w, psf_sigma_pix, pixar_sr)
    noise = rng.normal(0.0, noise_mjysr, shape)
    if noise_kernel is not None:
        from scipy.ndimage import convolve

        k = np.asarray(noise_kernel, float)
        noise = convolve(noise, k / k.sum(), mode="wrap")
    img = (img + noise) * scale
    wht = np.full(shape, 1.0 / noise_mjysr ** 2)
    if hole is not None:
        img[hole] = np.nan
        wht[hole] = 0.0
    header = w.to_header()
    header["BUNIT"] = "MJy/sr"
    header["PIXAR_SR"] = (pixar_sr, "[sr] nominal pixel area")
    header["PIXAR_A2"] = (pixar_sr / SR_PER_ARCSEC2, "[arcsec^2] nominal pixel area")
    cards = [("TELESCOP", "JWST"), ("INSTRUME", "NIRCAM")]
    if resample is not None:
        cards += [("PIXFRAC", float(resample["pixfrac"])),
                  ("PXSCLRT", float(resample["pixel_scale_ratio"]))]
    primary = fits.PrimaryHDU(header=fits.Header(cards))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    err = np.full(shape, noise_mjysr * scale * err_scale, np.float32)
    fits.HDUList([primary, fits.ImageHDU(img.astype(np.float32), header, name="SCI"),
                  fits.ImageHDU(err, name="ERR"),
                  fits.ImageHDU(np.ones((1, ny, nx), np.int32), name="CON"),
                  fits.ImageHDU(wht.astype(np.float32), name="WHT")]).writeto(path)
    return img


def make_truth_mosaic(path: str | os.PathLike, truth: Table, *, sky_mjysr: float = 0.2,
                      psf_sigma_pix: float = 1.2, shape: tuple[int, int] = _SHAPE,
                      wcs: WCS | None = None) -> np.ndarray:
    """Write the noiseless truth mosaic of :func:`make_i2d`'s scene (same sources, same
    grid, the sky, no noise, no calibration factor) as the truth stage does
    (:func:`simval.truth.mosaic.write_truth_mosaic`); return it (MJy/sr)."""
    w = _field_wcs(wcs, shape)
    img = _render_sources(np.full(shape, sky_mjysr, float), truth, w, psf_sigma_pix,
                          _pixel_area_sr(w))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_truth_mosaic(img, path)
    return img


def make_segmentation(path: str | os.PathLike, catalog: Table, *, radius_pix: float = 4.0,
                      shape: tuple[int, int] = _SHAPE) -> np.ndarray:
    """Write a ``_segm.fits`` like source_catalog's (SCI: int32 labels, 0 = sky): a disk of
    ``radius_pix`` around each catalog centroid (``xcentroid``, ``ycentroid``) labelled
    with its ``label``, earlier rows winning where disks overlap; return the labels."""
    seg = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    for label, x, y in zip(np.asarray(catalog["label"]), np.asarray(catalog["xcentroid"]),
                           np.asarray(catalog["ycentroid"]), strict=True):
        disk = ((xx - x) ** 2 + (yy - y) ** 2 <= radius_pix ** 2) & (seg == 0)
        seg[disk] = int(label)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(seg, name="SCI")]).writeto(path)
    return seg


def _per_band(value: float | Mapping[str, float], band: str, default: float) -> float:
    if isinstance(value, Mapping):
        return float(value.get(band, value.get(band.upper(), default)))
    return float(value)


def _manifest(*, bands: Sequence[str], status: str, error: str, scenario: tuple[str, str],
              context: str, photom: str, evaluated: bool, products: bool,
              pipeline_parameters: Mapping[str, Any] | None, layout: RunLayout
              ) -> dict[str, Any]:
    failed = status != "complete"
    stages: dict[str, dict[str, Any]] = {
        "kit": {"kind": "kit", "status": "cached", "wall_s": 10.1, "peak_rss_mb": 700.0,
                "log": "logs/kit.log"}}
    refs: dict[str, dict[str, Any]] = {}
    prods: dict[str, Any] = {}
    blocked: list[str] = []
    for b, band in enumerate(bands):
        name = product_name(band)
        sid = f"image3.{name}"
        stages[sid] = {"kind": "image3", "status": "failed" if failed else "complete",
                       "wall_s": 12.1, "peak_rss_mb": 390.0, "log": f"logs/{sid}.log",
                       "error": error if failed else None}
        for kind in ("truth", "evaluate"):
            if failed or evaluated:
                stages[f"{kind}.{name}"] = {
                    "kind": kind, "status": "blocked" if failed else "complete",
                    "wall_s": 0.0 if failed else 1.2, "peak_rss_mb": 0.0 if failed else 250.0,
                    "blocked_by": sid if failed else None}
        blocked += [f"{kind}.{name}" for kind in ("truth", "evaluate") if failed]
        for k in (1, 2):
            refs[f"jw00001001001_0110{k}_{b + 1:05d}_nrcb1"] = {"image2": {
                "crds_context": context, "photom": photom,
                "flat": f"simval_nircam_flat_nrcb1_{band.lower()}.fits", "area": "N/A"}}
        refs[name] = {"image3": {"crds_context": context, "photom": photom}}
        if products:
            prods[band.upper()] = {
                "name": name, "i2d": layout.rel(layout.product_file(name, "_i2d.fits")),
                "catalog": layout.rel(layout.product_file(name, "_cat.ecsv"))}
    return {
        "schema": 1, "status": status,
        "failed_stages": [f"image3.{product_name(b)}" for b in bands] if failed else [],
        "blocked_stages": blocked,
        "scenario": {"name": scenario[0], "hash": scenario[1], "source": "scenario.yaml"},
        "created_utc": _CREATED, "finished_utc": _FINISHED, "wall_s": 300.0,
        "versions": {"jwst": "3.0.0", "mirage": "2.5.0", "simval": "0.1.0"},
        "crds": {"kind": "kit", "context": context, "path": "/kits/crds"},
        "pipeline_parameters": dict(pipeline_parameters) if pipeline_parameters is not None
        else {"detector1": {}, "image2": {},
              "image3": {"tweakreg": {"skip": True}, "skymatch": {"skystat": "median"}}},
        "background_recipe": "skymatch", "stages": stages, "reference_files": refs,
        "reftype_steps": {"detector1": {"flat": ["clean_flicker_noise"],
                                        "dark": ["dark_current"]},
                          "image2": {"flat": ["flat_field"], "photom": ["photom"]}},
        "products": prods}


def make_fake_run(root: str | os.PathLike, *, bands: Sequence[str] = ("F115W",),
                  scale: float | Mapping[str, float] = 1.0,
                  shift_mas: float | Mapping[str, float] = 0.0, status: str = "complete",
                  error: str = _ERROR, thresholds: Mapping[str, Any] | None = None,
                  match_radius_mas: float = 100.0, context: str = "jwst_0001.pmap",
                  photom: str = PHOTOM_REFERENCE, evaluated: bool = True,
                  scenario: tuple[str, str] = ("synthetic", "0123456789abcdef"),
                  truth_seed: int = 1, noise_seed: int = 7,
                  truth_options: Mapping[str, Any] | None = None,
                  catalog_options: Mapping[str, Any] | None = None,
                  image_options: Mapping[str, Any] | None = None,
                  shape: tuple[int, int] = _SHAPE,
                  mosaic_crval: tuple[float, float] | None = None,
                  pipeline_parameters: Mapping[str, Any] | None = None) -> Path:
    """A finished run directory made without a simulator or a pipeline; returns ``root``.

    For each of ``bands`` (product :func:`product_name`): the truth (:func:`make_truth`,
    seed ``truth_seed``, the same sources in every band), a catalog measured from it
    (:func:`make_catalog`) and a mosaic (:func:`make_i2d`, both seeded by ``noise_seed``
    and the band's position, so that two runs with the same seeds differ only by what
    the arguments change) in ``image3/<product>/``; if ``evaluated``, the truth table,
    match table and metrics through the real functions (:func:`write_evaluation`; the
    mosaic's background metrics by :func:`simval.metrics.background_residual` against the
    injected sky) and ``metrics.json``. Always ``plan.json`` (the products and the
    scenario's ``comparison``: ``match_radius_mas``, ``thresholds``) and ``manifest.json``
    (valid :class:`simval.manifest_schema.Manifest`: stages ``kit``, ``image3.<product>``
    and, if evaluated, ``truth.<product>``, ``evaluate.<product>``; the CRDS ``context``,
    reference files with ``photom``, pipeline parameters and versions).

    ``status="failed"``: every ``image3`` stage failed with ``error`` (the truth and
    evaluate stages blocked); no product and no evaluation is written.

    ``scale`` and ``shift_mas`` (a number, or per band) are the catalogs' and mosaics'
    flux factor and the catalog positions' offset to the east (mas). ``truth_options``,
    ``catalog_options`` and ``image_options`` go to the three builders (e.g. ``n_stars``,
    ``sigma_mag``, ``sky_mjysr``); ``shape`` is the mosaic grid, and ``mosaic_crval``
    (deg) moves the mosaic's grid (not the sources) from :data:`FIELD_CENTRE_DEG`.
    """
    if status not in ("complete", "failed"):
        raise ValueError(f"status must be 'complete' or 'failed', not {status!r}")
    layout = RunLayout(Path(root))
    layout.root.mkdir(parents=True, exist_ok=True)
    field = tan_wcs(shape, FIELD_CENTRE_DEG, PIXEL_SCALE_ARCSEC)
    mosaic = tan_wcs(shape, mosaic_crval or FIELD_CENTRE_DEG, PIXEL_SCALE_ARCSEC)
    image = {"sky_mjysr": 0.2, "noise_mjysr": 0.01, **dict(image_options or {})}
    complete = status == "complete"
    for k, band in enumerate(bands if complete else ()):
        name = product_name(band)
        truth = make_truth(truth_seed, shape=shape, wcs=field, **dict(truth_options or {}))
        x, y = mosaic.all_world2pix(truth["ra"], truth["dec"], 0)
        truth["mosaic_x"], truth["mosaic_y"] = x, y
        f = _per_band(scale, band, 1.0)
        measured = make_catalog(truth, seed=np.random.default_rng([noise_seed, k]), scale=f,
                                shift_mas=_per_band(shift_mas, band, 0.0), shape=shape,
                                wcs=mosaic, **dict(catalog_options or {}))
        layout.product_dir(name).mkdir(parents=True, exist_ok=True)
        measured.write(layout.product_file(name, "_cat.ecsv"), format="ascii.ecsv")
        sci = make_i2d(layout.product_file(name, "_i2d.fits"), truth,
                       seed=np.random.default_rng([noise_seed, k, 1]), scale=f, shape=shape,
                       wcs=mosaic, **image)
        if evaluated:
            valid = np.isfinite(sci)
            bkg = background_residual(sci, mask=source_mask(sci, valid=valid), valid=valid,
                                      expected_mjysr=image["sky_mjysr"],
                                      injected_sky_mjysr=image["sky_mjysr"])
            write_evaluation(layout.root, band=band, product=name, truth=truth,
                             measured=measured, radius_mas=match_radius_mas,
                             extra=bkg.measurements(), scenario=scenario,
                             provenance={"evaluated_utc": _EVALUATED, "crds_context": context})
    plan = {"scenario_name": scenario[0], "scenario_hash": scenario[1],
            "ra_deg": FIELD_CENTRE_DEG[0], "dec_deg": FIELD_CENTRE_DEG[1], "pa_v3_deg": 0.0,
            "pointing_aperture": "NRCB1_FULL", "exposures": [],
            "scenario": {"name": scenario[0], "comparison": {
                "match_radius_mas": match_radius_mas, "thresholds": dict(thresholds or {})}},
            "products": [{"name": product_name(b), "filter_name": b} for b in bands]}
    layout.plan.write_text(json.dumps(plan, indent=1))
    doc = _manifest(bands=bands, status=status, error=error, scenario=scenario,
                    context=context, photom=photom, evaluated=evaluated and complete,
                    products=complete, pipeline_parameters=pipeline_parameters, layout=layout)
    Manifest.model_validate(doc)
    layout.manifest.write_text(json.dumps(doc, indent=1))
    return layout.root
