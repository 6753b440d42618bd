"""The stage functions of a run: catalog, simulate, detector1, image2, image3, then per
mosaic truth and evaluate, and the metrics join.

Each is ``func(ctx: StageContext) -> StageResult`` and runs in whatever process executes
it (a Dask worker). Everything it needs is in ``ctx.params`` (JSON, decided by
:mod:`simval.run.graph` on the client) and ``ctx.inputs`` (files of earlier stages); it
writes into the run directory atomically: pipelines write into a scratch directory
(``.work-<name>``) beside the final place, and finished files are renamed into place.

Process state: every function starts with :func:`prepare_process` (astropy downloads off,
pysiaf imported without its PRD check reaching the network); CRDS's environment is applied
per call by :mod:`simval.calibrate` (``using_environment``) and restored afterwards, so a
worker inherits nothing from an earlier stage or from the user's shell CRDS variables;
MIRAGE runs in its own child process (:mod:`simval.simulate.mirage_backend`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simval import calibrate, offline
from simval.atomic import write_text
from simval.calibrate import CrdsSetup, stage_log
from simval.catalogs import SourceCatalog, catalog_from_spec
from simval.catalogs.refcat import reference_catalog, write_reference_catalog
from simval.envs.runner import for_stage, stage_reftype_steps
from simval.evaluate import (
    EvaluationSettings,
    evaluate_product,
    join_metrics,
    write_product_evaluation,
)
from simval.instruments.miri_detector import MiriEffects
from simval.instruments.miri_detector import Readout as MiriReadout
from simval.kit.crds_cache import using_environment
from simval.plan import Plan
from simval.pointing_errors import offset_recorded_pointing
from simval.run.manifest import software_versions
from simval.run.records import StageContext, StageResult
from simval.seeding import component_rng
from simval.simulate.mirage_backend import simulate_exposure
from simval.simulate.mirage_yaml import MirageExposure, MirageReferences
from simval.simulate.miri_exposure import MiriSources, simulate_miri_exposure
from simval.simulate.miri_extended import read_emission_image
from simval.simulate.miri_scene import MiriCalibration
from simval.simulate.miri_uncal import MiriExposure
from simval.sky import Footprint
from simval.truth import build_truth, true_backgrounds, write_truth
from simval.truth.mosaic import product_truth_mosaic, write_truth_mosaic

#: Header cards whose value is a file path: they change with the run directory or kit
#: location, never with content (MIRAGE records its inputs' paths in the uncal).
PATH_CARDS = frozenset({"YAMLFILE", "PTSRCCAT", "GALAXCAT", "EXTNDCAT", "MTPTSCAT",
                        "MTSERSIC", "MTEXTEND", "NONSDRAL", "DISTORTN", "IPC", "CROSSTLK",
                        "FLUX_CAL", "FTHRUPUT", "GAINFILE"})


def prepare_process(preload: tuple[str, ...] = ()) -> None:
    """Make this process safe and quick for a stage.

    - No network: astropy downloads off, pysiaf imported without its PRD check.
    - ``preload``: modules to import now (e.g. ``jwst.pipeline``), before the freeze below.
    - ``gc.collect()`` then ``gc.freeze()``: stpipe 1.1 runs ``gc.collect()`` before every
      step, which walks every tracked object of the process; in a Dask worker holding jwst
      and distributed that is ~430,000 objects and ~0.3 s per step. Freezing moves the
      objects alive now (imports, caches; garbage was just collected) into the permanent
      generation that collections skip. Measured on a warm SUB400P Detector1: 7.0 s ->
      2.0 s. Objects created later are collected as usual.
    """
    import gc
    import importlib

    offline.configure()
    offline.import_pysiaf()
    for name in preload:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


def _clean_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def publish(work: Path, final_dir: Path) -> dict[str, Path]:
    """Rename every file (or symbolic link) of ``work`` into ``final_dir``; remove ``work``.

    Returns file name -> final path. Each rename is atomic (same file system).
    """
    final_dir.mkdir(parents=True, exist_ok=True)
    moved = {}
    for entry in sorted(work.iterdir()):
        if entry.name.startswith(".") or (entry.is_dir() and not entry.is_symlink()):
            continue
        dst = final_dir / entry.name
        os.replace(entry, dst)
        moved[entry.name] = dst
    shutil.rmtree(work, ignore_errors=True)
    return moved


def _crds(params: Mapping[str, Any]):
    return CrdsSetup(dict(params["crds_env"]))


def _steps(params: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params.get("steps", {})))


# --- catalog ------------------------------------------------------------------------------

def catalog_stage(ctx: StageContext) -> StageResult:
    """The scenario's input catalog, cut to (or generated over) the plan's footprint, as
    ``catalog/stars.ecsv`` and ``catalog/galaxies.ecsv``."""
    prepare_process()

    plan = Plan.from_json(ctx.layout.plan.read_text())
    files = {k: str(v) for k, v in ctx.inputs.items()}
    cat = catalog_from_spec(ctx.params, files, plan)
    stars, galaxies = cat.write(ctx.layout.catalog)
    info = {"n_stars": len(cat.stars), "n_galaxies": len(cat.galaxies), **cat.meta}
    return StageResult({"stars": stars, "galaxies": galaxies}, info)


# --- simulate -----------------------------------------------------------------------------

def content_sha256(path: str | os.PathLike) -> str:
    """sha256 of a FITS file's content independent of where its inputs lived.

    Hashes every HDU's header cards (except :data:`PATH_CARDS`, ``CHECKSUM``/``DATASUM``)
    and data bytes, and skips the ``ASDF`` extension (which embeds the same header values).
    Two runs of one scenario in different run directories give equal values although their
    uncal bytes differ in the path cards.
    """
    import hashlib

    from astropy.io import fits

    h = hashlib.sha256()
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.name == "ASDF":
                continue
            for card in hdu.header.cards:
                if card.keyword in PATH_CARDS or card.keyword in ("CHECKSUM", "DATASUM"):
                    continue
                h.update(f"{card.keyword}={card.value!r};".encode())
            if hdu.data is not None and hasattr(hdu.data, "tobytes"):
                h.update(hdu.data.tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=2)
def _read_catalog(stars: str, galaxies: str, stamp: tuple) -> SourceCatalog:
    """The run's catalog, read once per worker process and reused by every exposure it
    simulates (a 10^5-source ECSV pair takes ~2 s to parse). ``stamp`` (sizes and
    modification times) makes a rewritten catalog a new entry."""
    from astropy.table import Table

    del stamp
    return SourceCatalog(Table.read(stars, format="ascii.ecsv"),
                         Table.read(galaxies, format="ascii.ecsv"))


def _file_stamp(*paths: str | os.PathLike) -> tuple:
    stats = [os.stat(p) for p in paths]
    return tuple((st.st_size, st.st_mtime_ns) for st in stats)


def _exposure_tables(ctx: StageContext, band: str, margin_arcsec: float):
    files = str(ctx.inputs["stars"]), str(ctx.inputs["galaxies"])
    cat = _read_catalog(*files, _file_stamp(*files))
    stars, galaxies = cat.for_band(band)
    plan = Plan.from_json(ctx.layout.plan.read_text())
    near = Footprint.of_plan(plan, margin_arcsec, base_names=[ctx.params["base_name"]])
    if len(stars):
        stars = stars[near.contains(stars["ra"], stars["dec"])]
    if len(galaxies):
        galaxies = galaxies[near.contains(galaxies["ra"], galaxies["dec"])]
    return stars, galaxies


def simulate_stage(ctx: StageContext) -> StageResult:
    """MIRAGE for one exposure into ``exposures/<base>/`` (uncal, seed image, truth lists).

    Sources within ``params['margin_arcsec']`` of the exposure's aperture are passed on
    (MIRAGE adds the wings of sources just off the detector). MIRAGE's pointing is the
    aperture reference point's RA/Dec and PA_V3 (see :func:`simval.run.graph.mirage_exposure`).
    """
    prepare_process()

    p = ctx.params
    exposure = MirageExposure(**p["mirage_exposure"])
    refs = MirageReferences.from_mapping(p["references"], mirage_data=p["mirage_data"],
                                         crds_env=p["crds_env"])
    stars, galaxies = _exposure_tables(ctx, p["band"], float(p["margin_arcsec"]))
    out_dir = ctx.layout.exposure_dir(exposure.base_name)
    result = simulate_exposure(exposure, refs, stars, galaxies, out_dir, log_path=ctx.log,
                               timeout_s=p.get("timeout_s"))
    ctx.usage.add_child_peak(result.peak_rss_mb)
    outputs = {"uncal": result.uncal, "seed_image": result.seed_image, "yaml": result.yaml}
    for name in ("point_sources", "galaxies", "cosmic_rays", "seed_sky"):
        if getattr(result, name) is not None:
            outputs[name] = getattr(result, name)
    for name, suffix in (("point_source_catalog", "_pointsources.cat"),
                         ("galaxy_catalog", "_galaxies.cat")):
        path = out_dir / f"{exposure.base_name}{suffix}"
        if path.is_file():
            outputs[name] = path
    info = {
        "mirage_seconds": round(result.seconds, 3),
        "mirage_peak_rss_mb": round(result.peak_rss_mb, 1),
        "mirage_stage_seconds": dict(result.stage_seconds),
        "network_attempts": list(result.network_attempts),
        "background_adu_s": exposure.background_adu_s,
        "n_stars_given": len(stars), "n_galaxies_given": len(galaxies),
        "uncal_content_sha256": content_sha256(result.uncal),
    }
    return StageResult(outputs, info)


def simulate_miri_stage(ctx: StageContext) -> StageResult:
    """simval's MIRI imager simulator for one exposure into ``exposures/<base>/`` (uncal,
    seed image, truth lists: :func:`simval.simulate.miri_exposure.simulate_miri_exposure`),
    from the catalog's sources within ``params['margin_arcsec']`` of the aperture."""
    prepare_process()
    import numpy as np  # as the other stage functions: workers import numpy on first use

    p = ctx.params
    stars, galaxies = _exposure_tables(ctx, p["band"], float(p["margin_arcsec"]))

    def col(table, name, dtype=float):
        return np.asarray(table[name], dtype) if len(table) else np.zeros(0, dtype)

    sources = MiriSources(
        star_ra=col(stars, "ra"), star_dec=col(stars, "dec"), star_mag=col(stars, "mag"),
        star_index=col(stars, "index", np.int64), gal_ra=col(galaxies, "ra"),
        gal_dec=col(galaxies, "dec"), gal_mag=col(galaxies, "mag"),
        gal_radius=col(galaxies, "radius"), gal_ellipticity=col(galaxies, "ellipticity"),
        gal_pos_angle=col(galaxies, "pos_angle"), gal_sersic=col(galaxies, "sersic_index"),
        gal_index=col(galaxies, "index", np.int64))
    exp = dict(p["exposure"])
    exposure = MiriExposure(**{**exp, "offset_arcsec": tuple(exp["offset_arcsec"])})
    base = MiriEffects()
    effects = dataclasses.replace(base, poisson=bool(p["effects"]["poisson"]),
                          cosmic_rays_per_cm2_s=base.cosmic_rays_per_cm2_s
                          * float(p["effects"]["cosmic_ray_scale"]))
    v2, v3, ra, dec, roll = p["pointing"]
    attitude = offline.siaf_rotations().attitude(v2, v3, ra, dec, roll)
    t0 = time.perf_counter()
    products = simulate_miri_exposure(
        ctx.layout.exposure_dir(p["base_name"]), p["base_name"],
        cal=MiriCalibration.from_files(p["band"], p["files"]),
        detector_seed=int(p["detector_seed"]), exposure=exposure,
        readout=MiriReadout(**p["readout"]), attitude=attitude, sources=sources,
        sky_mjy_sr=float(p["sky_mjysr"]), seed=int(p["seed"]), effects=effects,
        extended=_extended_emission(p.get("extended")))
    outputs = {"uncal": products.uncal, "seed_image": products.seed_image,
               "point_sources": products.point_sources, "galaxies": products.galaxies}
    info = {"simulator": "simval-miri", "simulator_seconds": round(time.perf_counter() - t0, 3),
            "n_stars_given": len(stars), "n_galaxies_given": len(galaxies),
            "uncal_content_sha256": content_sha256(products.uncal)}
    if p.get("extended"):
        info["extended_emission"] = {"file": Path(p["extended"]["path"]).name,
                                     "scale": float(p["extended"]["scale"])}
    return StageResult(outputs, info)


