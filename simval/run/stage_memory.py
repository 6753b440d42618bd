"""How much memory each stage kind declares, for the scheduler (bytes).

A declaration is the stage's expected peak resident set size, measured the way stage
records measure it (``peak_rss_mb``: the Dask worker process and its children, MIRAGE's
child included; :mod:`simval.run.resources`). The executor submits every stage with
``resources={"MEMORY": declared}`` and each worker advertises its share of memory, so a
worker never starts stages whose declarations exceed its share; the default number of
local workers is what the largest declaration of the run leaves room for
(:func:`simval.run.executor.default_workers`).

Where the numbers come from (stage records of real runs on the 2-core, 24 GB machine
kind, jwst 3.0, MIRAGE 2.5, measured 2026-12-04; MiB):

================  ===========================  =====================  ====================
stage             SUB400P                      SUB400P                FULL (2048 x 2048)
                  BRIGHT2 x 10 (quickstart,    SHALLOW4 x 5           SHALLOW4 x 5
                  8 exposures, 2 workers)      (1 exposure)           (1 exposure)
================  ===========================  =====================  ====================
simulate          2060-2282 (MIRAGE 1878)      2058 (MIRAGE 1588)     5022 (MIRAGE 4554)
detector1         484-547                      724                    1948
image2            463-514                      710                    1386
image3            493 (4 inputs)               679 (1 input)          1331 (1 input)
truth             506-508                      694                    1477
evaluate          479-481                      680                    1034
metrics           463                          667                    668
catalog           213                          216                    212
================  ===========================  =====================  ====================

A worker that has imported jwst and MIRAGE's helpers holds ~670 MiB before any stage
(the ``metrics`` stage, which does almost nothing, reads 667); the models below add to
that :data:`WORKER_BASE_MB` what grows with the data, with slopes fitted to the SUB400P
and FULL measurements and rounded up:

- ``simulate``: 2300 MiB + 29.4 bytes per pixel per frame read (MIRAGE holds the
  linearized dark's frames; ``ngroups * (nframes + groupgap) * nints``): FULL SHALLOW4 x 5
  (25 frames) -> 5240 MiB against 5022 measured; SUB400P BRIGHT2 x 10 -> 2390 against 2282.
- ``detector1``: base + 64 bytes per pixel per group (the ramp and its jump/fit arrays):
  FULL x 5 groups -> 1980 against 1948; SUB400P x 5 -> 749 against 724.
- ``image2``: base + 175 bytes per pixel: FULL -> 1400 against 1386.
- ``image3``: base + 28 bytes per input pixel (jwst keeps the inputs in memory,
  ``in_memory: true``) + 120 bytes per mosaic pixel (output arrays and drizzle's
  temporaries) + 8 bytes per mosaic pixel per input when outlier_detection runs (one
  drizzled image per input on the mosaic grid). The mosaic's pixels are estimated as
  1.25 x the pixels of one exposure per distinct (visit, detector) among its inputs
  (dithers overlap; visits and detectors tile): 1 FULL input (outlier_detection skipped)
  -> 1412 against 1331.
- ``truth``: base + 175 bytes per mosaic pixel (the noiseless truth mosaic on the i2d grid
  and the seed images): 16 FULL inputs on 4 detectors -> 4200 against 4075 measured;
  1 FULL input -> 1620 against 1477.
- ``evaluate``: base + 100 bytes per mosaic pixel (with the footprint and aperture-noise
  groups): 16 FULL inputs on 4 detectors (the COSMOS-Web-like block's 1-visit slice) ->
  2700 against 2777 measured; 1 FULL input -> 1200 against 1034.
- ``catalog`` 300 MiB, ``metrics`` :data:`WORKER_BASE_MB`; any other kind
  :data:`WORKER_BASE_MB`.

The full-frame numbers of the issue that asked for this (a FULL NRCB1 + NRCB5 run: MIRAGE
~5 GB peak, total peak 5 GB) agree. A :class:`~simval.run.records.StageSpec` with
``memory_mb`` set declares that instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simval.instruments import miri
from simval.instruments.nircam import FULL_SIZE, read_patterns
from simval.run.records import StageSpec

MIB = 2**20
#: A Dask worker process with jwst imported, before any stage (MiB; measured 667).
WORKER_BASE_MB = 700.0
#: MIRAGE's child process and the fork server beside the worker, small data (MiB).
SIMULATE_BASE_MB = 2300.0
#: MIRAGE's bytes per pixel per frame read.
SIMULATE_BYTES_PER_PIXEL_FRAME = 29.4
#: calwebb_detector1's bytes per pixel per group.
DETECTOR1_BYTES_PER_PIXEL_GROUP = 64.0
#: calwebb_image2's bytes per pixel.
IMAGE2_BYTES_PER_PIXEL = 175.0
#: calwebb_image3's bytes per input pixel (inputs held in memory).
IMAGE3_BYTES_PER_INPUT_PIXEL = 28.0
#: calwebb_image3's bytes per mosaic pixel (output arrays, drizzle temporaries).
IMAGE3_BYTES_PER_MOSAIC_PIXEL = 120.0
#: outlier_detection's bytes per mosaic pixel per input (drizzled data + weight, float32).
OUTLIER_BYTES_PER_MOSAIC_PIXEL_INPUT = 8.0
#: The truth stage's bytes per mosaic pixel.
TRUTH_BYTES_PER_MOSAIC_PIXEL = 175.0
#: The evaluate stage's bytes per mosaic pixel.
EVALUATE_BYTES_PER_MOSAIC_PIXEL = 100.0
#: simval's MIRI simulator: base (MiB) and bytes per pixel per frame (fitted to FULL x 60
#: frames, 3.8 GiB, and FULL x 106 groups x 2 integrations, 10.8 GiB: docs/miri.md).
MIRI_SIMULATE_BASE_MB = 1050.0
MIRI_SIMULATE_BYTES_PER_PIXEL_FRAME = 47.0
#: calwebb_detector1 on MIRI ramps: base (MiB) and bytes per pixel per group (fitted to
#: FULL x 60, 2.2 GiB, and FULL x 212, 5.5 GiB).
MIRI_DETECTOR1_BASE_MB = 920.0
MIRI_DETECTOR1_BYTES_PER_PIXEL_GROUP = 22.0
#: The catalog stage (MiB; measured 212-216 for the quickstart's field).
CATALOG_MB = 300.0
#: Mosaic pixels per (visit, detector) tile, in units of one exposure's pixels.
MOSAIC_MARGIN = 1.25

_SUBARRAY_SIZE = re.compile(r"^SUB(\d+)[A-Z]*$")


@dataclass(frozen=True)
class Geometry:
    """What decides an exposure's memory: ``pixels`` per frame, ``frames`` read and
    ``groups`` kept (over all integrations), and its ``tile`` (visit, detector)."""

    pixels: int
    frames: int
    groups: int
    tile: tuple[Any, str]


def subarray_pixels(subarray: str, detector: str = "") -> int:
    """Pixels of an imaging subarray: the MIRI imager's (``MIRIMAGE``: ``FULL`` 1032 x
    1024, ``SUB256`` 256 x 256, ...), else NIRCam's (``FULL``: 2048 x 2048; ``SUB400P``:
    400 x 400; anything else is taken as full frame, the safe side)."""
    if detector.upper() == miri.DETECTOR.name and subarray.upper() in miri.SUBARRAYS:
        sub = miri.get_subarray(subarray)
        return sub.xsize * sub.ysize
    match = _SUBARRAY_SIZE.match(subarray.upper())
    side = int(match.group(1)) if match else FULL_SIZE
    return min(side, FULL_SIZE) ** 2


def geometry(exposure: Mapping[str, Any]) -> Geometry:
    """The :class:`Geometry` of a MIRAGE exposure (``mirage_exposure`` parameters) or a
    plan exposure: ``subarray``, ``readpatt``, ``ngroups``, ``nints`` (and ``nframes``,
    ``groupgap`` when given, else from the readout pattern table)."""
    ngroups = int(exposure.get("ngroups", 1))
    nints = int(exposure.get("nints", 1))
    if "nframes" in exposure and "groupgap" in exposure:
        per_group = int(exposure["nframes"]) + int(exposure["groupgap"])
    else:
        pattern = read_patterns().get(str(exposure.get("readpatt", "")).upper())
        per_group = pattern.nframes + pattern.groupgap if pattern else 20  # DEEP8: 8 + 12
    tile = (exposure.get("visit"), str(exposure.get("detector", "")))
    return Geometry(subarray_pixels(str(exposure.get("subarray", "FULL")),
                                    str(exposure.get("detector", ""))),
                    ngroups * per_group * nints, ngroups * nints, tile)


def _mb(base_mb: float, extra_bytes: float) -> float:
    return base_mb + extra_bytes / MIB


def _mosaic_pixels(inputs: Sequence[Geometry]) -> float:
    tiles: dict[Any, int] = {}
    for g in inputs:
        tiles[g.tile] = max(tiles.get(g.tile, 0), g.pixels)
    return MOSAIC_MARGIN * sum(tiles.values())


def _is_miri(g: Geometry) -> bool:
    return str(g.tile[1]).upper() == miri.DETECTOR.name


def _simulate(spec: StageSpec, inputs: Sequence[Geometry]) -> float:
    g = max(inputs, key=lambda x: x.pixels * x.frames, default=None)
    if g is None:
        return SIMULATE_BASE_MB
    if _is_miri(g):
        return _mb(MIRI_SIMULATE_BASE_MB,
                   MIRI_SIMULATE_BYTES_PER_PIXEL_FRAME * g.pixels * g.frames)
    return _mb(SIMULATE_BASE_MB, SIMULATE_BYTES_PER_PIXEL_FRAME * g.pixels * g.frames)


def _detector1(spec: StageSpec, inputs: Sequence[Geometry]) -> float:
    g = max(inputs, key=lambda x: x.pixels * x.groups, default=None)
    if g is None:
        return _mb(WORKER_BASE_MB, DETECTOR1_BYTES_PER_PIXEL_GROUP * FULL_SIZE**2 * 10)
    if _is_miri(g):
        return _mb(MIRI_DETECTOR1_BASE_MB,
                   MIRI_DETECTOR1_BYTES_PER_PIXEL_GROUP * g.pixels * g.groups)
    return _mb(WORKER_BASE_MB, DETECTOR1_BYTES_PER_PIXEL_GROUP * g.pixels * g.groups)


def _image2(spec: StageSpec, inputs: Sequence[Geometry]) -> float:
    most = max((g.pixels for g in inputs), default=FULL_SIZE**2)
    return _mb(WORKER_BASE_MB, IMAGE2_BYTES_PER_PIXEL * most)


def _outlier_detection_runs(params: Mapping[str, Any]) -> bool:
    steps = params.get("steps") or {}
    od = steps.get("outlier_detection") or {}
    return not (isinstance(od, Mapping) and od.get("skip"))


def _image3(spec: StageSpec, inputs: Sequence[Geometry]) -> float:
    n = max(len(inputs), len(spec.params.get("members", ())), 1)
    if not inputs:
        inputs = [Geometry(FULL_SIZE**2, 0, 0, (i, "")) for i in range(n)]
    mosaic = _mosaic_pixels(inputs)
    extra = IMAGE3_BYTES_PER_MOSAIC_PIXEL * mosaic
    in_memory = (spec.params.get("steps") or {}).get("in_memory", True) is not False
    if in_memory:
        extra += IMAGE3_BYTES_PER_INPUT_PIXEL * sum(g.pixels for g in inputs)
    if _outlier_detection_runs(spec.params):
        extra += OUTLIER_BYTES_PER_MOSAIC_PIXEL_INPUT * mosaic * n
    return _mb(WORKER_BASE_MB, extra)


def _per_mosaic_pixel(bytes_per_pixel: float) -> Callable[[StageSpec, Sequence[Geometry]],
                                                         float]:
    def declare(spec: StageSpec, inputs: Sequence[Geometry]) -> float:
        if not inputs:
            return WORKER_BASE_MB
        return _mb(WORKER_BASE_MB, bytes_per_pixel * _mosaic_pixels(inputs))
    return declare


#: Stage kind -> function of (spec, geometries of the exposures it reads) -> MiB.
DECLARATIONS: dict[str, Callable[[StageSpec, Sequence[Geometry]], float]] = {
    "catalog": lambda spec, inputs: CATALOG_MB,
    "simulate": _simulate,
    "detector1": _detector1,
    "image2": _image2,
    "image3": _image3,
    "truth": _per_mosaic_pixel(TRUTH_BYTES_PER_MOSAIC_PIXEL),
    "evaluate": _per_mosaic_pixel(EVALUATE_BYTES_PER_MOSAIC_PIXEL),
    "metrics": lambda spec, inputs: WORKER_BASE_MB,
}


def _own_exposures(spec: StageSpec) -> dict[str, Mapping[str, Any]]:
    """Exposures a spec's parameters describe: MIRAGE's (simulate) or the plan's cut
    (truth, evaluate), by base name."""
    p = spec.params
    if isinstance(p.get("mirage_exposure"), Mapping):
        return {str(p.get("base_name", spec.stage_id)): p["mirage_exposure"]}
    readout = p.get("readout")
    if spec.kind == "simulate" and isinstance(readout, Mapping) and "subarray" in readout:
        return {str(p.get("base_name", spec.stage_id)):  # simval's MIRI simulator
                {**readout, "nframes": 1, "groupgap": 0, "detector": miri.DETECTOR.name}}
    plan = p.get("plan")
    if isinstance(plan, Mapping):
        return {str(e.get("base_name", i)): e
                for i, e in enumerate(plan.get("exposures") or ()) if isinstance(e, Mapping)}
    return {}


def stage_geometries(specs: Sequence[StageSpec]) -> dict[str, list[Geometry]]:
    """The :class:`Geometry` of the exposures each stage reads (``stage_id -> list``).

    A stage's exposures are those its own parameters describe or, failing that, those of
    the stages upstream of it within ``specs`` (detector1 -> its simulate; image3 -> its
    members' image2 -> detector1 -> simulate).
    """
    by_id = {s.stage_id: s for s in specs}
    reach: dict[str, dict[str, Mapping[str, Any]]] = {}

    def exposures(stage: str) -> dict[str, Mapping[str, Any]]:
        if stage in reach:
            return reach[stage]
        spec = by_id.get(stage)
        found: dict[str, Mapping[str, Any]] = {}
        if spec is not None:
            found = _own_exposures(spec)
            if not found:
                for up in spec.upstream:
                    found.update(exposures(up))
        reach[stage] = found
        return found

    return {s.stage_id: [geometry(e) for e in exposures(s.stage_id).values()] for s in specs}


def declared_memory(specs: Sequence[StageSpec]) -> dict[str, int]:
    """Declared peak memory of every stage, bytes (``stage_id -> bytes``), from the
    exposures it reads (:func:`stage_geometries`)."""
    geometries = stage_geometries(specs)
    out: dict[str, int] = {}
    for spec in specs:
        if spec.memory_mb is not None:
            mb = float(spec.memory_mb)
        else:
            declare = DECLARATIONS.get(spec.kind, lambda s, i: WORKER_BASE_MB)
            mb = declare(spec, geometries[spec.stage_id])
        out[spec.stage_id] = round(mb * MIB)
    return out


@dataclass(frozen=True)
class MemoryProfile:
    """What sizes a run's workers (bytes): its ``largest`` declaration, the ``bulk`` one
    (the largest declaration of the kind with the most stages: the per-exposure
    simulations of an imaging run) and the ``smallest``."""

    largest: int
    bulk: int
    smallest: int

    @classmethod
    def of(cls, specs: Sequence[StageSpec],
           declared: Mapping[str, int] | None = None) -> MemoryProfile:
        """The profile of ``specs`` (declarations: :func:`declared_memory` by default)."""
        declared = declared if declared is not None else declared_memory(specs)
        by_kind: dict[str, list[int]] = {}
        for spec in specs:
            by_kind.setdefault(spec.kind, []).append(int(declared[spec.stage_id]))
        if not by_kind:
            return cls(0, 0, 0)
        bulk_kind = max(by_kind, key=lambda k: (len(by_kind[k]), max(by_kind[k])))
        values = [v for vs in by_kind.values() for v in vs]
        return cls(max(values), max(by_kind[bulk_kind]), min(values))

    @classmethod
    def uniform(cls, nbytes: float) -> MemoryProfile:
        """Every stage declaring ``nbytes``."""
        return cls(int(nbytes), int(nbytes), int(nbytes))
