"""Evaluate one mosaic: truth table + pipeline products -> match table + metrics.

The evaluation of a run is three kinds of stage (:mod:`simval.run.stages`), each with a
record and the sha256 resume rule:

1. ``truth.<product>`` (:mod:`simval.truth`, :mod:`simval.truth_mosaic`): the truth
   table, the noiseless truth mosaic and the true backgrounds of one mosaic;
2. ``evaluate.<product>`` (:func:`evaluate_product`, :func:`write_product_evaluation`):
   matches the pipeline's ``_cat.ecsv`` one-to-one with the truth
   (:func:`simval.match.match_catalogs`, within ``comparison.match_radius_mas``, default
   the PSF FWHM), computes every metric of :data:`simval.metrics_schema.REGISTRY` group by
   group (:data:`~simval.metrics_schema.GROUPS`) and writes
   ``evaluation/<product>_match.ecsv`` (:mod:`simval.match_table`) and
   ``evaluation/<product>_metrics.json`` (a ``metrics.json`` for one filter);
3. ``metrics`` (:func:`join_metrics`): ``metrics.json``, the join of the products'.

Verdicts are not part of ``metrics.json``: thresholds (:func:`simval.verdict.
evaluate_thresholds`) and baselines are applied when it is read, so a new threshold never
re-runs an evaluation.

A metric that cannot be computed (no stars, no ERR extension, no skymatch levels, an
exception inside one group) is written with ``value: null``, ``n: 0`` and
``details.not_computed`` giving the reason (the registry's ``empty_reason`` when the group
ran); it fails any threshold set on it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval import metrics as mt
from simval.atomic import atomic_path
from simval.calibrate import CRF_SUFFIX, TWEAKREG_WCS_SUFFIX, member_products, read_tweakreg_wcs
from simval.instruments import miri
from simval.instruments.detectors import detector_facts
from simval.instruments.nircam import get_detector
from simval.kit.photometry import abmag_to_jy, zeropoint_row
from simval.layout import RunLayout
from simval.match import default_match_radius, match_catalogs, radec_of
from simval.match_table import build_match_table, write_match_table
from simval.metrics_schema import (
    CORONAGRAPHY_GROUPS,
    GROUPS,
    REGISTRY,
    Measurement,
    MetricsDocument,
    group_metrics,
    read_metrics,
    write_metrics,
)
from simval.pointing_errors import true_wcs, wcs_offsets_mas
from simval.provenance import now_utc
from simval.regions_files import defect_regions, seam_regions, source_regions, write_regions
from simval.scenario.inputs import Comparison
from simval.seeding import component_rng
from simval.truth import read_truth
from simval.truth.footprints import FrameError, exposure_frames

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.match import MatchResult
    from simval.metrics import CatalogMetrics, DefectReport
    from simval.plan import Exposure, Plan, Product
    from simval.scenario.inputs import Comparison
    from simval.truth.footprints import ExposureFrame

__all__ = [
    "CATALOG_METRICS",
    "EvaluationSettings",
    "MissingProductError",
    "ProductEvaluation",
    "evaluate_product",
    "join_metrics",
    "mosaic_measurements",
    "settings_from_scenario",
    "write_product_evaluation",
]

log = logging.getLogger(__name__)

#: Metrics of :func:`simval.metrics.catalog_metrics` (the ``catalog`` group).
CATALOG_METRICS = group_metrics("catalog")


class MissingProductError(FileNotFoundError):
    """A file the evaluation needs is not in the run directory (the message names it)."""


@dataclass(frozen=True)
class EvaluationSettings:
    """What the evaluation takes from the scenario (all of it JSON: stage parameters).

    Attributes
    ----------
    match_radius_mas : float or None
        ``comparison.match_radius_mas`` (None: the filter's PSF FWHM).
    background_recipe : {"skymatch", "median_masked"}
    skymethod : str or None
        skymatch's ``skymethod`` (jwst default ``match``); None if skymatch was skipped.
    match_down : bool
        skymatch's ``match_down``.
    seed : int
        Seeds the random apertures of the depth.
    catalog_options : dict
        Keyword arguments of :func:`simval.metrics.catalog_metrics` (from
        ``comparison.bright_stars``: ``bright_snr_min``, ``min_exposures``).
    """

    match_radius_mas: float | None
    background_recipe: str
    skymethod: str | None
    match_down: bool
    seed: int
    catalog_options: dict[str, Any]

    def to_params(self) -> dict[str, Any]:
        """The settings as JSON stage parameters, with the metric groups the evaluation
        computes (a run evaluated before a metric existed is evaluated again)."""
        return {"match_radius_mas": self.match_radius_mas,
                "background_recipe": self.background_recipe, "skymethod": self.skymethod,
                "match_down": self.match_down, "seed": self.seed,
                "catalog_options": dict(self.catalog_options),
                "metric_groups": {g: list(group_metrics(g)) for g in GROUPS}}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EvaluationSettings:
        return cls(params["match_radius_mas"], params["background_recipe"],
                   params["skymethod"], bool(params["match_down"]), int(params["seed"]),
                   dict(params["catalog_options"]))


def comparison_of(scenario: Mapping[str, Any]) -> Comparison | None:
    """The typed ``comparison`` block of a normalised scenario (None if absent)."""

    comp = scenario.get("comparison")
    return Comparison.model_validate(comp) if comp is not None else None


def settings_from_scenario(scenario: Mapping[str, Any],
                           catalog_options: Mapping[str, Any] | None = None
                           ) -> EvaluationSettings:
    """Evaluation settings from the normalised scenario (``plan.scenario``);
    ``catalog_options`` override those from ``comparison.bright_stars``."""
    comparison = comparison_of(scenario)
    recipe = scenario.get("background_recipe") or "skymatch"
    sky = ((scenario.get("pipeline") or {}).get("image3") or {}).get("skymatch") or {}
    skymethod = None if sky.get("skip") else str(sky.get("skymethod", "match"))
    options: dict[str, Any] = {}
    if comparison is not None:
        options = {"bright_snr_min": comparison.bright_stars.snr_min,
                   "min_exposures": comparison.bright_stars.min_exposures}
    options.update(catalog_options or {})
    return EvaluationSettings(
        match_radius_mas=None if comparison is None else comparison.match_radius_mas,
        background_recipe=recipe, skymethod=skymethod,
        match_down=bool(sky.get("match_down", True)), seed=int(scenario.get("seed", 0)),
        catalog_options=options)


# --- metric groups ------------------------------------------------------------------------

class _MissingInputError(Exception):
    """A metric group's input is absent; the message is the reason."""


def _not_computed(names: Iterable[str], reason: str) -> dict[str, Measurement]:
    return {n: Measurement.of(n, None, None, 0, {"not_computed": reason}) for n in names}


def _group(out: dict[str, Measurement], group: str,
           compute: Callable[[], Mapping[str, Measurement] | None]) -> None:
    """Run one metric group into ``out``; a failure or a missing input is recorded."""
    names = group_metrics(group)
    what = f"{group} metrics"
    try:
        got = compute()
    except _MissingInputError as skip:
        out.update(_not_computed(names, str(skip)))
        return
    except Exception as exc:  # one group failing must not lose the others
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc, exc_info=True)
        out.update(_not_computed(names, f"{what} failed: {type(exc).__name__}: {exc}"))
        return
    got = dict(got or {})
    out.update({k: v for k, v in got.items() if k in REGISTRY})
    missing = [n for n in names if n not in got]
    out.update(_not_computed(missing, f"{what} did not produce it"))