def _extended_emission(p: dict | None):
    """The stage's extended-emission image and its factor in this filter, or None."""
    if not p:
        return None
    return read_emission_image(p["path"]), float(p["scale"])


# --- detector1 / image2 -------------------------------------------------------------------

def _level2(ctx: StageContext, which: str) -> StageResult:
    prepare_process(("jwst.pipeline",))

    p = ctx.params
    base = p["base_name"]
    final_dir = ctx.layout.detector1 if which == "detector1" else ctx.layout.image2
    work = _clean_dir(ctx.layout.scratch(final_dir, base))

    run = for_stage(p, which, calibrate.detector1 if which == "detector1" else calibrate.image2)
    src = ctx.inputs["uncal" if which == "detector1" else "rate"]
    error = p.get("pointing_error_mas")
    if error:
        # a sub-directory: publish() leaves it out, and it goes with the work directory
        src = offset_recorded_pointing(src, work / "input" / src.name, error)
    product = run(src, work, _crds(p), ctx.log, _steps(p))
    if which == "detector1":
        _drop_single_integration_rateints(product)
    moved = publish(work, final_dir)
    main = moved[product.name]
    outputs = {name.removeprefix(base + "_").removesuffix(".fits"): path
               for name, path in moved.items()}
    info = {"product": ctx.layout.rel(main), "ref_files": calibrate.ref_files_used(main),
            **({"pointing_error_mas": list(error)} if error else {}),
            "reftype_steps": stage_reftype_steps(p, which),
            "cal_step": calibrate.cal_step_status(main)}
    return StageResult(outputs, info)


