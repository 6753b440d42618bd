"""Evaluate a finished run: truth -> match -> metrics -> verdicts -> ``metrics.json``.

:func:`evaluate_run` reads a run directory (:mod:`simval.run.layout`) and, for every mosaic
of the plan (one per filter):

1. builds the truth table (:func:`simval.truth.build_truth`, written to
   ``truth/<product>_truth.ecsv``) and reads the pipeline's ``_i2d.fits`` and
   ``_cat.ecsv`` from ``image3/<product>/``;
2. matches them one-to-one (:func:`simval.match.match_catalogs`) within the scenario's
   ``comparison.match_radius_mas`` (default: the PSF FWHM of the filter);
3. computes every metric of :data:`simval.metrics_schema.REGISTRY`: the catalog metrics
   (:func:`simval.metrics.catalog_metrics`: completeness, purity, photometry of stars,
   galaxies and bright isolated stars, astrometry) and the mosaic metrics (background
   residual against the level the recipe should leave, skymatch levels against the
   injected sky, sky/ERR, 5-sigma depth, holes, seams);
4. applies the scenario's thresholds (:func:`simval.verdict.evaluate_thresholds`) and, if
   given, compares with a baseline run (:func:`simval.verdict.compare_to_baseline`);
5. writes ``metrics.json`` (:func:`simval.metrics_schema.write_metrics`, atomic, schema
   version :data:`~simval.metrics_schema.SCHEMA_VERSION`).

A missing product raises :class:`MissingProductError` naming the file. A metric that cannot
be computed (no stars, no ERR extension, no skymatch levels, an exception inside one metric
family) is written with ``value: null``, ``n: 0`` and ``details.not_computed`` giving the
reason; it fails any threshold set on it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simval.metrics_schema import REGISTRY, Measurement, MetricsDocument
from simval.run.layout import RunLayout

if TYPE_CHECKING:
    from astropy.table import Table

    from simval.match import MatchResult
    from simval.metrics import CatalogMetrics
    from simval.plan import Plan, Product
    from simval.verdict import Tolerance, Verdict

__all__ = [
    "CATALOG_METRICS",
    "IMAGE_METRICS",
    "METRICS_FILE",
    "EvaluationResult",
    "EvaluationSettings",
    "FilterEvaluation",
    "MissingProductError",
    "evaluate_filter",
    "evaluate_run",
    "settings_from_plan",
]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"

#: Metrics of :func:`simval.metrics.catalog_metrics`.
CATALOG_METRICS = (
    "completeness", "completeness_snr20", "completeness_50_mag", "completeness_90_mag",
    "purity", "spurious_fraction", "phot_bias_star_mag", "phot_nmad_star_mag",
    "phot_bias_galaxy_mag", "phot_nmad_galaxy_mag", "phot_bias_bright_star_mag",
    "phot_nmad_bright_star_mag", "phot_outlier_frac_bright_star", "astrom_dra_mas",
    "astrom_ddec_mas", "astrom_offset_mas", "astrom_rms_mas", "astrom_rms_bright_star_mas",
)
#: Mosaic metrics by family (each family is computed, or fails, on its own).
IMAGE_METRICS = {
    "background": ("bkg_residual_mjysr", "bkg_residual_frac"),
    "skymatch": ("skymatch_error_max_mjysr", "skymatch_error_max_frac"),
    "err_ratio": ("err_ratio_median", "err_ratio_nmad"),
    "depth": ("depth_5sigma_mag",),
    "holes": ("hole_frac", "black_line_count", "black_line_frac"),
    "seams": ("seam_step_max_mjysr", "seam_step_max_frac"),
}

#: Why a metric has no value although its family ran (value None): a hint per metric.
_EMPTY_REASONS = {
    "completeness": "no truth source inside the mosaic footprint",
    "completeness_snr20": "no truth source with expected S/N >= 20 inside the footprint",
    "completeness_50_mag": "the binned completeness curve does not fall through 50%",
    "completeness_90_mag": "the binned completeness curve does not fall through 90%",
    "purity": "the pipeline catalog is empty",
    "spurious_fraction": "the pipeline catalog is empty",
    "phot_bias_star_mag": "no matched star with a finite aper_total_abmag in the footprint",
    "phot_nmad_star_mag": "no matched star with a finite aper_total_abmag in the footprint",
    "phot_bias_galaxy_mag": "no matched galaxy with a finite isophotal_abmag in the footprint",
    "phot_nmad_galaxy_mag": "no matched galaxy with a finite isophotal_abmag in the footprint",
    "phot_bias_bright_star_mag": "no matched bright, isolated, fully covered star",
    "phot_nmad_bright_star_mag": "no matched bright, isolated, fully covered star",
    "phot_outlier_frac_bright_star": "no matched bright, isolated, fully covered star",
    "astrom_dra_mas": "no matched star in the footprint",
    "astrom_ddec_mas": "no matched star in the footprint",
    "astrom_offset_mas": "no matched star in the footprint",
    "astrom_rms_mas": "no matched star in the footprint",
    "astrom_rms_bright_star_mas": "no matched bright, isolated, fully covered star",
    "bkg_residual_frac": "the injected sky is zero",
    "skymatch_error_max_frac": "the injected sky is zero",
    "seam_step_max_mjysr": "no exposure edge inside the mosaic with sky on both sides",
    "seam_step_max_frac": "no exposure edge inside the mosaic with sky on both sides",
    "depth_5sigma_mag": "no aperture fits on valid, source-free sky",
}


class MissingProductError(FileNotFoundError):
    """A file the evaluation needs is not in the run directory (the message names it)."""


@dataclass(frozen=True)
class EvaluationSettings:
    """What the evaluation takes from the scenario (``plan.scenario``).

    Attributes
    ----------
    match_radius_mas : float or None
        ``comparison.match_radius_mas`` (None: the filter's PSF FWHM).
    comparison : simval.scenario.inputs.Comparison or None
        Thresholds (None: no threshold verdicts).
    background_recipe : {"skymatch", "median_masked"}
    skymethod : str or None
        skymatch's ``skymethod`` (jwst default ``match``); None if skymatch was skipped.
    match_down : bool
        skymatch's ``match_down``.
    seed : int
        Seeds the random apertures of the depth.
    """

    match_radius_mas: float | None
    comparison: Any
    background_recipe: str
    skymethod: str | None
    match_down: bool
    seed: int


def settings_from_plan(plan: Plan) -> EvaluationSettings:
    """Evaluation settings from the normalised scenario stored in the plan."""
    from simval.scenario.inputs import Comparison

    scen = plan.scenario
    comp = scen.get("comparison")
    comparison = Comparison.model_validate(comp) if comp is not None else None
    recipe = scen.get("background_recipe") or "skymatch"
    sky = ((scen.get("pipeline") or {}).get("image3") or {}).get("skymatch") or {}
    skymethod = None if sky.get("skip") else str(sky.get("skymethod", "match"))
    return EvaluationSettings(
        match_radius_mas=None if comparison is None else comparison.match_radius_mas,
        comparison=comparison, background_recipe=recipe, skymethod=skymethod,
        match_down=bool(sky.get("match_down", True)), seed=int(scen.get("seed", 0)))


@dataclass(frozen=True)
class FilterEvaluation:
    """Everything computed for one filter (for reports and plots).

    ``measurements`` holds every registry metric (``value`` None where not computed);
    ``not_computed`` maps those metrics to the reason; ``catalog`` is the
    :class:`~simval.metrics.CatalogMetrics` (None if it failed); ``paths`` the files used.
    """

    filter: str
    product: str
    truth: Table
    measured: Table
    match: MatchResult
    catalog: CatalogMetrics | None
    measurements: dict[str, Measurement]
    not_computed: dict[str, str]
    paths: dict[str, Path]


@dataclass(frozen=True)
class EvaluationResult:
    """The outcome of :func:`evaluate_run`.

    ``document`` is what ``metrics_path`` holds; ``verdicts`` the threshold verdicts then
    the baseline verdicts; ``filters`` the per-filter details; ``backgrounds`` the table of
    :func:`simval.truth.true_backgrounds`.
    """

    run_dir: Path
    metrics_path: Path | None
    document: MetricsDocument
    verdicts: list[Verdict]
    filters: dict[str, FilterEvaluation] = field(default_factory=dict)
    backgrounds: Table | None = None

    @property
    def passed(self) -> bool:
        """True if every verdict passed (and for no verdicts)."""
        return all(v.passed for v in self.verdicts)


# --- helpers ------------------------------------------------------------------------------

def _not_computed(names: Iterable[str], reason: str) -> dict[str, Measurement]:
    return {n: Measurement.of(n, None, None, 0, {"not_computed": reason}) for n in names}


def _family(out: dict[str, Measurement], names: Iterable[str],
            compute: Callable[[], Mapping[str, Measurement] | None], what: str) -> None:
    """Run one metric family into ``out``; a failure or a missing input is recorded."""
    names = tuple(names)
    try:
        got = compute()
    except _MissingInputError as skip:
        out.update(_not_computed(names, str(skip)))
        return
    except Exception as exc:  # one family failing must not lose the others
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc, exc_info=True)
        out.update(_not_computed(names, f"{what} failed: {type(exc).__name__}: {exc}"))
        return
    got = dict(got or {})
    out.update({k: v for k, v in got.items() if k in REGISTRY})
    missing = [n for n in names if n not in got]
    out.update(_not_computed(missing, f"{what} did not produce it"))


class _MissingInputError(Exception):
    """A metric family's input is absent; the message is the reason."""


def _explain(measurements: dict[str, Measurement]) -> dict[str, str]:
    """Add ``details.not_computed`` to value-less entries; return metric -> reason."""
    reasons = {}
    for name, m in list(measurements.items()):
        if m.value is not None:
            continue
        reason = m.details.get("not_computed")
        if reason is None:
            reason = _EMPTY_REASONS.get(name, f"not measurable (n = {m.n})")
            measurements[name] = Measurement(None, m.uncertainty, m.n, m.unit,
                                             {**m.details, "not_computed": reason})
        reasons[name] = str(reason)
    return reasons


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise MissingProductError(f"{path}: {what} is missing (did the run finish? see "
                                  f"manifest.json)")
    return path


# --- per filter ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Mosaic:
    data: np.ndarray
    err: np.ndarray | None
    wht: np.ndarray | None
    con: np.ndarray | None
    pixar_sr: float | None


def _read_mosaic(path: Path) -> _Mosaic:
    from astropy.io import fits

    with fits.open(path) as hdul:
        names = {h.name for h in hdul}
        if "SCI" not in names:
            raise MissingProductError(f"{path}: no SCI extension")

        def get(name: str) -> np.ndarray | None:
            return np.asarray(hdul[name].data, np.float64) if name in names else None

        pixar = hdul["SCI"].header.get("PIXAR_SR")
        con = np.asarray(hdul["CON"].data) if "CON" in names else None
        return _Mosaic(get("SCI"), get("ERR"), get("WHT"), con,
                       None if pixar is None else float(pixar))


def _aperture(measured: Table) -> tuple[float, float, str]:
    """(radius in pixels, aperture correction, where from) of the catalog's largest
    aperture (``aperture_params`` in the catalog's meta), else 3 pixels and 1."""
    params = measured.meta.get("aperture_params") or {}
    radii, corr = params.get("aperture_radii"), params.get("aperture_corrections")
    if radii is not None and corr is not None and len(radii) and len(corr):
        return float(np.asarray(radii)[-1]), float(np.asarray(corr)[-1]), \
            "largest aperture of the source catalog (aperture_params)"
    return 3.0, 1.0, "default 3-pixel radius, no aperture correction"


def _image_measurements(mosaic: _Mosaic, *, segm: np.ndarray | None, injected: np.ndarray,
                        levels: np.ndarray, names: list[str], member_names: list[str],
                        settings: EvaluationSettings, aperture: tuple[float, float, str],
                        rng: np.random.Generator,
                        truth: tuple[np.ndarray | None, str] = (None, "not given")
                        ) -> dict[str, Measurement]:
    from simval import metrics as mt

    out: dict[str, Measurement] = {}
    img = mosaic.data
    valid = np.isfinite(img)
    if mosaic.wht is not None:
        valid &= np.isfinite(mosaic.wht) & (mosaic.wht > 0)
    with warnings.catch_warnings():  # a source-free mosaic is not a problem here
        warnings.filterwarnings("ignore", message="No sources were found")
        mask = mt.source_mask(img, valid=valid)
    if segm is not None and segm.shape == img.shape:
        mask |= mt.source_mask(img, segmentation=segm, valid=valid)
    sky = float(np.median(injected)) if injected.size else float("nan")

    def background():
        expected = mt.expected_mosaic_level(injected, background_recipe=settings.background_recipe,
                                            skymethod=settings.skymethod,
                                            match_down=settings.match_down)
        truth_img, truth_source = truth
        if truth_img is not None and truth_img.shape != img.shape:
            truth_img, truth_source = None, f"truth mosaic shape {truth_img.shape} != " \
                                            f"mosaic {img.shape}"
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
                                     "neither the image3 record nor the i2d HDRTAB has them)")
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

    def holes():
        return mt.hole_statistics(img, wht=mosaic.wht).measurements()

    def seams():
        if mosaic.con is None:
            raise _MissingInputError("the i2d has no CON (context) extension")
        masks = list(mt.masks_from_context(mosaic.con))
        labels = member_names if len(member_names) == len(masks) else None
        return mt.seam_steps(img, masks, mask=mask, valid=valid, names=labels,
                             injected_sky_mjysr=sky).measurements()

    for family, compute in (("background", background), ("skymatch", skymatch),
                            ("err_ratio", err_ratio), ("depth", depth), ("holes", holes),
                            ("seams", seams)):
        _family(out, IMAGE_METRICS[family], compute, f"{family} metrics")
    return out


