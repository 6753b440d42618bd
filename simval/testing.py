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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simval.evaluate import join_metrics
from simval.layout import RunLayout
from simval.match import match_catalogs
from simval.match_table import build_match_table, write_match_table
from simval.metrics import catalog_metrics
from simval.metrics_schema import MetricsDocument, write_metrics
from simval.run.records import FileRef, StageSpec, now_utc, record_complete
from simval.run.resources import Usage
from simval.truth import write_truth

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS

    from simval.metrics_schema import Measurement
    from simval.plan import Plan

__all__ = ["record_finished_run", "record_stage", "tan_wcs", "write_evaluation"]


def record_stage(layout: RunLayout, stage_id: str, outputs: Mapping[str, str | os.PathLike],
                 *, info: Mapping[str, Any] | None = None) -> None:
    """A ``complete`` record of stage ``stage_id`` (kind: the part before the first dot)
    whose outputs are the given files (name -> path, which must exist)."""
    kind = stage_id.partition(".")[0]
    spec = StageSpec(stage_id, kind, str(layout.root))
    refs = {name: FileRef.of(path, layout) for name, path in outputs.items()}
    record_complete(spec, layout, inputs={}, fp="synthetic", started=now_utc(),
                    usage=Usage(), outputs=refs, info=dict(info or {}))


def _existing(paths: Mapping[str, Path | None]) -> dict[str, Path]:
    return {k: p for k, p in paths.items() if p is not None and p.is_file()}


def record_finished_run(layout: RunLayout, plan: Plan) -> None:
    """Record the catalog, simulate, image2 and image3 outputs of a synthetic run that
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
            "galaxies": d / f"{base}_uncal_galaxySources.list"}))
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
        import json

        data = json.loads(out["joined"].read_text())
        data["provenance"].update(provenance)
        out["joined"].write_text(json.dumps(data, indent=2))
    return out


def tan_wcs(shape: tuple[int, int], crval: tuple[float, float], scale_arcsec: float) -> WCS:
    """A gnomonic WCS centred on ``shape`` (ny, nx) at ``crval`` (deg), north up, east
    left, ``scale_arcsec`` per pixel."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w
