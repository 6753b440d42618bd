"""The stages of a run, decided on the client: a scenario + plan + kit -> StageSpecs.

Every parameter that decides a stage's outputs is written into its spec (and so into its
fingerprint and record): MIRAGE's exposure and reference files (with the kit registry's
sha256 of each), the jwst step parameters, the CRDS environment, the background recipe.

Pointing given to MIRAGE
------------------------
MIRAGE's ``Telescope: ra, dec`` are the aperture reference point's sky position and its
``rotation`` is PA_V3 at V1: MIRAGE converts it to the roll at the reference point with
jwst's ``compute_local_roll`` (mirage/utils/siaf_interface.py) and writes that as ROLL_REF,
which the pipeline's WCS then uses. So the plan's ``pa_v3_deg`` is passed, not its
``roll_ref_deg``. Checked on the quickstart plan at Dec -27.8 (PA_V3 0), 2.2 (PA_V3 120)
and 70 (PA_V3 250): ``compute_local_roll(pa_v3_deg, ...)`` equals the plan's exact
``roll_ref_deg`` to 0.1-0.5 arcsec (jwst's formula is approximate; <2e-5 arcsec of position
across a SUB400P), whereas ``roll_ref_deg`` differs from ``pa_v3_deg`` by 78 arcsec,
11 arcsec and 1255 arcsec: passing roll_ref as ``rotation`` would rotate the field by that.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simval.calibrate import CrdsSetup
from simval.catalogs import catalog_spec
from simval.digest import sha256_file
from simval.envs.registry import EnvError
from simval.envs.runner import env_record
from simval.evaluate import settings_from_scenario
from simval.kit.derive import derive_context
from simval.kit.photometry import background_adu_s
from simval.kit.registry import Registry
from simval.layout import RunLayout
from simval.run.records import StageSpec
from simval.run.stages import STAGE_FUNCTIONS
from simval.run.stages import STAGE_FUNCTIONS as F
from simval.seeding import component_rng
from simval.simulate.mirage_yaml import MirageExposure, MirageReferences, cosmic_ray_files
from simval.simulate.miri_scene import kit_files

if TYPE_CHECKING:
    from simval.kit.build import Kit
    from simval.plan import Exposure, Plan, Product
    from simval.scenario import Scenario

#: Sources within this distance of an exposure's aperture go into its MIRAGE catalogs
#: (the kit's PSF wings reach ~150 SW pixels = 4.7 arcsec), arcsec.
EXPOSURE_MARGIN_ARCSEC = 10.0


class RunSetupError(ValueError):
    """The scenario cannot be run as asked (a user error: printed without traceback)."""


def stage_id(kind: str, name: str | None = None) -> str:
    """``kind`` or ``kind.name`` (``detector1.jw00001001001_01101_00001_nrcb1``)."""
    return kind if name is None else f"{kind}.{name}"


def check_supported(scenario: Scenario) -> None:
    """Refuse, before anything runs, what ``simval run`` cannot do yet."""
    if scenario.instrument == "MIRI" or scenario.coronagraphy is not None:
        if scenario.mirage_data is not None:
            raise RunSetupError(f"mirage_data: MIRAGE does not simulate this mode, "
                                f"{scenario.simulator.backend} does (remove it)")
        if scenario.coronagraphy is not None and scenario.crds.path is not None:
            raise RunSetupError("crds.path: a coronagraphy run calibrates with the "
                                "coronagraphy kit's references, consistent with its "
                                "simulator (remove crds.path)")
        if scenario.coronagraphy is not None and scenario.environment:
            raise RunSetupError("environment: a coronagraphy run calibrates with simval's "
                                "own jwst (calwebb_coron3 is not run in other "
                                "environments; remove environment)")
        return
    if scenario.mirage_data is not None:
        raise RunSetupError("mirage_data: a real MIRAGE_DATA is not supported by `simval run` "
                            "yet; MIRAGE reads the synthetic kit (remove mirage_data)")
    if not scenario.effects.poisson:
        raise RunSetupError("effects.poisson: false is not possible with the MIRAGE backend "
                            "(MIRAGE always adds photon noise); remove it or set it true")


def calibration_context(scenario: Scenario, kit: Kit) -> str:
    """The kit context the pipeline runs with: the scenario's (or the kit's newest), or one
    derived from it by ``crds.kit.derive`` (made now if the kit does not hold it yet)."""

    cfg = scenario.crds.kit
    base = cfg.context or kit.context
    if cfg.derive is None:
        return base
    try:
        return derive_context(kit.layout, base, cfg.derive.changes())
    except ValueError as exc:
        raise RunSetupError(f"crds.kit.derive: {exc}") from exc


def crds_env(scenario: Scenario, kit: Kit) -> dict[str, str]:
    """CRDS environment of the calibration stages: the kit's context (the scenario's, or
    the kit's newest) or the user's real cache."""

    if scenario.crds.kit is not None:
        try:
            return dict(kit.crds_env(calibration_context(scenario, kit)))
        except FileNotFoundError as exc:
            raise RunSetupError(f"crds.kit.context: {exc} (make it with `simval kit "
                                "derive`)") from exc
    path = scenario.resolve_path(scenario.crds.path)
    return dict(CrdsSetup.real(path, scenario.crds.context).env)


def mirage_exposure(exposure: Exposure, scenario: Scenario):
    """The :class:`~simval.simulate.mirage_yaml.MirageExposure` of a plan exposure (pointing:
    see the module docstring)."""

    e, fx = exposure, scenario.effects
    m = MirageExposure(
        detector=e.detector, filter_name=e.filter_wheel, pupil=e.pupil, subarray=e.subarray,
        readpatt=e.readpatt, ngroups=e.ngroups, nints=e.nints, ra_deg=e.ra_ref_deg,
        dec_deg=e.dec_ref_deg, pa_v3_deg=e.pa_v3_deg, seed=e.seed, date_obs=e.date_obs,
        time_obs=e.time_obs, program=e.program, observation=e.observation, visit=e.visit,
        visit_group=e.visit_group, sequence=e.sequence, activity=e.activity,
        exposure=e.exposure,
        background_adu_s=background_adu_s(e.detector, e.filter_name, e.background_mjysr),
        cosmic_rays=fx.cosmic_rays.scale > 0, cosmic_ray_library=fx.cosmic_rays.library,
        cosmic_ray_scale=fx.cosmic_rays.scale, ipc=fx.ipc, crosstalk=fx.crosstalk,
        primary_dither_type=e.dither_pattern, primary_dither_total=e.primary_dither_total,
        primary_dither_position=e.primary_dither_position,
        subpixel_dither_type=e.subpixel_dither_type,
        subpixel_dither_total=e.subpixel_dither_total,
        subpixel_dither_position=e.subpixel_dither_position,
        x_offset_arcsec=e.x_offset_arcsec, y_offset_arcsec=e.y_offset_arcsec,
    )  # target_name stays MIRAGE's default: the raw data must not depend on the scenario name
    if m.base_name != e.base_name:  # both follow the DMS naming; a mismatch is a bug
        raise AssertionError(f"MIRAGE would name {e.base_name} {m.base_name}")
    return m


def kit_file_digests(kit: Kit, references: dict[str, Path], mexp) -> dict[str, str]:
    """sha256 (from the kit registry) of every kit file MIRAGE reads for ``mexp``.

    The reference directories (PSF library, wings, cosmic rays) count with the files MIRAGE
    picks from them, so a kit that grows for another filter does not re-run this exposure.
    """

    reg = Registry.load(kit.layout)
    root = kit.layout.root.resolve()

    def rel(path: Path) -> str:
        return Path(path).resolve().relative_to(root).as_posix()

    out: dict[str, str] = {}
    for key, path in sorted(references.items()):
        p = Path(path)
        if p.is_file():
            entry = reg.files.get(rel(p))
            out[key] = entry["sha256"] if entry else sha256_file(p)
    pattern = (f"nircam_{mexp.siaf_detector.lower()}_{mexp.filter_name.lower()}_"
               f"{mexp.pupil.lower()}_*")
    mrefs = MirageReferences.from_mapping(references, mirage_data=kit.mirage_data)
    cr_names = {p.name for p in cosmic_ray_files(mexp, mrefs)}
    for relpath, entry in sorted(reg.files.items()):
        name = relpath.rsplit("/", 1)[-1]
        if relpath.startswith(rel(kit.layout.psf_library)) and fnmatch.fnmatch(name, pattern):
            out[f"psf:{relpath}"] = entry["sha256"]
        elif relpath.startswith(rel(kit.layout.cosmic_rays)) and name in cr_names:
            out[f"cosmic_rays:{name}"] = entry["sha256"]
    return out


def _json(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def pipeline_environment(scenario: Scenario) -> dict[str, Any]:
    """Stage parameters that send the calibration to ``scenario.environment`` (the name and
    its resolved package versions, so a different environment is a different fingerprint);
    empty for simval's own jwst."""
    if not scenario.environment:
        return {}

    try:
        record = env_record(scenario.environment)
    except EnvError as exc:
        raise RunSetupError(f"environment: {exc}") from exc
    return {"env": record.name, "env_versions": dict(record.versions)}


