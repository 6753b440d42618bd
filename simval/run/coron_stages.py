"""The stage functions of a coronagraphy run: simulate one exposure, calwebb_coron3 on the
observation, and its evaluation (companions, contrast, alignment).

calwebb_image2 on each ``_rateints.fits`` is the imaging run's image2 stage
(:func:`simval.run.stages.image2_stage`, which writes ``_calints.fits``). Like every
stage, these read ``ctx.params`` and ``ctx.inputs`` and publish their files atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

from simval import calibrate, offline
from simval.envs.runner import for_stage, stage_reftype_steps
from simval.instruments.nircam_coron import get_mask
from simval.kit.coron_psf import CoronOptics, cached_psf
from simval.metrics.coron_evaluate import evaluate_coron, write_coron_evaluation
from simval.run.records import StageContext, StageResult
from simval.run.stages import _clean_dir, _crds, _link, _steps, content_sha256, prepare_process
from simval.run.stages import publish as publish_dir
from simval.simulate.coron_exposure import CoronSetup, simulate_coron_exposure
from simval.simulate.coron_rateints import CoronReadout
from simval.simulate.coron_scene import Source
from simval.simulate.dms_meta import ExposureIds
from simval.simulate.miri_extended import read_emission_image

__all__ = ["coron3_stage", "coron_evaluate_stage", "simulate_coron_stage"]


def simulate_coron_stage(ctx: StageContext) -> StageResult:
    """simval's coronagraphic simulator for one exposure into ``exposures/<base>/``:
    ``_rateints.fits``, the noiseless rate and the truth table
    (:func:`simval.simulate.coron_exposure.simulate_coron_exposure`). Occulted PSFs are
    read from (or added to) the kit's PSF cache, ``params['psf_cache']``."""
    prepare_process()

    p = ctx.params
    mask = get_mask(p["mask"])
    optics = CoronOptics.from_params(p["optics"])
    hits = {"computed": 0, "cached": 0}

    def psf_for(offset):
        image, hit = cached_psf(optics, offset, p["psf_cache"])
        hits["cached" if hit else "computed"] += 1
        return image

    v2, v3, ra, dec, roll = p["pointing"]
    attitude = _attitude(v2, v3, ra, dec, roll)
    ids = dict(p["ids"])
    ids["offset_arcsec"] = tuple(ids["offset_arcsec"])
    t0 = time.perf_counter()
    products = simulate_coron_exposure(
        ctx.layout.exposure_dir(p["base_name"]), p["base_name"], mask=mask, psf_for=psf_for,
        star=Source(*p["star"]), companions=[Source(*c) for c in p["companions"]],
        attitude=attitude, ids=ExposureIds(**ids), readout=CoronReadout(**p["readout"]),
        setup=CoronSetup(**p["setup"]), psf_reference=p["role"] == "psf",
        seed=int(p["seed"]), poisson=bool(p["poisson"]), wavefront=p["wavefront"],
        disk=(read_emission_image(p["disk"]["path"]), float(p["disk"]["scale"]))
        if p.get("disk") else None)
    outputs = {"rateints": products.rateints, "noiseless_rate": products.rate,
               "coron_truth": products.truth,
               **({"disk_rate": products.disk} if products.disk is not None else {})}
    info = {"simulator": "simval-coron", "role": p["role"],
            "simulator_seconds": round(time.perf_counter() - t0, 3),
            "psfs_computed": hits["computed"], "psfs_from_cache": hits["cached"],
            "rateints_content_sha256": content_sha256(products.rateints)}
    return StageResult(outputs, info)


def _attitude(v2: float, v3: float, ra: float, dec: float, roll: float):

    return offline.siaf_rotations().attitude(v2, v3, ra, dec, roll)


def coron3_stage(ctx: StageContext) -> StageResult:
    """calwebb_coron3 on the observation's calints (science and psf members named in the
    association made by jwst's ``asn_from_list``) -> ``image3/<product>/``: the
    psfstack, a psfalign and a psfsub per science exposure, and the i2d."""
    prepare_process(("jwst.pipeline",))

    p = ctx.params
    name = p["product"]
    work = _clean_dir(ctx.layout.scratch(ctx.layout.image3, name))
    members = []
    for base, role in p["members"]:
        cal = ctx.inputs[f"cal:{base}"]
        member = work / cal.name
        _link(cal, member)
        members.append((member, role))
    run = for_stage(p, "coron3", calibrate.coron3)
    products = run(members, name, work, _crds(p), ctx.log, _steps(p))
    moved = publish_dir(work, ctx.layout.product_dir(name))
    outputs: dict[str, Path] = {"asn": moved[products.asn.name],
                                "psfstack": moved[products.psfstack.name],
                                "i2d": moved[products.i2d.name]}
    for base, path in products.psfalign.items():
        outputs[f"psfalign:{base}"] = moved[path.name]
    for base, path in products.psfsub.items():
        outputs[f"psfsub:{base}"] = moved[path.name]
    for member, _ in members:
        outputs[f"member:{member.name.removesuffix('_calints.fits')}"] = moved[member.name]
    info = {"filter": p["filter"], "members": [list(m) for m in p["members"]],
            # align_refs records its PSFMASK in the psfalign products
            "ref_files": calibrate.ref_files_used(next(iter(
                v for k, v in sorted(outputs.items()) if k.startswith("psfalign:")))),
            "reftype_steps": stage_reftype_steps(p, "coron3"),
            "cal_step": calibrate.cal_step_status(outputs["i2d"]),
            "steps_as_run": dict(_steps(p))}
    return StageResult(outputs, info)


def coron_evaluate_stage(ctx: StageContext) -> StageResult:
    """Companion recovery, contrast curves and alignment of one coron3 product
    (:func:`simval.metrics.coron_evaluate.evaluate_coron`) into ``evaluation/``."""
    prepare_process()

    p = ctx.params
    ev = evaluate_coron(ctx.inputs, p)
    outputs = write_coron_evaluation(ev, ctx.layout, p)
    return StageResult(outputs, ev.info())
