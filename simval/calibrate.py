"""Drive calwebb_detector1, calwebb_image2 and calwebb_image3 on simulated exposures.

Each stage is a function from files to files. The pipeline's own step and parameter names
pass through unchanged (``{"tweakreg": {"skip": True}}``). CRDS is whatever
:class:`CrdsSetup` says — the kit's offline cache or a user's real one — applied to this
process for the duration of the call only. Pipeline, CRDS and warning logs go to the
stage's log file, not the terminal.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simval.atomic import atomic_path, write_text
from simval.kit.crds_cache import SERVERLESS_URL, using_environment
from simval.kit.crds_mappings import PIPELINES

#: Loggers the pipeline writes to.
PIPELINE_LOGGERS = ("stpipe", "jwst", "stcal", "CRDS", "py.warnings", "tweakwcs", "drizzle")


class CalibrationError(RuntimeError):
    """A pipeline stage failed; the message names the stage, input and log file."""


@dataclass(frozen=True)
class CrdsSetup:
    """The CRDS environment a calibration runs with.

    env : ``CRDS_PATH``, ``CRDS_CONTEXT``, ``CRDS_SERVER_URL``, ``CRDS_MODE``, ... exactly as
        CRDS reads them. For the kit, :meth:`from_kit`; for a real cache, :meth:`real`.
    """

    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_kit(cls, kit, context: str | None = None) -> CrdsSetup:
        return cls(kit.crds_env(context))

    @classmethod
    def real(cls, crds_path: str | Path, context: str, server_url: str | None = None):
        """A user's real CRDS cache; ``server_url`` only if they configured a real server."""
        env = {"CRDS_PATH": str(crds_path), "CRDS_CONTEXT": context}
        if server_url:
            env["CRDS_SERVER_URL"] = server_url
            env["CRDS_MODE"] = "auto"
        else:
            env["CRDS_SERVER_URL"] = SERVERLESS_URL
            env["CRDS_MODE"] = "local"
        return cls(env)

    @property
    def context(self) -> str:
        return self.env.get("CRDS_CONTEXT", "")


@contextlib.contextmanager
def stage_log(path: Path) -> Iterator[None]:
    """Send the pipeline's logs (INFO and above) and Python warnings to ``path``."""
    from crds.core import log as crds_log

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - "
                                           "%(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    had_crds_console = crds_log.THE_LOGGER.console is not None
    if had_crds_console:
        crds_log.remove_console_handler()
    crds_log.THE_LOGGER.logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield
    finally:
        logging.captureWarnings(False)
        crds_log.THE_LOGGER.logger.removeHandler(handler)
        if had_crds_console:
            crds_log.add_console_handler()
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


@contextlib.contextmanager
def _pipeline_context(crds: CrdsSetup, log: Path, what: str, inputs: Any) -> Iterator[None]:
    with using_environment(crds.env), stage_log(log):
        try:
            yield
        except Exception as err:
            logging.getLogger("simval").exception("%s failed", what)
            raise CalibrationError(f"{what} failed on {inputs}: {type(err).__name__}: {err} "
                                   f"(full log: {log})") from err


def _split_params(params: Mapping[str, Any] | None) -> tuple[dict, dict]:
    """Split ``{step: {param: value}, pipeline_param: value}`` into steps and pipeline kwargs."""
    steps, top = {}, {}
    for key, value in (params or {}).items():
        (steps if isinstance(value, Mapping) else top)[key] = dict(value) if isinstance(
            value, Mapping) else value
    return steps, top


def _call(pipeline_cls, input_path: Path | str, out_dir: Path, params) -> Any:
    steps, top = _split_params(params)
    out_dir.mkdir(parents=True, exist_ok=True)
    return pipeline_cls.call(str(input_path), output_dir=str(out_dir), save_results=True,
                             steps=steps, configure_log=False, **top)


def _expect(path: Path, what: str, log: Path) -> Path:
    if not path.is_file():
        raise CalibrationError(f"{what} finished without writing {path} (see {log})")
    return path


