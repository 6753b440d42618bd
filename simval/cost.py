"""What a plan will cost before it runs: CPU hours, peak memory per stage kind, disk.

``simval plan --cost SCENARIO`` prints it. Time per stage is the linear model of
:mod:`simval.run.stage_time` (fitted to measured stage records; the executor orders stages
by the same numbers), memory per stage comes from the scheduler's declarations
(:mod:`simval.run.stage_memory`), disk from the array sizes of the files each stage writes.
The model is meant for planning (factor ~1.5), not for promises: noisy machines and other
pipeline settings (outlier_detection, tweakreg) move it.

Coronagraphy (:data:`CORON_TIME_MODEL`, measured on ``coron_quickstart``: 7 SUB320A335R
exposures of MEDIUM8 x 10 x 3, 4 wavelengths, 2 workers, 2026-12-05): simulate 0.75 s per
exposure plus ~0.85 s per occulted PSF poppy computes (4 wavelengths; an empty PSF cache
needs the star and every companion at each roll, and each reference position), image2
1.6 s, coron3 5 s + 0.45 s per integration of every member, evaluate 3 s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simval.plan import Plan
from simval.plan_coron import coron_roles
from simval.run.coron_graph import MEMORY_MB as CORON_MEMORY_MB
from simval.run.records import StageSpec
from simval.run.stage_memory import DECLARATIONS, geometry
from simval.run.stage_time import model_seconds, work

#: Bytes written per pixel, from the files of a FULL SHALLOW4 x 5 exposure (2026-12-05):
#: uncal int16 per group plus a zero frame per integration (50.4 MB); the final seed image
#: with its segmentation map (16 B/px, 67.1 MB); rate and, with several integrations,
#: rateints per integration (SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE: 20 B/px, 81 MB each);
#: cal (those + VAR_FLAT, AREA: 28 B/px, 117.6 MB) and image2's own per-exposure i2d
#: (28 B/px, 118.5 MB) unless the scenario skips image2's resample; mosaic and truth mosaic
#: per mosaic pixel (SCI, ERR, CON, WHT, 3 variances + truth: 36).
UNCAL_BYTES_PER_PIXEL_GROUP = 2
SEED_BYTES_PER_PIXEL = 16
RATE_BYTES_PER_PIXEL = 20
CAL_BYTES_PER_PIXEL = 28
I2D_BYTES_PER_PIXEL = 28
MOSAIC_BYTES_PER_PIXEL = 36
#: MIRAGE's linearized darks in the kit: float32 per pixel per frame, per realization.
DARK_BYTES_PER_PIXEL_FRAME = 4


@dataclass
class KindCost:
    """Cost of all stages of one kind."""

    count: int = 0
    cpu_s: float = 0.0
    peak_mb: float = 0.0
    disk_bytes: float = 0.0


@dataclass
class PlanCost:
    """The estimate for a plan: per stage kind, and the kit's darks."""

    kinds: dict[str, KindCost] = field(default_factory=dict)
    kit_dark_bytes: float = 0.0

    @property
    def cpu_hours(self) -> float:
        return sum(k.cpu_s for k in self.kinds.values()) / 3600.0

    @property
    def disk_gb(self) -> float:
        return (sum(k.disk_bytes for k in self.kinds.values()) + self.kit_dark_bytes) / 1e9

    @property
    def peak_mb(self) -> float:
        return max((k.peak_mb for k in self.kinds.values()), default=0.0)

    def wall_hours(self, cores: int, memory_gb: float) -> float:
        """Wall time on one machine: each stage kind's CPU time shared by as many workers as
        the cores and that kind's peak memory allow (perfect packing; a lower bound)."""
        total = 0.0
        for k in self.kinds.values():
            workers = max(1, min(cores, int(memory_gb * 1024 // max(k.peak_mb, 1.0))))
            total += k.cpu_s / workers
        return total / 3600.0


#: A MIRI DARK plus RESET reference per pixel and group: data, err and dq, 4 bytes each.
MIRI_REFERENCE_BYTES_PER_PIXEL_GROUP = 2 * 3 * 4


#: Coronagraphy: seconds (module docstring).
CORON_TIME_MODEL = {"simulate": 0.75, "psf_per_wavelength": 0.21, "image2": 1.6,
                    "coron3": 5.0, "coron3_per_integration": 0.45, "evaluate": 3.0}
#: Bytes per pixel and integration of a coronagraphic rateints (SCI, ERR, DQ, two
#: variances), calints (those + VAR_FLAT, AREA) and psfsub.
CORON_BYTES_PER_PIXEL_INT = {"rateints": 20, "calints": 28, "psfsub": 20}


def _coron_estimate(plan: Plan) -> PlanCost:
    """:func:`estimate` of a coronagraphy plan (module docstring), with an empty PSF cache."""
    cost = PlanCost()
    c = plan.coronagraphy or {}
    waves = int((c.get("optics") or {}).get("wavelengths", 4))
    roles = coron_roles(plan)
    psf_s = CORON_TIME_MODEL["psf_per_wavelength"] * waves
    frames = 0
    for e in plan.exposures:
        px, nints = e.xsize * e.ysize, int(e.nints)
        frames += nints
        psfs = 1 + (len(c.get("companions") or []) if roles[e.base_name] == "science" else 0)
        _add(cost, "simulate", CORON_TIME_MODEL["simulate"] + psfs * psf_s,
             CORON_MEMORY_MB["simulate"],
             (CORON_BYTES_PER_PIXEL_INT["rateints"] * nints + 4) * px)
        _add(cost, "image2", CORON_TIME_MODEL["image2"], CORON_MEMORY_MB["image2"],
             CORON_BYTES_PER_PIXEL_INT["calints"] * nints * px)
    for product in plan.products:
        first = plan.exposures[0]
        px = first.xsize * first.ysize
        science = [b for b in product.members if roles[b] == "science"]
        refs = len(product.members) - len(science)
        disk = sum(CORON_BYTES_PER_PIXEL_INT["psfsub"] * first.nints * px * (1 + refs)
                   for _ in science) + MOSAIC_BYTES_PER_PIXEL * 2 * px
        _add(cost, "coron3", CORON_TIME_MODEL["coron3"]
             + CORON_TIME_MODEL["coron3_per_integration"] * frames,
             CORON_MEMORY_MB["coron3"], disk)
        _add(cost, "evaluate", CORON_TIME_MODEL["evaluate"], CORON_MEMORY_MB["evaluate"], 0.0)
    return cost


def _add(cost: PlanCost, kind: str, seconds: float, peak_mb: float, disk: float) -> None:
    k = cost.kinds.setdefault(kind, KindCost())
    k.count += 1
    k.cpu_s += seconds
    k.peak_mb = max(k.peak_mb, peak_mb)
    k.disk_bytes += disk


def _time(kind: str, inputs: list) -> float:
    return model_seconds(kind, work(kind, inputs))


def _spec(kind: str, params: dict) -> StageSpec:
    return StageSpec(stage_id=f"{kind}.estimate", kind=kind, run_dir="", params=params)


def estimate(plan: Plan) -> PlanCost:
    """The :class:`PlanCost` of running ``plan`` (module docstring)."""
    if plan.coronagraphy is not None:
        return _coron_estimate(plan)
    cost = PlanCost()
    pipeline = plan.scenario.get("pipeline") or {}
    steps3 = pipeline.get("image3") or {}
    image2_i2d = not ((pipeline.get("image2") or {}).get("resample") or {}).get("skip", False)
    geo = {}
    for e in plan.exposures:
        g = geometry(vars(e))
        geo[e.base_name] = g
        nints = int(e.nints)
        _add(cost, "simulate", _time("simulate", [g]),
             DECLARATIONS["simulate"](_spec("simulate", {}), [g]),
             UNCAL_BYTES_PER_PIXEL_GROUP * g.pixels * (g.groups + nints)
             + SEED_BYTES_PER_PIXEL * g.pixels)
        _add(cost, "detector1", _time("detector1", [g]),
             DECLARATIONS["detector1"](_spec("detector1", {}), [g]),
             RATE_BYTES_PER_PIXEL * g.pixels * (1 + (nints if nints > 1 else 0)))
        _add(cost, "image2", _time("image2", [g]),
             DECLARATIONS["image2"](_spec("image2", {}), [g]),
             (CAL_BYTES_PER_PIXEL + (I2D_BYTES_PER_PIXEL if image2_i2d else 0)) * g.pixels)
    for product in plan.products:
        inputs = [geo[b] for b in product.members]
        tiles = {g.tile: g.pixels for g in inputs}
        mosaic = 1.25 * sum(tiles.values())
        spec = _spec("image3", {"members": list(product.members), "steps": steps3})
        _add(cost, "image3", _time("image3", inputs), DECLARATIONS["image3"](spec, inputs),
             MOSAIC_BYTES_PER_PIXEL * mosaic)
        for kind in ("truth", "evaluate"):
            _add(cost, kind, _time(kind, inputs),
                 DECLARATIONS[kind](_spec(kind, {}), inputs), 0.0)
    spec = plan.kit_spec()
    for need in getattr(spec, "darks", ()):
        g = geometry({"subarray": need.subarray, "ngroups": 1, "nframes": need.nframes,
                      "groupgap": 0})
        cost.kit_dark_bytes += (DARK_BYTES_PER_PIXEL_FRAME * g.pixels * need.nframes
                                * need.realizations * len(spec.detectors))
    for r in getattr(spec, "readouts", ()):  # MIRI: DARK and RESET, 4-D data, err and dq
        g = geometry({"subarray": r.subarray, "ngroups": r.ngroups, "nints": r.nints,
                      "nframes": 1, "groupgap": 0, "detector": "MIRIMAGE"})
        cost.kit_dark_bytes += MIRI_REFERENCE_BYTES_PER_PIXEL_GROUP * g.pixels * g.frames
    return cost


def format_duration(seconds: float) -> str:
    """``12.5 min`` below an hour, else ``3.2 h``."""
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _size(nbytes: float) -> str:
    return f"{nbytes / 1e6:.0f} MB" if nbytes < 1e9 else f"{nbytes / 1e9:.1f} GB"


def cost_rows(cost: PlanCost) -> Iterable[tuple[str, str, str, str, str]]:
    """Rows (stage, count, CPU time, peak memory, disk) for a table, then the totals."""
    for kind, k in cost.kinds.items():
        yield (kind, str(k.count), format_duration(k.cpu_s), f"{k.peak_mb / 1024:.1f} GiB",
               _size(k.disk_bytes))
    yield ("kit darks", "", "", "", _size(cost.kit_dark_bytes))
    yield ("total", "", format_duration(cost.cpu_hours * 3600), f"{cost.peak_mb / 1024:.1f} GiB",
           _size(cost.disk_gb * 1e9))


__all__ = ["KindCost", "PlanCost", "cost_rows", "estimate", "format_duration"]