def _drop_single_integration_rateints(rate: Path) -> None:
    """calwebb_detector1 writes ``_rateints`` even for one integration, where it holds the
    rate's arrays again (81 MB per full-frame exposure); it is not kept then."""
    from astropy.io import fits

    ints = rate.with_name(rate.name.replace("_rate.fits", "_rateints.fits"))
    if ints.is_file() and int(fits.getheader(rate).get("NINTS", 1)) == 1:
        ints.unlink()


def detector1_stage(ctx: StageContext) -> StageResult:
    """calwebb_detector1: ``<base>_uncal.fits`` -> ``detector1/<base>_rate.fits``."""
    return _level2(ctx, "detector1")


def image2_stage(ctx: StageContext) -> StageResult:
    """calwebb_image2: ``<base>_rate.fits`` -> ``image2/<base>_cal.fits``."""
    return _level2(ctx, "image2")


# --- image3 -------------------------------------------------------------------------------

def _link(target: Path, link: Path) -> None:
    """A relative symbolic link (a copy where links are not possible)."""
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(os.path.relpath(target, link.parent))
    except OSError:
        shutil.copy2(target, link)


def skymatch_levels(asn: Path, crds, log: Path, params: Mapping[str, Any]
                    ) -> dict[str, float | None]:
    """Sky levels (MJy/sr) jwst's SkyMatchStep finds for each member of ``asn``, with the
    scenario's skymatch parameters and ``subtract = False`` (nothing is changed on disk)."""
    from jwst.skymatch import SkyMatchStep

    kwargs = {k: v for k, v in params.items()
              if k not in ("skip", "save_results", "output_dir", "output_file")}
    kwargs["subtract"] = False
    levels: dict[str, float | None] = {}
    with using_environment(crds.env), stage_log(log):
        library = SkyMatchStep.call(str(asn), **kwargs)
        with library:
            for i in range(len(library)):
                model = library.borrow(i)
                level = model.meta.background.level
                levels[str(model.meta.filename)] = None if level is None else float(level)
                library.shelve(model, i, modify=False)
    return levels