def _base(name: str, suffix: str) -> str:
    stem = Path(name).name
    for s in ("_uncal.fits", "_rate.fits", "_rateints.fits", "_cal.fits", "_calints.fits"):
        if stem.endswith(s):
            return stem[: -len(s)] + suffix
    raise ValueError(f"{name}: not a JWST level-1b/2 product name (expected *_uncal.fits, "
                     "*_rate.fits or *_cal.fits)")


def detector1(uncal: Path, out_dir: Path, crds: CrdsSetup, log: Path,
              params: Mapping[str, Any] | None = None) -> Path:
    """calwebb_detector1: ``<base>_uncal.fits`` -> ``<base>_rate.fits`` (DN/s)."""
    from jwst.pipeline import Detector1Pipeline

    with _pipeline_context(crds, log, "calwebb_detector1", uncal):
        _call(Detector1Pipeline, uncal, out_dir, params)
    return _expect(out_dir / _base(uncal.name, "_rate.fits"), "calwebb_detector1", log)


def image2(rate: Path, out_dir: Path, crds: CrdsSetup, log: Path,
           params: Mapping[str, Any] | None = None) -> Path:
    """calwebb_image2: ``<base>_rate.fits`` -> ``<base>_cal.fits`` (MJy/sr), or
    ``<base>_rateints.fits`` -> ``<base>_calints.fits`` (one image per integration, as
    coronagraphy calibrates)."""
    from jwst.pipeline import Image2Pipeline

    suffix = "_calints.fits" if rate.name.endswith("_rateints.fits") else "_cal.fits"
    with _pipeline_context(crds, log, "calwebb_image2", rate):
        _call(Image2Pipeline, rate, out_dir, params)
    return check_calibrated(_expect(out_dir / _base(rate.name, suffix),
                                    "calwebb_image2", log), log)


@dataclass(frozen=True)
class Coron3Products:
    """What calwebb_coron3 wrote for one association (paths): the stacked references, per
    science exposure the aligned references and the PSF-subtracted integrations (keyed by
    the exposure's base name), and the resampled product."""

    asn: Path
    psfstack: Path
    psfalign: dict[str, Path]
    psfsub: dict[str, Path]
    i2d: Path


def coron3(members: Sequence[tuple[Path, str]], product_name: str, out_dir: Path,
           crds: CrdsSetup, log: Path, params: Mapping[str, Any] | None = None
           ) -> Coron3Products:
    """calwebb_coron3 on ``members``: (``<base>_calints.fits``, ``"science"`` or ``"psf"``).

    The association is made with the pipeline's own ``asn_from_list`` (level-3 base rule,
    exposure types named) and written to ``out_dir/<product>_asn.json``; the members are
    read where they are.
    """
    from jwst.associations.asn_from_list import asn_from_list
    from jwst.associations.lib.rules_level3_base import DMS_Level3_Base
    from jwst.pipeline import Coron3Pipeline

    kinds = {k for _, k in members}
    if not {"science", "psf"} <= kinds or kinds - {"science", "psf"}:
        raise ValueError(f"coron3 needs science and psf members, got {sorted(kinds)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    asn = asn_from_list([(str(p), k) for p, k in members], rule=DMS_Level3_Base,
                        product_name=product_name, with_exptype=True)
    _, text = asn.dump(format="json")
    asn_path = out_dir / f"{product_name}_asn.json"
    asn_path.write_text(text)
    with _pipeline_context(crds, log, "calwebb_coron3", asn_path):
        _call(Coron3Pipeline, asn_path, out_dir, params)
    science = [_base(p.name, "") for p, k in members if k == "science"]

    def one(base: str, suffix: str) -> Path:
        found = sorted(out_dir.glob(f"{base}_*{suffix}"))
        if not found:
            raise CalibrationError(f"calwebb_coron3 wrote no {base}*{suffix} (see {log})")
        return found[0]

    return Coron3Products(
        asn=asn_path,
        psfstack=_expect(out_dir / f"{product_name}_psfstack.fits", "calwebb_coron3", log),
        psfalign={b: one(b, "_psfalign.fits") for b in science},
        psfsub={b: one(b, "_psfsub.fits") for b in science},
        i2d=_expect(out_dir / f"{product_name}_i2d.fits", "calwebb_coron3", log))