def build_specs(plan: Plan, scenario: Scenario, kit: Kit, layout: RunLayout,
                run_id: str) -> list[StageSpec]:
    """Every dask-executed stage of the run, upstream before downstream: the calibration
    stages, then the evaluation (:func:`evaluation_specs`). A coronagraphy scenario has
    its own: :func:`simval.run.coron_graph.build_coron_specs`."""
    env = crds_env(scenario, kit)
    in_env = pipeline_environment(scenario)
    context = env.get("CRDS_CONTEXT")
    pipeline = _json(scenario.pipeline)
    run_dir = str(layout.root)
    specs: list[StageSpec] = []
    specs.append(_catalog_spec(plan, scenario, run_dir, run_id))
    simulate = (_miri_simulate_specs if plan.instrument == "MIRI"
                else _mirage_simulate_specs)(plan, scenario, kit, run_dir, run_id)
    detector1_steps = dict(pipeline.get("detector1", {}))
    if plan.instrument == "MIRI":  # emicorr is off by default in jwst; MIRI data need it
        detector1_steps["emicorr"] = {"skip": False, **detector1_steps.get("emicorr", {})}
    for e, sim in zip(plan.exposures, simulate, strict=True):
        det1 = StageSpec(
            stage_id=stage_id("detector1", e.base_name), kind="detector1", run_dir=run_dir,
            run_id=run_id, crds_context=context,
            params={"base_name": e.base_name, "pipeline": "calwebb_detector1",
                    "steps": detector1_steps, "crds_env": env, **in_env},
            uses={"uncal": (sim.stage_id, "uncal")})
        img2 = StageSpec(
            stage_id=stage_id("image2", e.base_name), kind="image2", run_dir=run_dir,
            run_id=run_id, crds_context=context,
            params={"base_name": e.base_name, "pipeline": "calwebb_image2",
                    "steps": pipeline.get("image2", {}), "crds_env": env, **in_env,
                    **_pointing_error(e)},
            uses={"rate": (det1.stage_id, "rate")})
        specs += [sim, det1, img2]
    for product in plan.products:
        members = list(product.members)
        specs.append(StageSpec(
            stage_id=stage_id("image3", product.name), kind="image3", run_dir=run_dir,
            run_id=run_id, crds_context=context,
            params={"product": _json(asdict(product)), "members": members,
                    "pipeline": "calwebb_image3", "steps": pipeline.get("image3", {}),
                    "recipe": scenario.background_recipe, "crds_env": env, **in_env,
                    **_abs_refcat(scenario)},
            uses={**{f"cal:{b}": (stage_id("image2", b), "cal") for b in members},
                  **({"stars": ("catalog", "stars")} if _abs_refcat(scenario) else {})}))
    specs += evaluation_specs(plan, layout, run_id, crds_context=context)
    return with_functions(specs)


