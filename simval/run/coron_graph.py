"""The stages of a coronagraphy run, decided on the client: per exposure simval's
coronagraphic simulator and calwebb_image2 (rateints -> calints), then calwebb_coron3 on
the observation, its evaluation and the ``metrics`` join.

What decides a simulation is in its parameters: the star and companions on the sky
(Jy), the exposure's attitude and DMS identifiers, the readout, the calibration the
simulator converts with (PHOTFNU of the CLEAR pupil, the Lyot stop's throughput), the
detector's gain and read noise, and the optics (band sampling, wavefront seed and scale;
the reference's scale is the target's x (1 + ``wavefront_drift``)). Occulted PSFs are
cached in the kit directory (``coron_psf_cache/``), shared by every run on that kit.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simval.digest import sha256_file
from simval.instruments.detectors import detector_facts
from simval.instruments.nircam_coron import get_mask
from simval.kit.coron_psf import CoronOptics, lyot_throughput
from simval.kit.coron_refs import coron_photmjsr
from simval.kit.photometry import abmag_to_jy, zeropoint_row
from simval.kit.psf import bandpass
from simval.plan_coron import coron_roles, reference_position
from simval.run.coron_stages import coron3_stage, coron_evaluate_stage, simulate_coron_stage
from simval.run.graph import RunSetupError, crds_env, stage_id
from simval.run.records import StageSpec, read_record
from simval.run.stages import STAGE_FUNCTIONS as F
from simval.scenario.coronagraphy import SMALL_GRIDS
from simval.seeding import component_rng
from simval.simulate.coron_observation import Companion, companion_source
from simval.simulate.coron_scene import OVERSAMPLE, Source, grid_pixels

if TYPE_CHECKING:
    from simval.kit.build import Kit
    from simval.layout import RunLayout
    from simval.plan import Exposure, Plan
    from simval.scenario import Scenario

__all__ = ["build_coron_specs", "coron_evaluation_specs", "coron_optics", "psf_cache_dir",
           "recorded_simulation_params"]

#: DMS PATTTYPE of a small grid by its number of points (SMGRDPAT names the pattern).
SMALL_GRID_TYPES = {5: "5-POINT-SMALL-GRID", 9: "9-POINT-SMALL-GRID"}
#: Declared peak memory of the coronagraphy stages, MiB (measured 337 / 321 / 470 MiB for
#: SUB320A335R, MEDIUM8 x 10 x 3, 4 wavelengths: benchmarks/coron_stages.py).
MEMORY_MB = {"simulate": 900, "image2": 800, "coron3": 1200, "evaluate": 900}


def psf_cache_dir(kit: Kit) -> str:
    """Where the kit keeps the occulted PSFs the simulator computed."""
    return str(kit.layout.root / "coron_psf_cache")


def coron_optics(scenario: Scenario, *, reference: bool = False):
    """The :class:`~simval.kit.coron_psf.CoronOptics` of the target (or the reference)."""

    c = scenario.coronagraphy
    mask = get_mask(c.mask)
    band = bandpass(scenario.filters[0].name, "A", nlambda=c.optics.wavelengths)
    optics = CoronOptics.for_mask(mask, [round(float(w), 6) for w in band.wavelengths_um],
                                  [round(float(w), 9) for w in band.weights],
                                  wfe_seed=c.optics.wfe_seed, wfe_scale=c.optics.wfe_scale,
                                  fov_pixels=grid_pixels(mask), oversample=OVERSAMPLE)
    if reference:
        optics = replace(optics, wfe_scale=round(optics.wfe_scale
                                                 * (1.0 + c.reference.wavefront_drift), 9))
    return optics


def _setup(scenario: Scenario) -> dict[str, float]:

    mask = get_mask(scenario.coronagraphy.mask)
    band = scenario.filters[0].name
    lyot = lyot_throughput()
    facts = detector_facts(mask.detector)
    return {"photfnu": zeropoint_row("NRCA5", band, "CLEAR").photfnu,
            "photmjsr_clear": coron_photmjsr(mask.name, band, lyot) * lyot,
            "lyot_throughput": lyot, "sky_mjysr": scenario.background_for(band),
            "gain_e_per_dn": facts.gain_e_per_dn, "readnoise_cds_e": facts.readnoise_cds_e}


def _ids(e: Exposure) -> dict[str, Any]:
    from astropy.time import Time

    mjd = float(Time(datetime.fromisoformat(e.start_utc), scale="utc").mjd)
    return {"filter_name": e.filter_name, "start_mjd": mjd, "program": e.program,
            "observation": e.observation, "visit": e.visit, "visit_group": e.visit_group,
            "sequence": e.sequence, "activity": e.activity, "exposure": e.exposure,
            "pattern_type": SMALL_GRID_TYPES.get(e.primary_dither_total, "NONE")
            if e.dither_pattern in SMALL_GRIDS and e.dither_pattern != "NONE" else "NONE",
            "pattern_number": e.dither_position, "pattern_points": e.primary_dither_total,
            "offset_arcsec": [e.x_offset_arcsec, e.y_offset_arcsec],
            "small_grid_pattern": e.dither_pattern if e.dither_pattern in SMALL_GRIDS
            and e.dither_pattern != "NONE" else None}


def _sources(scenario: Scenario, plan: Plan) -> tuple[list, list, list]:
    """(target star, its companions, the reference star) as [ra, dec, flux_jy]."""

    c = scenario.coronagraphy
    star = Source(plan.ra_deg, plan.dec_deg, float(abmag_to_jy(c.star_abmag)))
    comps = [companion_source(star, Companion(k.separation_arcsec, k.pa_deg, k.contrast))
             for k in c.companions]
    ref_ra, ref_dec = reference_position(plan.ra_deg, plan.dec_deg, c.reference.offset_arcsec)
    ref = [ref_ra, ref_dec, float(abmag_to_jy(c.reference_abmag()))]
    return ([star.ra, star.dec, star.flux_jy],
            [[s.ra, s.dec, s.flux_jy] for s in comps], ref)


def build_coron_specs(plan: Plan, scenario: Scenario, kit: Kit, layout: RunLayout,
                      run_id: str) -> list[StageSpec]:
    """Every stage of a coronagraphy run (module docstring), upstream first."""

    if scenario.environment:  # graph.check_supported refuses it before the run starts
        raise RunSetupError("environment: a coronagraphy run calibrates with simval's own "
                            "jwst (calwebb_coron3 is not run in other environments)")

    env = crds_env(scenario, kit)
    context = env.get("CRDS_CONTEXT")
    pipeline = scenario.pipeline
    run_dir = str(layout.root)
    roles = coron_roles(plan)
    star, companions, ref = _sources(scenario, plan)
    optics = {"science": coron_optics(scenario).to_params(),
              "psf": coron_optics(scenario, reference=True).to_params()}
    setup = _setup(scenario)
    cache = psf_cache_dir(kit)
    poisson = bool(scenario.effects.poisson)
    mask = scenario.coronagraphy.mask
    extended = scenario.extended_emission
    disk = None
    if extended is not None:  # the target's disk: science exposures only
        path = scenario.resolve_path(extended.file).resolve()
        disk = {"path": str(path), "sha256": sha256_file(path),
                "scale": extended.scale_for(scenario.filters[0].name)}
    specs: list[StageSpec] = []
    for e in plan.exposures:
        role = roles[e.base_name]
        seed = int(component_rng(scenario.seed, "coron", e.base_name).integers(2**31))
        sim = StageSpec(
            stage_id=stage_id("simulate", e.base_name), kind="simulate", run_dir=run_dir,
            run_id=run_id, memory_mb=MEMORY_MB["simulate"], func=simulate_coron_stage,
            params={"base_name": e.base_name, "role": role, "mask": mask,
                    "star": star if role == "science" else ref,
                    "companions": companions if role == "science" else [],
                    "pointing": [e.v2_ref_arcsec, e.v3_ref_arcsec, e.ra_ref_deg,
                                 e.dec_ref_deg, e.roll_ref_deg],
                    "ids": _ids(e), "readout": {"pattern": e.readpatt, "ngroups": e.ngroups,
                                                "nints": e.nints},
                    "setup": setup, "optics": optics[role], "psf_cache": cache,
                    "seed": seed, "poisson": poisson,
                    "wavefront": "target" if role == "science" else "reference",
                    **({"disk": disk} if disk and role == "science" else {})})
        img2 = StageSpec(
            stage_id=stage_id("image2", e.base_name), kind="image2", run_dir=run_dir,
            run_id=run_id, crds_context=context, memory_mb=MEMORY_MB["image2"],
            func=F["image2"],
            params={"base_name": e.base_name, "pipeline": "calwebb_image2",
                    "steps": pipeline.get("image2", {}), "crds_env": env},
            uses={"rate": (sim.stage_id, "rateints")})
        specs += [sim, img2]
    product = plan.products[0]
    members = [[b, roles[b]] for b in product.members]
    coron3 = StageSpec(
        stage_id=stage_id("coron3", product.name), kind="coron3", run_dir=run_dir,
        run_id=run_id, crds_context=context, memory_mb=MEMORY_MB["coron3"],
        func=coron3_stage,
        params={"product": product.name, "filter": product.filter_name, "members": members,
                "pipeline": "calwebb_coron3", "steps": pipeline.get("coron3", {}),
                "crds_env": env},
        uses={f"cal:{b}": (stage_id("image2", b), "calints") for b in product.members})
    sim_params = {"mask": mask, "optics": optics["science"], "psf_cache": cache}
    return [*specs, coron3, *coron_evaluation_specs(plan, layout, run_id,
                                                    crds_context=context,
                                                    sim_params=sim_params)]


def recorded_simulation_params(plan: Plan, layout: RunLayout) -> dict[str, Any]:
    """The first science exposure's simulate parameters, from its record (the optics and
    PSF cache an evaluation of the finished run needs); ``ValueError`` if absent."""

    base = next(b for b, r in coron_roles(plan).items() if r == "science")
    record = read_record(layout, f"simulate.{base}")
    if record is None or record.status != "complete":
        raise ValueError(f"{layout.record(f'simulate.{base}')}: the simulation has not "
                         "completed; run the scenario (`simval run`) first")
    return dict(record.parameters)


def coron_evaluation_specs(plan: Plan, layout: RunLayout, run_id: str, *,
                           crds_context: str | None, sim_params: dict[str, Any]
                           ) -> list[StageSpec]:
    """The evaluate stage of the coron3 product and the ``metrics`` join;
    ``sim_params``: a science simulation's ``mask``, ``optics`` and ``psf_cache``."""

    run_dir = str(layout.root)
    roles = coron_roles(plan)
    product = plan.products[0]
    coron3 = stage_id("coron3", product.name)
    science = [b for b in product.members if roles[b] == "science"]
    evaluate = StageSpec(
        stage_id=stage_id("evaluate", product.name), kind="evaluate", run_dir=run_dir,
        run_id=run_id, memory_mb=MEMORY_MB["evaluate"], func=coron_evaluate_stage,
        params={"product": product.name, "band": product.filter_name,
                "mask": sim_params["mask"], "roles": {b: roles[b] for b in product.members},
                "optics": sim_params["optics"], "psf_cache": sim_params["psf_cache"],
                "lyot_throughput": lyot_throughput(), "scenario_name": plan.scenario_name},
        uses={**{f"truth:{b}": (stage_id("simulate", b), "coron_truth")
                 for b in product.members},
              **{f"calints:{b}": (stage_id("image2", b), "calints") for b in science},
              **{f"{k}:{b}": (coron3, f"{k}:{b}") for b in science
                 for k in ("psfsub", "psfalign")},
              **{f"disk:{b}": (stage_id("simulate", b), "disk_rate") for b in science},
              "psfstack": (coron3, "psfstack"), "i2d": (coron3, "i2d")},
        optional=frozenset(f"disk:{b}" for b in science))
    metrics = StageSpec(
        stage_id="metrics", kind="metrics", run_dir=run_dir, run_id=run_id,
        params={"scenario_name": plan.scenario_name, "scenario_hash": plan.scenario_hash,
                "crds_context": crds_context},
        uses={f"metrics:{product.name}": (evaluate.stage_id, "metrics")}, func=F["metrics"])
    return [evaluate, metrics]