def check_calibrated(cal: Path, log: Path | None = None) -> Path:
    """``cal`` if the photom step left it in MJy/sr (or was skipped), else a
    :class:`CalibrationError`: jwst's photom reports COMPLETE and leaves the data in DN/s
    when the PHOTOM reference has no row for the exposure's filter and subarray (seen with
    MIRI references), and every flux downstream would be off by PHOTMJSR."""
    from astropy.io import fits

    primary, sci = fits.getheader(cal), fits.getheader(cal, "SCI")
    if str(primary.get("S_PHOTOM", "")).upper() != "COMPLETE":
        return cal
    bunit = str(sci.get("BUNIT", ""))
    if sci.get("PHOTMJSR") is None or bunit != "MJy/sr":
        raise CalibrationError(
            f"{cal}: photom says COMPLETE but left BUNIT={bunit!r} with no PHOTMJSR: the "
            f"PHOTOM reference ({primary.get('R_PHOTOM', '?')}) has no row for FILTER="
            f"{primary.get('FILTER', '?')} SUBARRAY={primary.get('SUBARRAY', '?')}"
            + (f" (see {log})" if log else ""))
    return cal


def exposure_filter(path: Path) -> tuple[str, str]:
    """(FILTER, PUPIL) of a calibrated exposure, from its primary header."""
    from astropy.io import fits

    hdr = fits.getheader(path)
    return str(hdr.get("FILTER", "")).upper(), str(hdr.get("PUPIL", "")).upper()


def make_association(cal_files: Sequence[Path], product_name: str, path: Path) -> Path:
    """A level-3 association of ``cal_files`` made with jwst's own ``asn_from_list``.

    Every member must be in one filter/pupil: a mosaic mixing filters is the classic mistake
    this guards against (``ValueError`` naming the odd files).
    """
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level3_base import DMS_Level3_Base

    if not cal_files:
        raise ValueError(f"association {product_name}: no calibrated exposures")
    by_filter: dict[tuple[str, str], list[str]] = {}
    for f in cal_files:
        by_filter.setdefault(exposure_filter(f), []).append(Path(f).name)
    if len(by_filter) > 1:
        detail = "; ".join(f"{fw}/{pw}: {', '.join(names)}"
                           for (fw, pw), names in sorted(by_filter.items()))
        raise ValueError(f"association {product_name} mixes filters ({detail}); one mosaic "
                         "per filter")
    asn = asn_from_list.asn_from_list([Path(f).name for f in cal_files], rule=DMS_Level3_Base,
                                      product_name=product_name)
    _, serialized = asn.dump(format="json")
    write_text(path, serialized)
    return path


@dataclass(frozen=True)
class Image3Products:
    """What calwebb_image3 wrote for one association (paths)."""

    i2d: Path
    catalog: Path | None
    segmentation: Path | None
    background_levels: dict[str, float] = field(default_factory=dict)