def image3_stage(ctx: StageContext) -> StageResult:
    """calwebb_image3 for one filter: association of that filter's cal files (jwst's
    ``asn_from_list``; mixed filters are refused) -> ``image3/<product>/``.

    Background recipe ``median_masked``: SkyMatchStep with ``subtract = False`` records
    skymatch's levels; each member is replaced by a copy with its sigma-clipped,
    source-masked median subtracted (:func:`simval.calibrate.subtract_median_background`,
    recorded in ``meta.background``); image3 then runs with skymatch skipped.
    """
    prepare_process(("jwst.pipeline",))
    from astropy.table import Table

    p = ctx.params
    name = p["product"]["name"]
    crds = _crds(p)
    steps = _steps(p)
    final_dir = ctx.layout.product_dir(name)
    work = _clean_dir(ctx.layout.scratch(ctx.layout.image3, name))
    members = []
    for base in p["members"]:
        cal = ctx.inputs[f"cal:{base}"]
        member = work / cal.name
        _link(cal, member)
        members.append(member)
    asn = calibrate.make_association(members, name, work / f"{name}_asn.json")
    refcat = _abs_refcat(ctx, work / f"{name}_abs_refcat.ecsv")
    if refcat is not None:
        steps.setdefault("tweakreg", {})["abs_refcat"] = str(refcat)
    background: dict[str, Any] = {"recipe": p["recipe"]}
    if p["recipe"] == "median_masked":
        sky = steps.get("skymatch", {})
        background["skymatch_levels_mjysr"] = (
            {} if sky.get("skip") else skymatch_levels(asn, crds, ctx.log, sky))
        background["subtracted_levels_mjysr"] = {
            m.name: calibrate.subtract_median_background(m, m, **p.get("median_masked", {}))
            for m in members}
        steps.setdefault("skymatch", {})["skip"] = True

    products = for_stage(p, "image3", calibrate.image3)(asn, work, crds, ctx.log, steps)
    if p["recipe"] == "skymatch":
        background["skymatch_levels_mjysr"] = dict(products.background_levels)
    background_file = work / f"{name}_background.json"
    write_text(background_file, json.dumps(background, indent=1, sort_keys=True) + "\n")
    moved = publish(work, final_dir)
    outputs: dict[str, Path] = {"asn": moved[asn.name], "i2d": moved[products.i2d.name],
                                "catalog": moved[products.catalog.name],
                                "background": moved[background_file.name]}
    if products.segmentation is not None:
        outputs["segmentation"] = moved[products.segmentation.name]
    for member in members:
        outputs[f"member:{member.name.removesuffix('_cal.fits')}"] = moved[member.name]
    for fname, path in moved.items():
        if fname.endswith(("_skymatch.fits", "_crf.fits")):
            outputs[fname.removesuffix(".fits")] = path
        elif fname.endswith(calibrate.TWEAKREG_WCS_SUFFIX):
            outputs[f"tweakreg_wcs:{fname.removesuffix(calibrate.TWEAKREG_WCS_SUFFIX)}"] = path
    if refcat is not None:
        outputs["abs_refcat"] = moved[refcat.name]
    i2d = outputs["i2d"]
    info = {
        "filter": p["product"]["filter_name"], "members": list(p["members"]),
        "ref_files": calibrate.ref_files_used(i2d),
        "reftype_steps": stage_reftype_steps(p, "image3"),
        "cal_step": calibrate.cal_step_status(i2d),
        "background": background, "steps_as_run": _image3_as_run(steps),
        "n_sources": len(Table.read(outputs["catalog"], format="ascii.ecsv")),
    }
    return StageResult(outputs, info)