def _mirage_simulate_specs(plan: Plan, scenario: Scenario, kit: Kit, run_dir: str,
                           run_id: str) -> list[StageSpec]:
    """One MIRAGE simulate stage per exposure.

    MIRAGE reads the kit's files named in its yaml, never a CRDS context: the context is
    left out of the simulation's parameters, so a context minted by another scenario on the
    same kit does not re-run this one's simulations."""
    kit_env = {k: v for k, v in kit.crds_env().items() if k != "CRDS_CONTEXT"}
    dark_frames = {d.subarray: d.nframes for d in plan.kit_spec().darks}
    realizations = plan.dark_realizations()
    specs = []
    for e in plan.exposures:
        mexp = mirage_exposure(e, scenario)
        refs = kit.mirage_references(e.detector, e.filter_name, e.subarray,
                                     correlated_noise=plan.correlated_noise,
                                     realization=realizations[e.base_name],
                                     nframes=dark_frames[e.subarray])
        specs.append(StageSpec(
            stage_id=stage_id("simulate", e.base_name), kind="simulate", run_dir=run_dir,
            run_id=run_id,
            params={"base_name": e.base_name, "band": e.filter_name,
                    "mirage_exposure": _json(asdict(mexp)),
                    "references": {k: str(v) for k, v in sorted(refs.items())},
                    "kit_files": kit_file_digests(kit, refs, mexp),
                    "mirage_data": str(kit.mirage_data), "crds_env": kit_env,
                    "margin_arcsec": EXPOSURE_MARGIN_ARCSEC, "timeout_s": None},
            uses={"stars": ("catalog", "stars"), "galaxies": ("catalog", "galaxies")}))
    return specs