def image3(asn: Path, out_dir: Path, crds: CrdsSetup, log: Path,
           params: Mapping[str, Any] | None = None) -> Image3Products:
    """calwebb_image3 on an association whose members sit next to it.

    Writes ``<product>_i2d.fits`` (MJy/sr) and, unless source_catalog is skipped,
    ``<product>_cat.ecsv``.
    """
    from jwst.pipeline import Image3Pipeline

    product = json.loads(asn.read_text())["products"][0]["name"]
    params = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (params or {}).items()}
    # skymatch's per-exposure levels are what the background metrics compare with truth:
    # have the step save its products (<exposure>_skymatch.fits) unless the user decided.
    params.setdefault("skymatch", {}).setdefault("save_results", True)
    # the WCS tweakreg gives each exposure is what the alignment metrics compare with truth:
    # saved (<exposure>_tweakreg.fits), kept as a small ASDF file, and the image dropped
    # unless the user asked for it
    tweakreg = params.setdefault("tweakreg", {})
    drop_tweakreg = not tweakreg.get("skip", False) and "save_results" not in tweakreg
    if drop_tweakreg:
        tweakreg["save_results"] = True
    with _pipeline_context(crds, log, "calwebb_image3", asn):
        _call(Image3Pipeline, asn, out_dir, params)
    _keep_tweakreg_wcs(out_dir, asn, drop_images=drop_tweakreg)
    _name_by_exposure(out_dir, asn, CRF_SUFFIX)
    segm = out_dir / f"{product}_segm.fits"
    catalog_skipped = bool(params.get("source_catalog", {}).get("skip", False))
    return Image3Products(
        i2d=_expect(out_dir / f"{product}_i2d.fits", "calwebb_image3", log),
        catalog=None if catalog_skipped else _expect(out_dir / f"{product}_cat.ecsv",
                                                     "calwebb_image3", log),
        segmentation=segm if segm.is_file() else None,
        background_levels=_background_levels(out_dir, asn),
    )


def member_products(directory: Path, asn: Path, suffix: str) -> dict[str, Path]:
    """Member ``expname`` -> the step product an image3 step saved for it in ``directory``:
    ``<exposure><suffix>``, ``<exposure>_<asn_id><suffix>`` (outlier_detection's
    ``_a3001_crf.fits``) or ``<product>_<member index><suffix>`` (jwst 3.0's ModelLibrary
    names for skymatch and tweakreg); members without one are left out."""
    out = {}
    doc = json.loads(asn.read_text())
    product = doc["products"][0]
    asn_id = doc.get("asn_id")
    for i, member in enumerate(product["members"]):
        candidates = [directory / _base(member["expname"], suffix),
                      directory / f"{product['name']}_{i}{suffix}"]
        if asn_id:
            candidates.insert(1, directory / _base(member["expname"], f"_{asn_id}{suffix}"))
        path = next((c for c in candidates if c.is_file()), None)
        if path is not None:
            out[member["expname"]] = path
    return out


def _background_levels(directory: Path, asn: Path) -> dict[str, float]:
    """meta.background.level (MJy/sr) skymatch found for each member, from its saved
    ``_skymatch.fits`` product (empty when skymatch was skipped)."""
    from astropy.io import fits

    levels = {}
    for expname, path in member_products(directory, asn, "_skymatch.fits").items():
        with fits.open(path) as hdul:
            level = hdul[0].header.get("BKGLEVEL")
        if level is not None:
            levels[expname] = float(level)
    return levels


#: Suffix of outlier_detection's product per exposure (DQ with OUTLIER).
CRF_SUFFIX = "_crf.fits"


def _name_by_exposure(directory: Path, asn: Path, suffix: str) -> None:
    """Rename each member's ``<product>_<index><suffix>`` to ``<exposure><suffix>``."""
    for expname, path in member_products(directory, asn, suffix).items():
        target = directory / _base(expname, suffix)
        if path != target:
            path.replace(target)


#: Suffix of the file holding the WCS tweakreg gave an exposure.
TWEAKREG_WCS_SUFFIX = "_tweakreg_wcs.asdf"


def _keep_tweakreg_wcs(directory: Path, asn: Path, *, drop_images: bool) -> None:
    """For each member tweakreg saved: ``<exposure>_tweakreg_wcs.asdf`` with its gwcs
    (``wcs``) and ``wcsinfo``; the ``_tweakreg.fits`` image removed if ``drop_images``."""
    import asdf
    from stdatamodels.jwst import datamodels

    for expname, path in member_products(directory, asn, "_tweakreg.fits").items():
        with datamodels.open(str(path)) as model:
            tree = {"wcs": model.meta.wcs, "wcsinfo": model.meta.wcsinfo.instance,
                    "tweakreg": model.meta.cal_step.tweakreg}
            target = directory / _base(expname, TWEAKREG_WCS_SUFFIX)
            with atomic_path(target) as tmp:
                asdf.AsdfFile(tree).write_to(tmp)
        if drop_images:
            path.unlink()


