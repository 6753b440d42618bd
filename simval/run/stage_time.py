"""How long each stage kind is expected to take, and the order that follows from it (s).

A linear model per stage kind, ``a + b * work``, fitted to measured stage records (jwst 3.0,
MIRAGE 2.5, 2-core / 24 GB machine kind, 2026-12-04; seconds):

============  ==============================  =====================================
stage         SUB400P (160 000 px)            FULL (4.19 Mpx)
============  ==============================  =====================================
simulate      4.5 s at 20 frames (BRIGHT2x10)  57.8 s at 25 frames (SHALLOW4 x 5)
detector1     4.9 s at 10 groups               13.8 s at 5 groups
image2        1.8 s                            8.7 s
image3        2.8 s for 4 inputs               15 s for 2 inputs
============  ==============================  =====================================

(FULL: means over the 40 exposures of the COSMOS-Web-like block's 1-visit slice, 2 workers.)
The work is pixels x frames read (simulate), pixels x groups (detector1), pixels (image2)
and input pixels (image3); truth and evaluate are charged per input pixel too.
``simval plan --cost`` sums these (:mod:`simval.cost`); the executor orders the stages by
them (:func:`critical_path_priorities`).

Order: Dask runs, among the stages ready on a worker, the one with the highest
``priority``. simval gives each stage the expected time of the longest chain of stages from
its start to the end of the run (its own time plus its slowest downstream chain; the
"upward rank" of list scheduling). The exposures that feed the largest mosaic then go
first, so that mosaic's calwebb_image3 starts while the other worker still calibrates the
smaller filters' exposures, instead of running alone at the end.
``$SIMVAL_STAGE_ORDER=submission`` gives every stage priority 0 (Dask's own order, as
before: for comparisons in ``benchmarks/by_hand_baseline.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from simval.run.records import StageSpec
from simval.run.stage_memory import Geometry, stage_geometries

#: (a seconds, b seconds per unit of work) by stage kind; module docstring.
TIME_MODEL: dict[str, tuple[float, float]] = {
    "simulate": (2.85, 0.523e-6),   # per pixel x frame read
    "detector1": (4.4, 0.45e-6),    # per pixel x group
    "image2": (1.5, 1.72e-6),       # per pixel
    "image3": (1.8, 1.57e-6),       # per input pixel
    "truth": (1.0, 0.5e-6),         # per input pixel
    "evaluate": (1.0, 0.3e-6),      # per input pixel
}
#: Expected seconds of a stage kind without a model (catalog, metrics, ...).
OTHER_SECONDS = 1.0
#: Environment variable that picks the order (module docstring).
ORDER_ENV = "SIMVAL_STAGE_ORDER"


def work(kind: str, inputs: Sequence[Geometry]) -> float:
    """The model's unit of work for ``kind`` over the exposures it reads."""
    if kind == "simulate":
        return float(sum(g.pixels * g.frames for g in inputs))
    if kind == "detector1":
        return float(sum(g.pixels * g.groups for g in inputs))
    return float(sum(g.pixels for g in inputs))


def model_seconds(kind: str, amount: float) -> float:
    """Expected seconds of one ``kind`` stage doing ``amount`` of work."""
    if kind not in TIME_MODEL:
        return OTHER_SECONDS
    a, b = TIME_MODEL[kind]
    return a + b * amount


def declared_seconds(specs: Sequence[StageSpec]) -> dict[str, float]:
    """Expected seconds of every stage (``stage_id -> s``) from the exposures it reads."""
    geometries = stage_geometries(specs)
    return {s.stage_id: model_seconds(s.kind, work(s.kind, geometries[s.stage_id]))
            for s in specs}


def critical_path_priorities(specs: Sequence[StageSpec],
                             seconds: Mapping[str, float] | None = None) -> dict[str, int]:
    """Each stage's Dask priority: the expected seconds (x 10, rounded) of the longest chain
    from its start to the end of the run (module docstring). ``specs`` upstream before
    downstream; ``seconds``: :func:`declared_seconds` by default."""
    if os.environ.get(ORDER_ENV, "critical-path") == "submission":
        return {s.stage_id: 0 for s in specs}
    seconds = seconds if seconds is not None else declared_seconds(specs)
    downstream: dict[str, list[str]] = {s.stage_id: [] for s in specs}
    for s in specs:
        for up in s.upstream:
            if up in downstream:
                downstream[up].append(s.stage_id)
    rank: dict[str, float] = {}
    for s in reversed(specs):
        rank[s.stage_id] = seconds.get(s.stage_id, OTHER_SECONDS) + max(
            (rank[d] for d in downstream[s.stage_id]), default=0.0)
    return {k: round(10 * v) for k, v in rank.items()}