def _image3_as_run(steps: Mapping[str, Any]) -> dict[str, Any]:
    """Image3 parameters as :func:`simval.calibrate.image3` passes them on (it asks skymatch
    and a running tweakreg to save their per-exposure products unless the scenario
    decided)."""
    out = json.loads(json.dumps(steps))
    out.setdefault("skymatch", {}).setdefault("save_results", True)
    tweakreg = out.setdefault("tweakreg", {})
    if not tweakreg.get("skip", False):
        tweakreg.setdefault("save_results", True)
    return out


def _abs_refcat(ctx: StageContext, path: Path) -> Path | None:
    """Scenario ``alignment.abs_refcat``: the reference star list for tweakreg, from the
    run's star catalog (:func:`simval.catalogs.refcat.reference_catalog`), or None."""
    spec = ctx.params.get("abs_refcat")
    if not spec:
        return None
    from astropy.table import Table

    band = ctx.params["product"]["filter_name"]
    stars = Table.read(ctx.inputs["stars"], format="ascii.ecsv")
    table = reference_catalog(stars, band, min_mag=spec["min_mag"], max_mag=spec["max_mag"],
                              noise_mas=spec["noise_mas"], bias_mas=spec["bias_mas"],
                              rng=component_rng(int(spec["seed"]), "abs_refcat", band))
    return write_reference_catalog(table, path)