def miri_exposure_params(e: Exposure, scenario: Scenario) -> dict[str, Any]:
    """The simulate stage's description of a MIRI exposure: DMS identifiers and start
    (:class:`~simval.simulate.miri_uncal.MiriExposure`), readout, pointing (the aperture
    reference point's RA/Dec and roll), sky, noise seed and effects."""
    from astropy.time import Time

    fx = scenario.effects
    exposure = {"filter_name": e.filter_name,
                "start_mjd": float(Time(e.start_utc, scale="utc").mjd),
                "program": e.program, "observation": e.observation, "visit": e.visit,
                "visit_group": e.visit_group, "sequence": e.sequence,
                "activity": e.activity, "exposure": e.exposure,
                "pattern_type": e.dither_pattern, "pattern_number": e.dither_position,
                "pattern_points": e.primary_dither_total,
                "offset_arcsec": [e.x_offset_arcsec, e.y_offset_arcsec]}
    seed = int(component_rng(e.seed, "miri-simulate", e.base_name).integers(2**31))
    return {"base_name": e.base_name, "band": e.filter_name, "exposure": exposure,
            "readout": {"subarray": e.subarray, "pattern": e.readpatt,
                        "ngroups": e.ngroups, "nints": e.nints},
            "pointing": [e.v2_ref_arcsec, e.v3_ref_arcsec, e.ra_ref_deg, e.dec_ref_deg,
                         e.roll_ref_deg],
            "sky_mjysr": e.background_mjysr, "seed": seed,
            "effects": {"poisson": fx.poisson, "cosmic_ray_scale": fx.cosmic_rays.scale}}


def _miri_simulate_specs(plan: Plan, scenario: Scenario, kit: Kit, run_dir: str,
                         run_id: str) -> list[StageSpec]:
    """One simval MIRI simulate stage per exposure: the kit files it reads (and their
    sha256 from the kit registry, so another filter added to the kit re-runs nothing)."""
    reg = Registry.load(kit.layout)
    root = kit.layout.root.resolve()
    extended = scenario.extended_emission
    emission = None
    if extended is not None:
        path = scenario.resolve_path(extended.file).resolve()
        emission = {"path": str(path), "sha256": sha256_file(path)}
    specs = []
    for e in plan.exposures:
        files = kit_files(kit, e.filter_name)
        digests = {k: (reg.files.get(Path(v).resolve().relative_to(root).as_posix()) or {})
                   .get("sha256") or sha256_file(Path(v)) for k, v in sorted(files.items())}
        specs.append(StageSpec(
            stage_id=stage_id("simulate", e.base_name), kind="simulate", run_dir=run_dir,
            run_id=run_id,
            params={**miri_exposure_params(e, scenario), "files": files,
                    "kit_files": digests, "detector_seed": kit.spec.seed,
                    "margin_arcsec": EXPOSURE_MARGIN_ARCSEC,
                    **({"extended": {**emission, "scale": extended.scale_for(e.filter_name)}}
                       if emission else {})},
            uses={"stars": ("catalog", "stars"), "galaxies": ("catalog", "galaxies")},
            func=F["simulate_miri"]))
    return specs


def _pointing_error(e: Exposure) -> dict[str, Any]:
    """image2's ``pointing_error_mas`` parameter: absent when the exposure has none, so
    the stage of an exposure without one keeps its fingerprint."""
    error = [e.pointing_error_ra_mas, e.pointing_error_dec_mas]
    return {"pointing_error_mas": error} if any(error) else {}


def _abs_refcat(scenario: Scenario) -> dict[str, Any]:
    """image3's ``abs_refcat`` parameter (scenario ``alignment.abs_refcat`` and the seed of
    its position errors), absent when the scenario has none."""
    align = scenario.alignment
    if align is None or align.abs_refcat is None:
        return {}
    return {"abs_refcat": {**_json(align.abs_refcat.model_dump()), "seed": scenario.seed}}


def with_functions(specs: list[StageSpec]) -> list[StageSpec]:
    """``specs`` with each one's stage function set from its kind
    (:data:`simval.run.stages.STAGE_FUNCTIONS`) where it has none."""

    return [s if s.func is not None else replace(s, func=STAGE_FUNCTIONS[s.kind])
            for s in specs]


