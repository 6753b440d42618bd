"""The order stages run in: each stage's Dask priority is the expected time of the longest
chain from it to the end of the run, so the largest mosaic's inputs go first and Dask
follows it on a worker."""

from __future__ import annotations

import json
import sys
import time

import pytest

from simval.layout import RunLayout
from simval.run.records import COMPLETE, StageResult, StageSpec
from simval.run.stage_time import critical_path_priorities, declared_seconds, model_seconds

GIB = 2**30


def _stage(sid: str, kind: str, *upstream: str, **params) -> StageSpec:
    return StageSpec(sid, kind, "/nonexistent", params=params,
                     uses={f"in{i}": (u, "out") for i, u in enumerate(upstream)})


def test_priority_is_the_longest_chain_to_the_end():
    """root -> a -> c and root -> b, with 1, 2, 10 and 3 s: c 3, a 5, b 10, root 1 + 10."""
    specs = [_stage("root", "x"), _stage("a", "x", "root"), _stage("b", "x", "root"),
             _stage("c", "x", "a")]
    seconds = {"root": 1.0, "a": 2.0, "b": 10.0, "c": 3.0}
    assert critical_path_priorities(specs, seconds) == {
        "c": 30, "a": 50, "b": 100, "root": 110}


def _exposure(base: str, detector: str) -> dict:
    return {"detector": detector, "subarray": "FULL", "readpatt": "SHALLOW4", "ngroups": 5,
            "nints": 1, "visit": 1, "base_name": base}


def _filter_chain(product: str, exposures: list[dict]) -> list[StageSpec]:
    """simulate -> detector1 -> image2 per exposure, then image3, truth and evaluate, as
    build_specs wires them (the parameters the models read)."""
    specs: list[StageSpec] = []
    for e in exposures:
        b = e["base_name"]
        specs += [_stage(f"simulate.{b}", "simulate", base_name=b, mirage_exposure=e),
                  _stage(f"detector1.{b}", "detector1", f"simulate.{b}"),
                  _stage(f"image2.{b}", "image2", f"detector1.{b}")]
    members = [e["base_name"] for e in exposures]
    specs.append(_stage(f"image3.{product}", "image3", *(f"image2.{b}" for b in members),
                        members=members))
    plan = {"exposures": exposures}
    specs.append(_stage(f"truth.{product}", "truth", f"image3.{product}", plan=plan))
    specs.append(_stage(f"evaluate.{product}", "evaluate", f"truth.{product}", plan=plan))
    return specs


def test_the_short_wave_mosaic_goes_before_the_long_wave_one():
    """A visit of 4 short-wave FULL exposures (one F150W mosaic) and 1 long-wave one: every
    short-wave stage outranks its long-wave counterpart, by the difference of the two
    mosaics' image3 + truth + evaluate times (16.8 Mpx of input against 4.2)."""
    lw = _filter_chain("f444w", [_exposure("lw", "NRCBLONG")])
    sw = _filter_chain("f150w", [_exposure(f"sw{i}", f"NRCB{i}") for i in range(1, 5)])
    specs = lw + sw  # the long wave submitted first: the order must come from the times
    seconds = declared_seconds(specs)
    assert seconds["simulate.lw"] == pytest.approx(57.8, rel=0.05)  # the measured mean
    assert seconds["image3.f150w"] == pytest.approx(model_seconds("image3", 4 * 2048**2))
    prio = critical_path_priorities(specs, seconds)
    for kind in ("simulate", "detector1", "image2"):
        assert min(prio[f"{kind}.sw{i}"] for i in range(1, 5)) > prio[f"{kind}.lw"]
    tail = {p: sum(seconds[f"{k}.{p}"] for k in ("image3", "truth", "evaluate"))
            for p in ("f150w", "f444w")}
    assert prio["simulate.sw1"] - prio["simulate.lw"] == pytest.approx(
        10 * (tail["f150w"] - tail["f444w"]), abs=1)
    chain = [prio[f"{k}.sw2"] for k in ("simulate", "detector1", "image2")]
    assert chain == sorted(chain, reverse=True)
    assert prio["evaluate.f150w"] == round(10 * seconds["evaluate.f150w"])


def _started(ctx):
    """Writes the time it started, then sleeps ``params['sleep_s']``."""
    out = ctx.layout.root / f"{ctx.spec.stage_id}.json"
    out.write_text(json.dumps({"start": time.time()}))
    time.sleep(ctx.params["sleep_s"])
    return StageResult({"times": out})


@pytest.mark.parametrize("longer", ["first", "second"])
def test_a_worker_runs_the_longest_chain_first_whatever_the_submission_order(tmp_path,
                                                                           longer):
    """One in-process worker with one thread: after ``root``, ``first`` and ``second``
    are both ready (submitted in that order); the one declared longer starts first."""
    from simval.run.executor import dask_client, run_graph

    layout = RunLayout(tmp_path)
    layout.make()

    def spec(sid: str, *upstream: str) -> StageSpec:
        return StageSpec(sid, "test", str(tmp_path), params={"sleep_s": 0.3, "id": sid},
                         func=_started, uses={f"in{i}": (u, "times")
                                              for i, u in enumerate(upstream)})

    specs = [spec("root"), spec("first", "root"), spec("second", "root")]
    seconds = {"root": 1.0, "first": 1.0, "second": 1.0, longer: 50.0}
    saved = sys.stdout, sys.stderr  # stages in threads of one process share these
    try:
        with dask_client(workers=1, processes=False, threads_per_worker=1,
                         budget_bytes=GIB) as (client, _):
            outcomes = run_graph(client, specs, layout, seconds=seconds)
    finally:
        sys.stdout, sys.stderr = saved
    assert {o.status for o in outcomes.values()} == {COMPLETE}, outcomes
    start = {s: json.loads((tmp_path / f"{s}.json").read_text())["start"]
             for s in ("first", "second")}
    other = "second" if longer == "first" else "first"
    assert start[longer] < start[other]