def _explain(measurements: dict[str, Measurement]) -> dict[str, str]:
    """Add ``details.not_computed`` to value-less entries; return metric -> reason."""
    reasons = {}
    for name, m in list(measurements.items()):
        if m.value is not None:
            continue
        reason = m.details.get("not_computed")
        if reason is None:
            reason = REGISTRY[name].empty_reason
            measurements[name] = Measurement(None, m.uncertainty, m.n, m.unit,
                                             {**m.details, "not_computed": reason})
        reasons[name] = str(reason)
    return reasons


def _require(path: Path | None, what: str) -> Path:
    if path is None or not path.is_file():
        raise MissingProductError(f"{path}: {what} is missing (did the run finish? see "
                                  f"manifest.json)")
    return path


@dataclass(frozen=True)
class Mosaic:
    """The arrays of an ``_i2d.fits`` the metrics use (None where the extension is absent
    or was not asked for); ``pixar_sr``: the SCI header's PIXAR_SR, sr; ``header``: the
    SCI header (its WCS); ``resample``: how resample made it (:func:`resample_parameters`;
    None if the file does not say)."""

    data: np.ndarray
    err: np.ndarray | None
    wht: np.ndarray | None
    con: np.ndarray | None
    pixar_sr: float | None
    header: Any = None
    resample: dict[str, Any] | None = None


def _asdf_resample(hdul: Any) -> dict[str, Any]:
    """``meta.resample`` of the ASDF tree stdatamodels keeps in an ``ASDF`` extension ({}
    without one or when it cannot be read)."""
    import io

    if "ASDF" not in {h.name for h in hdul}:
        return {}
    try:
        import asdf

        raw = np.asarray(hdul["ASDF"].data[0][0]).tobytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with asdf.open(io.BytesIO(raw), lazy_load=True, memmap=False,
                           validate_checksums=False) as af:
                return dict(((af.tree.get("meta") or {}).get("resample")) or {})
    except Exception as exc:  # an unreadable tree only loses the kernel's name
        log.debug("cannot read the ASDF extension: %s: %s", type(exc).__name__, exc)
        return {}


def resample_parameters(hdul: Any) -> dict[str, Any] | None:
    """``{"pixfrac", "pixel_scale_ratio", "kernel", "kernel_source"}`` of an open
    ``_i2d.fits``: PIXFRAC and PXSCLRT from the primary header, the kernel from the ASDF
    extension's ``meta.resample`` (jwst's default ``square`` if absent, said in
    ``kernel_source``); None without PIXFRAC or PXSCLRT."""
    primary = hdul[0].header
    if "PIXFRAC" not in primary or "PXSCLRT" not in primary:
        return None
    kernel = _asdf_resample(hdul).get("kernel")
    return {"pixfrac": float(primary["PIXFRAC"]),
            "pixel_scale_ratio": float(primary["PXSCLRT"]),
            "kernel": str(kernel) if kernel else "square",
            "kernel_source": "meta.resample.kernel" if kernel else
            "not recorded: jwst's default (square) assumed"}