def product_plan(plan: Plan, product: Product) -> dict[str, Any]:
    """The plan cut to one product and its exposures, without the scenario (so a new
    threshold, say, does not change what a truth or evaluation stage depends on)."""
    d = plan.to_dict()
    members = set(product.members)
    d.update(scenario={}, scenario_hash="", scenario_source="", tiles=[],
             exposures=[x for x in d["exposures"] if x["base_name"] in members],
             products=[x for x in d["products"] if x["name"] == product.name])
    return d


def evaluation_specs(plan: Plan, layout: RunLayout, run_id: str, *,
                     crds_context: str | None,
                     catalog_options: dict[str, Any] | None = None) -> list[StageSpec]:
    """The truth and evaluate stages of every product, then the ``metrics`` join.

    Their parameters hold only what decides their outputs: the product's part of the plan
    and the scenario's ``comparison`` settings (match radius, bright-star sample), never the
    thresholds, which are applied when ``metrics.json`` is read.
    """

    settings = settings_from_scenario(plan.scenario, catalog_options).to_params()
    run_dir = str(layout.root)
    specs: list[StageSpec] = []
    for product in plan.products:
        cut = product_plan(plan, product)
        image3 = stage_id("image3", product.name)
        uses: dict[str, tuple[str, str]] = {"stars": ("catalog", "stars"),
                                            "galaxies": ("catalog", "galaxies"),
                                            "i2d": (image3, "i2d"), "asn": (image3, "asn"),
                                            "background": (image3, "background")}
        optional = {"background"}
        for base in product.members:
            sim = stage_id("simulate", base)
            uses.update({f"cal:{base}": (stage_id("image2", base), "cal"),
                         f"seed:{base}": (sim, "seed_image"), f"yaml:{base}": (sim, "yaml"),
                         f"stars:{base}": (sim, "point_sources"),
                         f"galaxies:{base}": (sim, "galaxies")})
            optional |= {f"stars:{base}", f"galaxies:{base}", f"seed:{base}", f"yaml:{base}"}
        truth = StageSpec(stage_id=stage_id("truth", product.name), kind="truth",
                          run_dir=run_dir, run_id=run_id, params={"plan": cut}, uses=uses,
                          optional=frozenset(optional), func=F["truth"])
        evaluate = StageSpec(
            stage_id=stage_id("evaluate", product.name), kind="evaluate", run_dir=run_dir,
            run_id=run_id, params={"plan": cut, "settings": settings},
            uses={"truth": (truth.stage_id, "truth"),
                  "backgrounds": (truth.stage_id, "backgrounds"),
                  "truth_mosaic": (truth.stage_id, "truth_mosaic"),
                  "i2d": (image3, "i2d"), "catalog": (image3, "catalog"),
                  "asn": (image3, "asn"), "segmentation": (image3, "segmentation"),
                  # the exposures' WCS and DQ: where each hole lies and why, per detector
                  **{f"cal:{b}": (stage_id("image2", b), "cal") for b in product.members},
                  # ramp_fit's Poisson variance and the simulator's gain (gain_ratio)
                  **{f"rate:{b}": (stage_id("detector1", b), "rate") for b in product.members},
                  **{f"uncal:{b}": (stage_id("simulate", b), "uncal")
                     for b in product.members}},
            optional=frozenset({"truth_mosaic", "segmentation",
                                *(f"{k}:{b}" for k in ("rate", "uncal")
                                  for b in product.members)}),
            func=F["evaluate"])
        specs += [truth, evaluate]
    specs.append(StageSpec(
        stage_id="metrics", kind="metrics", run_dir=run_dir, run_id=run_id,
        params={"scenario_name": plan.scenario_name, "scenario_hash": plan.scenario_hash,
                "crds_context": crds_context},
        uses={f"metrics:{p.name}": (stage_id("evaluate", p.name), "metrics")
              for p in plan.products},
        func=F["metrics"]))
    return specs


def _catalog_spec(plan: Plan, scenario: Scenario, run_dir: str, run_id: str) -> StageSpec:
    """The catalog stage: :func:`simval.catalogs.catalog_spec` plus the footprint (so a new
    pointing or dither is a new catalog)."""

    params, files = catalog_spec(scenario, plan)
    params["footprint"] = [[e.aperture, e.ra_ref_deg, e.dec_ref_deg, e.roll_ref_deg]
                           for e in plan.exposures]
    params["field_centre"] = [plan.ra_deg, plan.dec_deg]
    return StageSpec(stage_id="catalog", kind="catalog", run_dir=run_dir, params=params,
                     files=files, run_id=run_id)
