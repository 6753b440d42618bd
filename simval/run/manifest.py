"""``manifest.json``: the provenance of a whole run, assembled from the stage records.

Keys::

    schema, status ("complete" | "failed" | "interrupted"), failed_stages, blocked_stages,
    error (only when the run itself, not a stage, failed),
    scenario {name, hash, source, copy}, created_utc, finished_utc, wall_s,
    host {hostname, platform, cpu_count, memory_gb}, python,
    versions {jwst, mirage, crds, stcal, stdatamodels, stpipe, photutils, numpy, ...},
    worker_versions (only if a worker's differ from the client's),
    execution {scheduler, workers, threads_per_worker},
    kit {root, seed, version, context, jobs_built, build_wall_s},
    crds {context, kind: kit|real, path},
    instrument (NIRCAM or MIRI), simulator (which made the raw data, with its version),
    pipeline_parameters {detector1, image2, image3: steps as run}, background_recipe,
    stages {stage_id: {kind, status, wall_s, peak_rss_mb, run_wall_s, record, log, error,
                       blocked_by}},
    reference_files {exposure base: {detector1: {...}, image2: {...}},
                     product: {image3: {...}}},   # reftype -> file, plus crds_context
    reftype_steps {detector1: {reftype: [step, ...]}, image2: {...}, image3: {...}},
                  # the steps of each pipeline that use a reference type, recorded by the
                  # stages from the jwst that ran them (a `simval env`'s, when one did)
    background {product: {recipe, skymatch_levels_mjysr, subtracted_levels_mjysr}},
    products {band: {name, i2d, catalog, asn, members, n_sources}},
    peak_rss_mb_max,
    environment {name, python, versions}   (only when the calibration ran in a `simval env`;
                                           ``versions`` is then simval's own process),
    simulation_reused_from {run, offered, reused, rerun}   (only with reuse_simulation)

Times in seconds, memory in MiB, paths relative to the run directory.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Mapping
from typing import Any

from simval.atomic import write_text
from simval.layout import RunLayout
from simval.manifest_schema import MANIFEST_SCHEMA, Manifest
from simval.provenance import now_utc, versions
from simval.run.records import BLOCKED, FAILED, StageOutcome, load_record

#: Distributions whose versions every manifest records.
PACKAGES = ("jwst", "mirage", "crds", "stcal", "stdatamodels", "stpipe", "photutils",
            "numpy", "astropy", "pysiaf", "gwcs", "asdf", "scipy", "dask", "distributed",
            "simval")


def software_versions() -> dict[str, str]:
    """Installed versions (``importlib.metadata``) of :data:`PACKAGES` and Python."""
    return versions(PACKAGES, python=True)


def host_info() -> dict[str, Any]:
    """Host name, platform, CPU count and memory (GB) of this machine."""
    mem_gb = None
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 1e9, 1)
    except ImportError:  # pragma: no cover
        pass
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "memory_gb": mem_gb}


def _stage_entry(outcome: StageOutcome, layout: RunLayout) -> dict[str, Any]:
    record = load_record(layout, outcome.stage_id) or {}
    return {"kind": outcome.kind, "status": outcome.status,
            "wall_s": round(outcome.wall_s, 3), "peak_rss_mb": round(outcome.peak_rss_mb, 1),
            "run_wall_s": round(outcome.run_wall_s, 3),
            "record": layout.rel(layout.record(outcome.stage_id)),
            "log": record.get("log"), "error": outcome.error or record.get("error"),
            "traceback": record.get("traceback"), "blocked_by": outcome.blocked_by}


def _simulator(plan) -> str:
    """Which simulator made the raw data, with its version: ``MIRAGE 2.5.0`` or simval's
    MIRI imager simulator."""
    scenario = getattr(plan, "scenario", None) or {}
    backend = str((scenario.get("simulator") or {}).get("backend") or "mirage")
    if backend == "simval-miri":
        return f"simval {software_versions().get('simval', '?')} MIRI imager simulator"
    if backend == "simval-coron":
        return f"simval {software_versions().get('simval', '?')} NIRCam coronagraphic simulator"
    return f"MIRAGE {software_versions().get('mirage', '?')}"


def build_manifest(*, layout: RunLayout, plan, scenario_source: str, outcomes:
                   Mapping[str, StageOutcome], kit_info: Mapping[str, Any],
                   crds: Mapping[str, Any], execution: Mapping[str, Any],
                   pipeline: Mapping[str, Any], background_recipe: str, started_utc: str,
                   wall_s: float, worker_versions: Mapping[str, Any] | None = None,
                   interrupted: bool = False, error: str | None = None) -> dict[str, Any]:
    """The manifest of a run (module docstring) from its stage outcomes and records."""
    failed = [s for s, o in outcomes.items() if o.status == FAILED]
    blocked = [s for s, o in outcomes.items() if o.status == BLOCKED]
    status = ("interrupted" if interrupted else
              "failed" if failed or blocked or error or not outcomes else "complete")
    refs: dict[str, dict[str, Any]] = {}
    reftype_steps: dict[str, dict[str, list[str]]] = {}
    background: dict[str, Any] = {}
    products: dict[str, Any] = {}
    image3_steps = None
    for sid, outcome in outcomes.items():
        kind, _, name = sid.partition(".")
        if kind in ("detector1", "image2", "image3", "coron3") and outcome.ok:
            refs.setdefault(name, {})[kind] = dict(outcome.info.get("ref_files", {}))
            if outcome.info.get("reftype_steps") and kind not in reftype_steps:
                reftype_steps[kind] = {str(k): list(v) for k, v in
                                       outcome.info["reftype_steps"].items()}
        if kind == "coron3" and outcome.ok:
            info = outcome.info
            image3_steps = info.get("steps_as_run", image3_steps)
            products[info.get("filter", name)] = {
                "name": name, "i2d": outcome.outputs["i2d"].path, "catalog": None,
                "asn": outcome.outputs["asn"].path,
                "members": [m[0] for m in info.get("members", [])],
                "psfstack": outcome.outputs["psfstack"].path,
                "psfsub": {k.split(":", 1)[1]: o.path for k, o in
                           sorted(outcome.outputs.items()) if k.startswith("psfsub:")}}
        if kind == "image3" and outcome.ok:
            info = outcome.info
            background[name] = info.get("background", {})
            image3_steps = info.get("steps_as_run", image3_steps)
            products[info.get("filter", name)] = {
                "name": name, "i2d": outcome.outputs["i2d"].path,
                "catalog": outcome.outputs["catalog"].path,
                "asn": outcome.outputs["asn"].path, "members": info.get("members", []),
                "n_sources": info.get("n_sources"),
            }
    stages = {sid: _stage_entry(o, layout) for sid, o in outcomes.items()}
    coron = getattr(plan, "coronagraphy", None) is not None
    level3 = "coron3" if coron else "image3"
    steps = {k: pipeline.get(k, {}) for k in ("detector1", "image2", level3)
             if not (coron and k == "detector1")}
    if image3_steps is not None:
        steps[level3] = image3_steps
    manifest = {
        "schema": MANIFEST_SCHEMA, "status": status, "failed_stages": failed,
        "blocked_stages": blocked,
        "scenario": {"name": plan.scenario_name, "hash": plan.scenario_hash,
                     "source": scenario_source, "copy": layout.rel(layout.scenario)},
        "plan": layout.rel(layout.plan),
        "instrument": getattr(plan, "instrument", "NIRCAM"),
        "simulator": _simulator(plan),
        "created_utc": started_utc, "finished_utc": now_utc(), "wall_s": round(wall_s, 2),
        "host": host_info(), "python": platform.python_version(),
        "versions": software_versions(),
        "execution": dict(execution), "kit": dict(kit_info), "crds": dict(crds),
        "pipeline_parameters": steps, "background_recipe": background_recipe,
        "stages": stages, "reference_files": refs,
        "reftype_steps": {k: reftype_steps[k] for k in sorted(reftype_steps)},
        "background": background,
        "products": products,
        "peak_rss_mb_max": max((o.peak_rss_mb for o in outcomes.values()), default=0.0),
    }
    if error:
        manifest["error"] = error
    if worker_versions:
        manifest["worker_versions"] = dict(worker_versions)
    return manifest


def write_manifest(layout: RunLayout, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` atomically, after validating it as
    :class:`simval.manifest_schema.Manifest` (a bug that breaks the format fails here, not
    in the reader)."""
    text = json.dumps(manifest, indent=1, default=str)
    Manifest.model_validate_json(text)
    write_text(layout.manifest, text + "\n")