# --- truth, evaluation, metrics -----------------------------------------------------------

def _product_plan(ctx: StageContext):
    """The stage's plan (``params["plan"]``: the run's plan cut to one product) and product."""

    plan = Plan.from_dict(ctx.params["plan"])
    return plan, plan.products[0]


def truth_stage(ctx: StageContext) -> StageResult:
    """Truth of one mosaic into ``truth/``: the truth table (:func:`simval.truth.build_truth`),
    the true backgrounds per exposure (:func:`simval.truth.true_backgrounds`) and the
    noiseless truth mosaic (:func:`simval.truth_mosaic.product_truth_mosaic`; absent when an
    exposure has no seed image)."""
    prepare_process()
    import numpy as np

    plan, product = _product_plan(ctx)
    layout = ctx.layout
    i2d = ctx.inputs["i2d"]
    truth = build_truth(layout, plan, product.filter_name, i2d=i2d, write=True)
    backgrounds = true_backgrounds(layout, plan)
    outputs = {"truth": layout.truth_table(product.name),
               "backgrounds": write_truth(backgrounds, layout.backgrounds(product.name))}
    data, note = product_truth_mosaic(layout, plan, product, i2d)
    if data is not None:
        outputs["truth_mosaic"] = write_truth_mosaic(data, layout.truth_mosaic(product.name))
        note = layout.rel(outputs["truth_mosaic"])
    info = {"band": product.filter_name, "n_truth": len(truth),
            "n_in_footprint": int(np.sum(np.asarray(truth["in_footprint"]))),
            "truth_mosaic": note, "skymatch_source": backgrounds.meta["skymatch_source"]}
    return StageResult(outputs, info)


def evaluate_stage(ctx: StageContext) -> StageResult:
    """Match and metrics of one mosaic (:func:`simval.evaluate.evaluate_product`) into
    ``evaluation/<product>_match.ecsv`` and ``evaluation/<product>_metrics.json``."""
    prepare_process()

    plan, product = _product_plan(ctx)
    settings = EvaluationSettings.from_params(ctx.params["settings"])
    note = "no truth mosaic (see the truth stage's record)"
    ev = evaluate_product(ctx.layout, plan, product, settings, truth_mosaic_note=note)
    outputs = write_product_evaluation(ev, ctx.layout, scenario_name=plan.scenario_name,
                                       settings=settings)
    info = {"band": ev.band, "n_matched": ev.match.n_pairs,
            "n_measured": len(ev.measured), "not_computed": sorted(ev.not_computed)}
    return StageResult(outputs, info)


def metrics_stage(ctx: StageContext) -> StageResult:
    """``metrics.json``: the join of every product's evaluation
    (:func:`simval.evaluate.join_metrics`)."""
    prepare_process()

    p = ctx.params
    parts = [ctx.inputs[k] for k in sorted(ctx.inputs)]
    path = join_metrics(ctx.layout, parts, scenario_name=p["scenario_name"],
                        scenario_hash=p["scenario_hash"], crds_context=p.get("crds_context"),
                        versions=software_versions())
    return StageResult({"metrics": path}, {"products": len(parts)})


STAGE_FUNCTIONS = {
    "catalog": catalog_stage,
    "simulate": simulate_stage,
    "simulate_miri": simulate_miri_stage,
    "detector1": detector1_stage,
    "image2": image2_stage,
    "image3": image3_stage,
    "truth": truth_stage,
    "evaluate": evaluate_stage,
    "metrics": metrics_stage,
}