def read_tweakreg_wcs(path: str | os.PathLike) -> Any:
    """The gwcs saved by :func:`image3` in ``<exposure>_tweakreg_wcs.asdf``."""
    import asdf

    with asdf.open(str(path), lazy_load=False, memmap=False) as af:
        return af["wcs"]


def ref_files_used(product: Path) -> dict[str, str]:
    """CRDS context and reference file used by every step, from a product's metadata."""
    from stdatamodels.jwst import datamodels

    with datamodels.open(str(product)) as model:
        tree = model.meta.ref_file.instance
    out = {}
    for reftype, value in sorted(tree.items()):
        if reftype == "crds":
            out["crds_context"] = value.get("context_used", "")
            out["crds_version"] = value.get("sw_version", "")
        elif isinstance(value, Mapping) and "name" in value:
            out[reftype] = str(value["name"]).removeprefix("crds://")
    return out


def reftype_steps(pipeline_name: str) -> dict[str, list[str]]:
    """Reference type -> the steps of a pipeline that use it, from each step class's
    ``reference_file_types`` in the jwst of this process.

    ``pipeline_name`` is a short name of :data:`simval.kit.crds_mappings.PIPELINES`
    (``"detector1"``, ``"image2"``, ``"image3"``); ``ValueError`` for another. Computed
    once per process; the caller gets its own copy.
    """
    return {reftype: list(steps) for reftype, steps in _reftype_steps(pipeline_name)}


@functools.cache
def _reftype_steps(pipeline_name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        dotted = PIPELINES[pipeline_name]
    except KeyError:
        raise ValueError(f"unknown pipeline {pipeline_name!r}; known: "
                         f"{', '.join(PIPELINES)}") from None
    module, _, name = dotted.rpartition(".")
    pipeline = getattr(importlib.import_module(module), name)
    found: dict[str, list[str]] = {}
    for step, step_cls in pipeline.step_defs.items():
        for reftype in getattr(step_cls, "reference_file_types", ()) or ():
            found.setdefault(str(reftype).lower(), []).append(str(step))
    return tuple((reftype, tuple(steps)) for reftype, steps in found.items())


def cal_step_status(product: Path) -> dict[str, str]:
    """``meta.cal_step`` of a product: step name -> COMPLETE / SKIPPED."""
    from stdatamodels.jwst import datamodels

    with datamodels.open(str(product)) as model:
        return {k: str(v) for k, v in model.meta.cal_step.instance.items()}


def subtract_median_background(cal: Path, out: Path, *, nsigma_mask: float = 2.0,
                               npixels: int = 5, dilate: int = 5,
                               clip_sigma: float = 3.0) -> float:
    """The survey teams' sky recipe for one exposure: mask sources, take the sigma-clipped
    median of the rest, subtract it, and record it where resample and source_catalog look.

    Writes ``out`` (a cal file) with ``meta.background.level`` = the median (MJy/sr),
    ``subtracted = True`` and ``method = 'median_masked'``; returns the level.
    """
    import numpy as np
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import detect_sources
    from scipy.ndimage import binary_dilation
    from stdatamodels.jwst import datamodels

    with datamodels.open(str(cal)) as model:
        data = model.data
        bad = ~np.isfinite(data) | ((model.dq & 1) != 0)
        _, median, std = sigma_clipped_stats(data, mask=bad, sigma=clip_sigma)
        segm = detect_sources(np.where(bad, median, data) - median, nsigma_mask * std, npixels)
        mask = bad.copy()
        if segm is not None:
            mask |= binary_dilation(segm.data > 0, iterations=dilate)
        _, level, _ = sigma_clipped_stats(data, mask=mask, sigma=clip_sigma)
        level = float(level)
        model.data = (data - level).astype(data.dtype)
        model.meta.background.level = level
        model.meta.background.subtracted = True
        model.meta.background.method = "median_masked"
        with atomic_path(out) as tmp:
            model.save(str(tmp))
    return level