def read_mosaic(path: Path, extensions: tuple[str, ...] = ("ERR", "WHT", "CON"), *,
                resample: bool = True) -> Mosaic:
    """Read a mosaic's 2-D SCI (MJy/sr), its header and PIXAR_SR, those of the ERR,
    WHT, CON ``extensions`` it has, and (``resample``) its resample parameters
    (:class:`MissingProductError` without a 2-D SCI)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        names = {h.name for h in hdul}
        if "SCI" not in names:
            raise MissingProductError(f"{path}: no SCI extension")
        data = np.asarray(hdul["SCI"].data, np.float64)
        if data.ndim != 2:
            raise MissingProductError(f"{path}: SCI is {data.ndim}-D, expected 2-D")

        def get(name: str) -> np.ndarray | None:
            if name not in names or name not in extensions:
                return None
            data = hdul[name].data  # CON keeps its int32 bit planes
            return np.asarray(data) if name == "CON" else np.asarray(data, np.float64)

        header = hdul["SCI"].header.copy()
        pixar = header.get("PIXAR_SR")
        return Mosaic(data, get("ERR"), get("WHT"), get("CON"),
                      None if pixar is None else float(pixar), header,
                      resample_parameters(hdul) if resample else None)


def _aperture(measured: Table) -> tuple[float, float, str]:
    """(radius in pixels, aperture correction, where from) of the catalog's largest
    aperture (``aperture_params`` in the catalog's meta), else 3 pixels and 1."""
    params = measured.meta.get("aperture_params") or {}
    radii, corr = params.get("aperture_radii"), params.get("aperture_corrections")
    if radii is not None and corr is not None and len(radii) and len(corr):
        return float(np.asarray(radii)[-1]), float(np.asarray(corr)[-1]), \
            "largest aperture of the source catalog (aperture_params)"
    return 3.0, 1.0, "default 3-pixel radius, no aperture correction"


#: Fewest bright isolated stars for the per-detector / per-visit sample to be that sample
#: (else every matched star in the footprint).
MIN_BRIGHT_FOR_BREAKDOWN = 3


@dataclass(frozen=True)
class Exposures:
    """What the defect and breakdown groups know of a mosaic's exposures: their frames
    (:func:`simval.truth.footprints.exposure_frames`, plan order; None with ``note`` saying
    why) and injected sky per frame (MJy/sr)."""

    frames: list[ExposureFrame] | None
    note: str = ""
    injected: tuple[float, ...] = ()
    cal_paths: tuple[str, ...] = ()
    rate_paths: tuple[str, ...] = ()
    uncal_paths: tuple[str, ...] = ()


def _breakdown_sample(table: Table) -> tuple[np.ndarray, str]:
    """Per truth row of a match table: in the per-group sample (matched bright isolated
    stars if there are :data:`MIN_BRIGHT_FOR_BREAKDOWN`, else matched stars in the
    footprint), and the sample's name."""
    truth = np.asarray(table["truth_row"]) >= 0
    star = np.char.lower(np.asarray(table["type"]).astype(str)) == "star"
    base = truth & star & np.asarray(table["matched"], bool) & \
        np.asarray(table["in_footprint"], bool)
    bright = base & np.asarray(table["bright_star"], bool)
    if int(bright.sum()) >= MIN_BRIGHT_FOR_BREAKDOWN:
        return bright, "matched bright isolated stars"
    return base, "matched stars in the footprint (fewer than " \
                 f"{MIN_BRIGHT_FOR_BREAKDOWN} bright isolated stars)"


#: Groups :func:`evaluate_product` computes itself; :func:`mosaic_measurements` the rest.
PRODUCT_GROUPS = ("catalog", "alignment", "psf_smear", "outlier_cores")


def mosaic_measurements(mosaic: Mosaic, *, segm: np.ndarray | None, injected: np.ndarray,
                        levels: np.ndarray, names: list[str], member_names: list[str],
                        settings: EvaluationSettings, aperture: tuple[float, float, str],
                        rng: np.random.Generator,
                        truth: tuple[np.ndarray | None, str] = (None, "not given"),
                        exposures: Exposures | None = None, match: Table | None = None,
                        products: dict[str, Any] | None = None,
                        catalog: Table | None = None,
                        aperture_rng: np.random.Generator | None = None,
                        band: tuple[str, str] | None = None
                        ) -> dict[str, Measurement]:
    """Every metric group but the catalog's (footprint_photometry, background, skymatch,
    err_ratio, depth, sensitivity, aperture_noise, holes, seams, defects, striping, jumps,
    poisson_gain, striping_mosaic, detectors, visits).

    Parameters
    ----------
    mosaic : Mosaic
    segm : ndarray, optional
        The pipeline's segmentation image (added to the 2-sigma source mask).
    injected, levels : ndarray
        Per exposure: the injected sky and skymatch's level, MJy/sr (NaN: none).
    names, member_names : list of str
        Exposure base names (plan order) and association members (context-bit order).
    settings : EvaluationSettings
    aperture : (radius_pix, apcorr, source)
        Depth aperture (:func:`_aperture`).
    rng : numpy.random.Generator
        For the depth's random apertures.
    truth : (ndarray or None, str)
        The truth mosaic (MJy/sr) and where it came from.
    exposures : Exposures, optional
        The exposures' frames, for the defects' causes and the per-detector / per-visit
        groups (without them those are not computed; defects are located only).
    match : astropy.table.Table, optional
        The match table (:func:`simval.match_table.build_match_table`), for the
        per-detector / per-visit offsets.
    products : dict, optional
        Filled with the objects behind the numbers: ``defects``
        (:class:`~simval.metrics.DefectReport`), ``breakdown.<by>``
        (:class:`~simval.metrics.Breakdown`), ``outlines`` (exposure -> RA, Dec outline),
        ``footprint_photometry`` (:class:`~simval.metrics.FootprintPhotometry`),
        ``aperture_noise`` (:class:`~simval.metrics.ApertureNoise`).
    catalog : astropy.table.Table, optional
        The pipeline's source catalog (with ``match``, for the footprint photometry).
    aperture_rng : numpy.random.Generator, optional
        For the aperture noise's random apertures (default seeded with 0).
    band : (filter, detector), optional
        The mosaic's band and one of its detectors, for the sensitivity's aperture radius.
    """

    out: dict[str, Measurement] = {}
    keep = products if products is not None else {}
    img = mosaic.data
    valid = np.isfinite(img)
    if mosaic.wht is not None:
        valid &= np.isfinite(mosaic.wht) & (mosaic.wht > 0)
    from photutils.utils.exceptions import NoDetectionsWarning

    with warnings.catch_warnings():  # a source-free mosaic is not a problem here
        warnings.simplefilter("ignore", NoDetectionsWarning)
        mask = mt.source_mask(img, valid=valid)
    if segm is not None and segm.shape == img.shape:
        mask |= mt.source_mask(img, segmentation=segm, valid=valid)
    sky = float(np.median(injected)) if injected.size else float("nan")
    wcs = _celestial_wcs(mosaic.header)
    exp = exposures if exposures is not None else Exposures(None, "no exposure frames given")
    truth_img, truth_source = truth
    if truth_img is not None and truth_img.shape != img.shape:
        truth_img, truth_source = None, f"truth mosaic shape {truth_img.shape} != " \
                                        f"mosaic {img.shape}"
    expected = mt.expected_mosaic_level(injected, background_recipe=settings.background_recipe,
                                        skymethod=settings.skymethod,
                                        match_down=settings.match_down)

    def background():
        res = mt.background_residual(img, mask=mask, valid=valid, expected_mjysr=expected,
                                     injected_sky_mjysr=sky, truth=truth_img)
        got = res.measurements()
        for m in got.values():
            m.details.update({"background_recipe": settings.background_recipe,
                              "skymethod": settings.skymethod,
                              "truth": truth_source if truth_img is not None else
                              f"injected sky only ({truth_source})",
                              "recipe_expected_mjysr": expected,
                              "source_mask": "2-sigma thresholding" +
                              (" | pipeline segmentation" if segm is not None else "")})
        return got

    def skymatch():
        ok = np.isfinite(levels)
        if not ok.any():
            raise _MissingInputError("no skymatch levels recorded (skymatch skipped, or "
                                     "neither the image3 background file nor the i2d "
                                     "HDRTAB has them)")
        method = settings.skymethod or "match"
        return mt.skymatch_comparison(levels[ok], injected[ok], skymethod=method,
                                      names=[n for n, k in zip(names, ok, strict=True) if k]
                                      ).measurements()

    def err_ratio():
        if mosaic.err is None:
            raise _MissingInputError("the i2d has no ERR extension")
        return mt.error_ratio(img, mosaic.err, mask=mask, valid=valid).measurements()

    def depth():
        if mosaic.pixar_sr is None:
            raise _MissingInputError("the i2d SCI header has no PIXAR_SR")
        radius, apcorr, source = aperture
        got = mt.random_aperture_depth(img, radius_pix=radius, pixar_sr=mosaic.pixar_sr, rng=rng,
                                       mask=mask, valid=valid, apcorr=apcorr).measurements()
        for m in got.values():
            m.details["aperture_source"] = source
        return got

    def footprint_photometry():
        if segm is None or segm.shape != img.shape:
            raise _MissingInputError("no segmentation map (_segm.fits)" if segm is None else
                                     f"segmentation map shape {segm.shape} != mosaic "
                                     f"{img.shape}")
        if truth_img is None:
            raise _MissingInputError(f"no truth mosaic ({truth_source})")
        if match is None or catalog is None:
            raise _MissingInputError("no match table or source catalog")
        if mosaic.pixar_sr is None:
            raise _MissingInputError("the i2d SCI header has no PIXAR_SR")
        if not np.isfinite(sky):
            raise _MissingInputError("no injected sky (the truth mosaic's sky)")
        ap = mt.catalog_aperture(dict(catalog.meta))
        res = mt.footprint_photometry(img, truth_img, segm,
                                      mt.footprint_sources(match, catalog, ap),
                                      truth_sky_mjysr=sky, pixar_sr=mosaic.pixar_sr,
                                      sky_mask=mask, valid=valid, aperture=ap)
        keep["footprint_photometry"] = res
        got = res.measurements()
        spread = float(np.ptp(injected[np.isfinite(injected)])) if injected.size else 0.0
        for m in got.values():
            m.details.update({"truth": truth_source, "injected_sky_spread_mjysr": spread})
        return got

    def aperture_noise():
        if mosaic.err is None:
            raise _MissingInputError("the i2d has no ERR extension")
        corr, note, rs = None, "", mosaic.resample
        if rs is None:
            note = "the i2d records no PIXFRAC / PXSCLRT (resample parameters)"
        else:
            try:
                corr = mt.drizzle_correlation(rs["pixfrac"], rs["pixel_scale_ratio"],
                                              rs["kernel"])
            except ValueError as exc:
                note = str(exc)
        noise_img, noise_mask, what = img, mask, \
            "mosaic (no truth mosaic: faint undetected sources add to the scatter)"
        if truth_img is not None and np.isfinite(sky):
            # mosaic - truth is noise alone: no faint undetected source in the "sky", and a
            # mask that does not depend on the noise (a threshold on the noisy mosaic
            # would keep the apertures where the noise happened to be low)
            noise_img = img - truth_img
            light = np.nan_to_num(truth_img - sky) > 3.0 * np.nanmedian(mosaic.err[valid])
            noise_mask = mt.source_mask(img, segmentation=light.astype(np.int32),
                                        valid=valid)
            if segm is not None and segm.shape == img.shape:
                noise_mask |= mt.source_mask(img, segmentation=segm, valid=valid)
            what = (f"mosaic - truth mosaic ({truth_source}); mask: the pipeline's "
                    "segments and truth light above 3 ERR, grown by 3 pixels")
        res = mt.aperture_noise(noise_img, mosaic.err, correlation=corr, mask=noise_mask,
                                valid=valid, rng=aperture_rng if aperture_rng is not None
                                else np.random.default_rng(0), note=note)
        keep["aperture_noise"] = res
        got = res.measurements()
        for m in got.values():
            m.details.update({"kernel_source": (rs or {}).get("kernel_source"),
                              "image": what})
        return got

    def sensitivity():
        if band is None:
            raise _MissingInputError("no band given")
        if truth_img is None:
            raise _MissingInputError(f"no truth mosaic ({truth_source})")
        if match is None or wcs is None or mosaic.pixar_sr is None:
            raise _MissingInputError("no match table, celestial WCS or PIXAR_SR")
        stars = match[(np.asarray(match["truth_row"]) >= 0)
                      & np.asarray(match["bright_star"], bool)]
        if not len(stars):
            raise _MissingInputError("no bright isolated star for the encircled energy")
        x, y = wcs.all_world2pix(np.asarray(stars["ra_true"], float),
                                 np.asarray(stars["dec_true"], float), 0)
        facts = detector_facts(band[1])
        if facts.instrument == "MIRI":  # the ETC's MIRI radius (pandeia-verification)
            radius = miri.FILTERS[band[0]].sensitivity_aperture_arcsec
        else:  # JDox's NIRCam rule: the larger of 2.5 pixels or 1.2 lambda/D
            radius = mt.aperture_radius_arcsec(
                zeropoint_row(get_detector(band[1]), band[0]).pivot_um,
                facts.pixel_scale_arcsec)
        flux = abmag_to_jy(np.asarray(stars["mag_true_ab"], float))
        return mt.sensitivity_limit(img, truth_img, x=x, y=y, flux_jy=flux,
                                    radius_arcsec=radius, pixar_sr=mosaic.pixar_sr,
                                    sky_mjysr=sky, rng=rng, mask=mask,
                                    valid=valid).measurements()

    def holes():
        return mt.hole_statistics(img, wht=mosaic.wht).measurements()

    def seams():
        if mosaic.con is None:
            raise _MissingInputError("the i2d has no CON (context) extension")
        masks = list(mt.masks_from_context(mosaic.con))
        labels = member_names if len(member_names) == len(masks) else None
        return mt.seam_steps(img, masks, mask=mask, valid=valid, names=labels,
                             injected_sky_mjysr=sky).measurements()

    def defects():
        if wcs is None:
            raise _MissingInputError("the i2d SCI header has no celestial WCS")
        hole, footprint = mt.hole_mask(img, wht=mosaic.wht)
        report = mt.explain_holes(hole, footprint, exp.frames, wcs, frames_note=exp.note)
        keep["defects"] = report
        if exp.frames is not None:
            keep["outlines"] = {f.name: mt.frame_outline(f) for f in exp.frames}
        return report.measurements()

    def striping():
        if exp.frames is None or len(exp.cal_paths) != len(exp.frames):
            raise _MissingInputError(exp.note or "no cal files")
        res = mt.striping_measurements(exp.cal_paths, [f.name for f in exp.frames])
        keep["striping"] = res
        return res.measurements()

    def jumps():
        if exp.frames is None or len(exp.cal_paths) != len(exp.frames):
            raise _MissingInputError(exp.note or "no cal files")
        return mt.jump_flags(exp.cal_paths, [f.name for f in exp.frames]).measurements()

    def poisson_gain():
        if exp.frames is None or len(exp.rate_paths) != len(exp.frames):
            raise _MissingInputError(exp.note or "no rate files")
        missing = [p for p in (*exp.rate_paths, *exp.uncal_paths) if not Path(p).is_file()]
        if missing:
            raise _MissingInputError(f"no such file: {missing[0]}")
        return mt.poisson_gain(exp.rate_paths, exp.uncal_paths,
                               [f.name for f in exp.frames]).measurements()

    def striping_mosaic():
        if truth_img is None:
            raise _MissingInputError(f"no truth mosaic ({truth_source})")
        if not exp.frames:
            raise _MissingInputError(exp.note or "no exposure frames")
        if wcs is None:
            raise _MissingInputError("the i2d SCI header has no celestial WCS")
        noise = img - truth_img
        sigma = 1.4826 * float(np.nanmedian(np.abs(noise[valid] - np.nanmedian(noise[valid]))))
        light = np.nan_to_num(truth_img - sky) > 3.0 * sigma
        source = mt.source_mask(img, segmentation=light.astype(np.int32), valid=valid)
        if segm is not None and segm.shape == img.shape:
            source |= mt.source_mask(img, segmentation=segm, valid=valid)
        angles = [_row_angle_deg(f, wcs) for f in exp.frames]
        res = mt.mosaic_stripes(noise, valid & ~source, float(np.median(angles)))
        got = res.measurements()
        for m in got.values():
            m.details["angle_spread_deg"] = float(np.ptp(angles))
        return got

    shared: dict[str, Any] = {}

    def breakdown(by: str):
        if exp.frames is None:
            raise _MissingInputError(exp.note)
        if match is None:
            raise _MissingInputError("no match table")
        if wcs is None:
            raise _MissingInputError("the i2d SCI header has no celestial WCS")
        if not shared:
            truth_rows = np.asarray(match["truth_row"]) >= 0
            t = match[truth_rows]
            shared["coverage"] = mt.source_coverage(t["ra_true"], t["dec_true"], exp.frames)
            shared["pixels"] = mt.frame_pixel_masks(exp.frames, wcs, img.shape)
            shared["sample"] = _breakdown_sample(t)
            shared["table"] = t
        t = shared["table"]
        sample, sample_name = shared["sample"]
        res = mt.group_breakdown(
            by, exp.frames, coverage=shared["coverage"],
            dmag=np.asarray(t["mag_measured_ab"], float) - np.asarray(t["mag_true_ab"], float),
            dx_mas=t["dra_cosdec_mas"], dy_mas=t["ddec_mas"], sample=sample,
            sample_name=sample_name, image=img, pixel_masks=shared["pixels"],
            source_mask=mask, valid=valid, expected_mjysr=expected,
            injected_mjysr=exp.injected, truth=truth_img if exp.injected else None)
        keep[f"breakdown.{by}"] = res
        return res.measurements()

    computations = {"footprint_photometry": footprint_photometry, "background": background,
                    "skymatch": skymatch, "err_ratio": err_ratio, "depth": depth,
                    "sensitivity": sensitivity,
                    "aperture_noise": aperture_noise, "holes": holes, "seams": seams,
                    "defects": defects, "striping": striping, "jumps": jumps,
                    "poisson_gain": poisson_gain, "striping_mosaic": striping_mosaic,
                    "detectors": lambda: breakdown("detector"),
                    "visits": lambda: breakdown("visit")}
    for group in GROUPS:
        if group in computations:
            _group(out, group, computations[group])
    return out


def _row_angle_deg(frame: ExposureFrame, wcs: Any) -> float:
    """Direction of the exposure's detector x axis in the mosaic, deg counter-clockwise
    from the mosaic's x axis (from 200 pixels along the middle row)."""
    ny, nx = frame.shape
    x = np.array([nx / 2 - 100.0, nx / 2 + 100.0])
    ra, dec = frame.pixel_to_world(x, np.full(2, ny / 2.0))
    mx, my = wcs.world_to_pixel_values(ra, dec)
    return float(np.degrees(np.arctan2(my[1] - my[0], mx[1] - mx[0])))


def _celestial_wcs(header: Any) -> Any:
    """The celestial FITS WCS of a mosaic's SCI header (None without one)."""
    if header is None:
        return None
    from astropy.wcs import WCS

    wcs = WCS(header)
    return wcs.celestial if wcs.has_celestial else None


def _read_catalog(path: Path) -> Table:
    from astropy.table import Table

    try:
        return Table.read(path, format="ascii.ecsv")
    except Exception as exc:
        raise MissingProductError(f"{path}: cannot read the source catalog "
                                  f"({type(exc).__name__}: {exc})") from exc


# --- one product --------------------------------------------------------------------------

@dataclass(frozen=True)
class ProductEvaluation:
    """Everything computed for one mosaic.

    ``measurements`` holds every registry metric (``value`` None where not computed);
    ``not_computed`` maps those metrics to the reason; ``catalog`` is the
    :class:`~simval.metrics.CatalogMetrics` (None if it failed); ``paths`` the files used;
    ``match_table`` the match table (:mod:`simval.match_table`); ``products`` the objects
    behind the mosaic metrics (:func:`mosaic_measurements`: ``defects``, ``outlines``,
    ``breakdown.<by>``); ``mosaic_wcs`` the mosaic's celestial WCS (None without one).
    """

    band: str
    product: str
    truth: Table
    measured: Table
    match: MatchResult
    catalog: CatalogMetrics | None
    measurements: dict[str, Measurement]
    not_computed: dict[str, str]
    paths: dict[str, Path]
    match_table: Table | None = None
    products: dict[str, Any] = field(default_factory=dict)
    mosaic_wcs: Any = None

    @property
    def defects(self) -> DefectReport | None:
        """The mosaic's holes explained (None if the defects group failed)."""
        return self.products.get("defects")

    def provenance(self, layout: RunLayout) -> dict[str, Any]:
        """The ``provenance.filters.<band>`` entry of ``metrics.json``."""
        return {"product": self.product,
                "truth": layout.rel(self.paths["truth"]),
                "catalog": layout.rel(self.paths["catalog"]),
                "i2d": layout.rel(self.paths["i2d"]),
                "match_radius_mas": self.match.radius_mas,
                "n_truth": len(self.truth),
                "n_truth_in_footprint": int(np.sum(np.asarray(self.truth["in_footprint"]))),
                "n_measured": len(self.measured), "n_matched": self.match.n_pairs,
                "not_computed": self.not_computed}


def _member_names(asn: Path | None, fallback: list[str]) -> list[str]:
    """Association members' base names in association order (context-bit order)."""
    import json

    if asn is None or not asn.is_file():
        return fallback
    doc = json.loads(asn.read_text())
    return [m["expname"].removesuffix("_cal.fits")
            for p in doc.get("products", []) for m in p.get("members", [])]


def _skymatch_levels(backgrounds: Path | None, names: list[str]) -> np.ndarray:
    from astropy.table import Table

    levels = np.full(len(names), np.nan)
    if backgrounds is not None and backgrounds.is_file():
        table = Table.read(backgrounds, format="ascii.ecsv")
        by_name = {str(r["exposure"]): float(r["skymatch_level_mjysr"]) for r in table}
        levels = np.array([by_name.get(n, np.nan) for n in names], float)
    return levels


def _truth_mosaic(path: Path | None, layout: RunLayout, reason: str
                  ) -> tuple[np.ndarray | None, str]:
    from astropy.io import fits

    if path is None or not path.is_file():
        return None, reason
    return np.asarray(fits.getdata(path, "SCI"), np.float64), layout.rel(path)


def evaluate_product(layout: RunLayout, plan: Plan, product: Product,
                     settings: EvaluationSettings, *, truth_mosaic_note: str = "no truth mosaic"
                     ) -> ProductEvaluation:
    """Match and every metric of one mosaic, from the files of the run directory: the truth
    stage's ``truth/<product>_truth.ecsv``, ``_truth_i2d.fits`` and ``_backgrounds.ecsv``,
    and image3's ``_i2d.fits``, ``_cat.ecsv``, ``_segm.fits`` and ``_asn.json``.

    Raises
    ------
    MissingProductError
        If the truth table, ``_i2d.fits`` or ``_cat.ecsv`` is missing or unreadable.
    """
    from astropy.io import fits

    band = product.filter_name
    name = product.name
    i2d = _require(layout.product_file(name, "_i2d.fits"), f"the {band} mosaic")
    cat = _require(layout.product_file(name, "_cat.ecsv"), f"the {band} source catalog")
    truth_file = _require(layout.truth_table(name), f"the {band} truth table")
    truth = read_truth(truth_file)
    measured = _read_catalog(cat)
    radius = settings.match_radius_mas or default_match_radius(band)
    match = match_catalogs(measured, truth, radius_mas=radius)

    out: dict[str, Measurement] = {}
    holder: dict[str, CatalogMetrics] = {}

    def catalog():
        holder["cm"] = mt.catalog_metrics(truth, measured, match, **settings.catalog_options)
        return holder["cm"].measurements()

    _group(out, "catalog", catalog)
    table = build_match_table(truth, measured, match, holder.get("cm"), band=band.upper(),
                              product=name)

    mosaic = read_mosaic(i2d)
    segm_path = layout.product_file(name, "_segm.fits")
    segm = np.asarray(fits.getdata(segm_path, "SCI")) if segm_path.is_file() else None
    exposures = plan.exposures_in(product)
    names = [e.base_name for e in exposures]
    injected = np.array([e.background_mjysr for e in exposures], float)
    levels = _skymatch_levels(layout.backgrounds(name), names)
    products: dict[str, Any] = {}
    truth_pair = _truth_mosaic(layout.truth_mosaic(name), layout, truth_mosaic_note)
    out.update(mosaic_measurements(
        mosaic, segm=segm, injected=injected, levels=levels, names=names,
        member_names=_member_names(layout.product_file(name, "_asn.json"),
                                   list(product.members)),
        settings=settings, aperture=_aperture(measured),
        rng=component_rng(settings.seed, "depth", band),
        truth=truth_pair, exposures=_exposures(layout, plan, product), match=table,
        products=products,
        catalog=measured, aperture_rng=component_rng(settings.seed, "aperture_noise", band),
        band=(band, exposures[0].detector) if exposures else None))
    truth_img = truth_pair[0]
    _group(out, "alignment", lambda: _alignment(layout, product, exposures, i2d))
    _group(out, "psf_smear", lambda: _smearing(mosaic.data, truth_img, truth_mosaic_note,
                                               truth, table))
    _group(out, "outlier_cores", lambda: _outlier_cores(layout, product, exposures, truth,
                                                        table))
    for metric, spec in REGISTRY.items():  # a coronagraphy run's metrics are not imaging's
        if spec.group not in CORONAGRAPHY_GROUPS:
            out.setdefault(metric, _not_computed([metric], "not evaluated")[metric])
    reasons = _explain(out)
    paths = {"i2d": i2d, "catalog": cat, "truth": truth_file}
    if segm is not None:
        paths["segmentation"] = segm_path
    return ProductEvaluation(band.upper(), name, truth, measured, match, holder.get("cm"),
                             out, reasons, paths, table, products,
                             _celestial_wcs(mosaic.header))


def _alignment(layout: RunLayout, product: Product, exposures: Sequence[Exposure],
               i2d: Path) -> dict[str, Measurement]:
    """The alignment group: each exposure's final WCS (tweakreg's saved one, or the cal
    file's when tweakreg was skipped) against its true WCS."""
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    status = str(fits.getheader(i2d, 0).get("S_TWKREG", "")).upper()
    ran = status == "COMPLETE"
    residuals, errors = [], []
    for e in exposures:
        cal = layout.image2 / e.cal_name
        if not cal.is_file():
            raise _MissingInputError(f"{layout.rel(cal)} is missing")
        error = (e.pointing_error_ra_mas, e.pointing_error_dec_mas)
        with datamodels.open(str(cal)) as model:
            recorded, shape = model.meta.wcs, model.data.shape
        final = recorded
        if ran:
            saved = layout.product_dir(product.name) / f"{e.base_name}{TWEAKREG_WCS_SUFFIX}"
            if not saved.is_file():
                raise _MissingInputError(f"tweakreg ran (S_TWKREG COMPLETE) but "
                                         f"{layout.rel(saved)} is missing")
            final = read_tweakreg_wcs(saved)
        offsets = wcs_offsets_mas(true_wcs(recorded, error), final, shape)
        residuals.append(offsets.mean_mas)
        errors.append(error)
    source = "tweakreg" if ran else f"cal file (tweakreg {status or 'not recorded'})"
    return mt.alignment_residuals([e.base_name for e in exposures], residuals, errors,
                                  source).measurements()


def _outlier_cores(layout: RunLayout, product: Product, exposures: Sequence[Exposure],
                   truth: Table, table: Table) -> dict[str, Measurement]:
    """The outlier_cores group: OUTLIER flags in the bright isolated stars' cores of each
    exposure's ``_crf.fits`` (saved by image3 when outlier_detection ran)."""
    directory = layout.product_dir(product.name)
    asn = layout.product_file(product.name, "_asn.json")
    saved = member_products(directory, asn, CRF_SUFFIX) if asn.is_file() else {}
    paths = [saved.get(e.cal_name, directory / f"{e.base_name}{CRF_SUFFIX}")
             for e in exposures]
    if not paths or not all(p.is_file() for p in paths):
        raise _MissingInputError("no _crf.fits: outlier_detection did not run")
    rows = np.asarray(table["truth_row"])
    idx = rows[(rows >= 0) & np.asarray(table["bright_star"], bool)]
    if not idx.size:
        raise _MissingInputError("no bright isolated star in the sample")
    ra, dec = radec_of(truth[idx])
    return mt.outlier_flags([str(p) for p in paths], [e.base_name for e in exposures],
                            ra, dec).measurements()


def _smearing(img: np.ndarray, truth_img: np.ndarray | None, note: str, truth: Table,
              table: Table) -> dict[str, Measurement]:
    """The psf_smear group on the bright isolated star sample of the match table."""
    if truth_img is None:
        raise _MissingInputError(f"no truth mosaic ({note})")
    rows = np.asarray(table["truth_row"])
    bright = (rows >= 0) & np.asarray(table["bright_star"], bool)
    idx = rows[bright]
    if not idx.size:
        raise _MissingInputError("no bright isolated star in the sample")
    x = np.asarray(truth["mosaic_x"], float)[idx]
    y = np.asarray(truth["mosaic_y"], float)[idx]
    return mt.psf_smearing(img, truth_img, x, y).measurements()


def _exposures(layout: RunLayout, plan: Plan, product: Product) -> Exposures:
    """The product's exposure frames from the image2 cal files (or why there are none)."""
    exposures = plan.exposures_in(product)
    if not exposures:
        return Exposures(None, "the plan lists no exposure for this product")
    try:
        frames = exposure_frames(layout, plan, product, exposures)
    except FrameError as exc:
        return Exposures(None, f"no exposure frames: {exc}")
    return Exposures(frames, "", tuple(float(e.background_mjysr) for e in exposures),
                     tuple(str(layout.image2 / e.cal_name) for e in exposures),
                     tuple(str(layout.detector1 / e.rate_name) for e in exposures),
                     tuple(str(layout.exposure_dir(e.base_name) / e.uncal_name)
                           for e in exposures))


def write_product_evaluation(ev: ProductEvaluation, layout: RunLayout, *,
                             scenario_name: str, settings: EvaluationSettings
                             ) -> dict[str, Path]:
    """Write ``evaluation/<product>_match.ecsv`` and ``evaluation/<product>_metrics.json``,
    and, when the mosaic has a celestial WCS, ``_defects.ecsv`` (the defects table,
    :meth:`simval.metrics.DefectReport.to_table`) and the DS9 region files
    ``_holes.reg``, ``_seams.reg``, ``_sources.reg`` (:mod:`simval.regions_files`); return
    ``{"match": path, "metrics": path, "defects": path, "regions_<kind>": path}``."""

    table = ev.match_table if ev.match_table is not None else build_match_table(
        ev.truth, ev.measured, ev.match, ev.catalog, band=ev.band, product=ev.product)
    match_path = write_match_table(table, layout.match_table(ev.product))
    written = {"match": match_path, **_write_defects(ev, layout, table)}
    doc = MetricsDocument(scenario_name, "-")
    doc.add(ev.band, ev.measurements)
    files = {k: layout.rel(v) for k, v in written.items() if k != "match"}
    doc.provenance = {"filters": {ev.band: {**ev.provenance(layout),
                                            "match_table": layout.rel(match_path),
                                            **({"defects_files": files} if files else {})}},
                      "catalog_options": dict(settings.catalog_options),
                      "background_recipe": settings.background_recipe,
                      "skymethod": settings.skymethod}
    metrics_path = write_metrics(layout.product_metrics(ev.product), doc)
    return {**written, "metrics": metrics_path}


def _write_defects(ev: ProductEvaluation, layout: RunLayout, table: Table
                   ) -> dict[str, Path]:
    """The defects table and the region files of one product (none without a mosaic WCS)."""
    report = ev.defects
    if ev.mosaic_wcs is None or report is None:
        return {}
    defects = report.to_table()
    defects.meta.update({"band": ev.band, "product": ev.product})
    path = layout.defects_table(ev.product)
    with atomic_path(path) as tmp:
        defects.write(tmp, format="ascii.ecsv", overwrite=True)
    steps = ev.measurements.get("seam_step_max_mjysr")
    by_name = {s["exposure"]: s["step_mjysr"] for s in
               ((steps.details or {}).get("steps") or [] if steps else [])}
    regions = {"holes": defect_regions(report.defects, ev.mosaic_wcs),
               "seams": seam_regions(ev.products.get("outlines") or {}, by_name),
               "sources": source_regions(table)}
    out = {"defects": path}
    for kind, regs in regions.items():
        out[f"regions_{kind}"] = write_regions(regs, layout.regions_file(ev.product, kind))
    return out


# --- the join -----------------------------------------------------------------------------

def join_metrics(layout: RunLayout, product_metrics: Iterable[Path], *, scenario_name: str,
                 scenario_hash: str, crds_context: str | None,
                 versions: Mapping[str, str]) -> Path:
    """``metrics.json``: every product's ``evaluation/<product>_metrics.json`` in one
    document, with the run's provenance (software versions, CRDS context, time)."""
    doc = MetricsDocument(scenario_name, scenario_hash)
    filters: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    for path in product_metrics:
        part = read_metrics(path)
        for band, measurements in part.filters.items():
            doc.add(band, measurements)
        filters.update(part.provenance.get("filters") or {})
        for key in ("catalog_options", "background_recipe", "skymethod"):
            shared.setdefault(key, part.provenance.get(key))
    versions = dict(versions)
    doc.provenance = {
        **{k: versions[k] for k in ("simval", "jwst", "mirage") if k in versions},
        "versions": versions, "crds_context": crds_context, "run_dir": str(layout.root),
        "evaluated_utc": now_utc(),
        "background_recipe": shared.get("background_recipe"),
        "skymethod": shared.get("skymethod"), "filters": filters,
        "catalog_options": shared.get("catalog_options") or {},
    }
    return write_metrics(layout.metrics, doc)