def _read_catalog(path: Path) -> Table:
    from astropy.table import Table

    try:
        return Table.read(path, format="ascii.ecsv")
    except Exception as exc:
        raise MissingProductError(f"{path}: cannot read the source catalog "
                                  f"({type(exc).__name__}: {exc})") from exc


def evaluate_filter(layout: RunLayout, plan: Plan, product: Product,
                    settings: EvaluationSettings, backgrounds: Table | None = None, *,
                    write: bool = True, catalog_options: Mapping[str, Any] | None = None
                    ) -> FilterEvaluation:
    """Truth, match and every metric of one mosaic (see the module docstring).

    ``catalog_options`` are passed to :func:`simval.metrics.catalog_metrics` (e.g.
    ``min_exposures``, ``bright_snr_min``, ``bins``).

    Raises
    ------
    MissingProductError
        If the product's ``_i2d.fits`` or ``_cat.ecsv`` is missing or unreadable.
    """
    from astropy.io import fits

    from simval import metrics as mt
    from simval.kit.spec import component_rng
    from simval.match import default_match_radius, match_catalogs
    from simval.truth import asn_members, build_truth, truth_path
    from simval.truth_mosaic import run_truth_mosaic

    band = product.filter_name
    pdir = layout.product_dir(product.name)
    i2d = _require(pdir / product.i2d_name, f"the {band} mosaic")
    cat = _require(pdir / product.catalog_name, f"the {band} source catalog")
    truth = build_truth(layout, plan, band, i2d=i2d, write=write)
    measured = _read_catalog(cat)
    radius = settings.match_radius_mas or default_match_radius(band)
    match = match_catalogs(measured, truth, radius_mas=radius)

    out: dict[str, Measurement] = {}
    holder: dict[str, CatalogMetrics] = {}

    def catalog():
        holder["cm"] = mt.catalog_metrics(truth, measured, match, **dict(catalog_options or {}))
        return holder["cm"].measurements()

    _family(out, CATALOG_METRICS, catalog, "catalog metrics")

    mosaic = _read_mosaic(i2d)
    segm_path = pdir / f"{product.name}_segm.fits"
    segm = np.asarray(fits.getdata(segm_path, "SCI")) if segm_path.is_file() else None
    exposures = plan.exposures_in(product)
    names = [e.base_name for e in exposures]
    injected = np.array([e.background_mjysr for e in exposures], float)
    levels = np.full(len(exposures), np.nan)
    if backgrounds is not None and len(backgrounds):
        by_name = {str(r["exposure"]): float(r["skymatch_level_mjysr"]) for r in backgrounds}
        levels = np.array([by_name.get(n, np.nan) for n in names], float)
    truth_img = run_truth_mosaic(layout, plan, product, i2d, write=write)
    out.update(_image_measurements(
        mosaic, segm=segm, injected=injected, levels=levels, names=names,
        member_names=asn_members(layout, product), settings=settings,
        aperture=_aperture(measured), rng=component_rng(settings.seed, "depth", band),
        truth=truth_img))
    for name in REGISTRY:
        out.setdefault(name, _not_computed([name], "not evaluated")[name])
    reasons = _explain(out)
    paths = {"i2d": i2d, "catalog": cat, "truth": truth_path(layout, product.name)}
    if segm is not None:
        paths["segmentation"] = segm_path
    return FilterEvaluation(band, product.name, truth, measured, match, holder.get("cm"),
                            out, reasons, paths)


# --- the run ------------------------------------------------------------------------------

def _load_baseline(baseline: str | os.PathLike | MetricsDocument) -> MetricsDocument:
    from simval.metrics_schema import read_metrics

    if isinstance(baseline, MetricsDocument):
        return baseline
    path = Path(baseline)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: baseline metrics.json not found")
    return read_metrics(path)


def _provenance(layout: RunLayout, plan: Plan, settings: EvaluationSettings,
                evaluations: Mapping[str, FilterEvaluation]) -> dict[str, Any]:
    import json

    versions: dict[str, Any] = {}
    context = None
    if layout.manifest.is_file():
        try:
            manifest = json.loads(layout.manifest.read_text())
            versions = dict(manifest.get("versions") or {})
            context = (manifest.get("crds") or {}).get("context")
        except ValueError:
            pass
    if "simval" not in versions:
        from importlib.metadata import PackageNotFoundError, version

        try:
            versions["simval"] = version("simval")
        except PackageNotFoundError:
            versions["simval"] = "unknown"
    return {
        **{k: versions[k] for k in ("simval", "jwst", "mirage") if k in versions},
        "versions": versions, "crds_context": context, "run_dir": str(layout.root),
        "evaluated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "background_recipe": settings.background_recipe, "skymethod": settings.skymethod,
        "filters": {
            band: {"product": ev.product,
                   "truth": layout.rel(ev.paths["truth"]),
                   "catalog": layout.rel(ev.paths["catalog"]),
                   "i2d": layout.rel(ev.paths["i2d"]),
                   "match_radius_mas": ev.match.radius_mas,
                   "n_truth": len(ev.truth),
                   "n_truth_in_footprint": int(np.sum(np.asarray(ev.truth["in_footprint"]))),
                   "n_measured": len(ev.measured), "n_matched": ev.match.n_pairs,
                   "not_computed": ev.not_computed}
            for band, ev in evaluations.items()},
    }


def evaluate_run(run_dir: str | os.PathLike | RunLayout, *,
                 baseline: str | os.PathLike | MetricsDocument | None = None,
                 tolerances: Mapping[str, Tolerance] | None = None,
                 filters: Iterable[str] | None = None, write: bool = True,
                 catalog_options: Mapping[str, Any] | None = None) -> EvaluationResult:
    """Evaluate a finished run and write ``metrics.json`` (see the module docstring).

    Parameters
    ----------
    run_dir : path or RunLayout
        The run directory (``plan.json``, ``catalog/``, ``exposures/``, ``image3/``).
    baseline : path or MetricsDocument, optional
        An earlier run's ``metrics.json`` (or its run directory) to compare with.
    tolerances : mapping, optional
        Baseline tolerances per metric (:class:`simval.verdict.Tolerance`).
    filters : iterable of str, optional
        Only these filters (default: every product of the plan).
    write : bool
        Write ``metrics.json`` and the truth tables.
    catalog_options : mapping, optional
        Keyword arguments of :func:`simval.metrics.catalog_metrics` (``min_exposures``,
        ``bright_snr_min``, ``bright_mag_max``, ``bins``...); recorded in the provenance.

    Returns
    -------
    EvaluationResult
        With the verdicts (thresholds of ``comparison.thresholds``, then baseline).

    Raises
    ------
    MissingProductError
        If a product's ``_i2d.fits`` or ``_cat.ecsv`` is missing (the message names it).
    FileNotFoundError
        For a missing ``plan.json``, input catalog, exposure directory or baseline.
    simval.truth.TruthError
        If the simulator's lists and the input catalog disagree.
    """
    from simval.metrics_schema import write_metrics
    from simval.truth import load_plan, product_for, true_backgrounds
    from simval.verdict import compare_to_baseline, evaluate_thresholds

    layout = run_dir if isinstance(run_dir, RunLayout) else RunLayout(Path(run_dir))
    plan = load_plan(layout)
    settings = settings_from_plan(plan)
    products = [product_for(plan, f) for f in filters] if filters is not None else \
        list(plan.products)
    backgrounds = true_backgrounds(layout, plan)
    if settings.comparison is not None:
        bright = settings.comparison.bright_stars
        catalog_options = {"bright_snr_min": bright.snr_min,
                           "min_exposures": bright.min_exposures,
                           **dict(catalog_options or {})}
    evaluations = {p.filter_name.upper(): evaluate_filter(layout, plan, p, settings,
                                                          backgrounds, write=write,
                                                          catalog_options=catalog_options)
                   for p in products}
    doc = MetricsDocument(plan.scenario_name, plan.scenario_hash)
    for band, ev in evaluations.items():
        doc.add(band, ev.measurements)
    doc.provenance = _provenance(layout, plan, settings, evaluations)
    doc.provenance["catalog_options"] = dict(catalog_options or {})
    path = write_metrics(layout.root / METRICS_FILE, doc) if write else None

    verdicts: list[Verdict] = []
    if settings.comparison is not None and settings.comparison.thresholds:
        verdicts += evaluate_thresholds(doc, settings.comparison)
    if baseline is not None:
        verdicts += compare_to_baseline(doc, _load_baseline(baseline), tolerances=tolerances)
    return EvaluationResult(layout.root, path, doc, verdicts, evaluations, backgrounds)
