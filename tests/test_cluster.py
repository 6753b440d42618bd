"""Running on clusters: memory declarations and Dask resources, SLURM options, a worker
killed mid-stage, and (slow) the reduced quickstart end to end on a real single-node SLURM
and on a separately started Dask scheduler + workers, against the local run.

The fast tests use trivial stage functions on in-process or local clusters (seconds). The
slow ones share the session's reduced quickstart (``mini_run``: the same scenario on a
LocalCluster) and compare with it; SLURM comes from the ``slurm`` fixture
(tests/cluster_fixtures.py), which skips where SLURM cannot run (not root).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simval.atomic import atomic_path
from simval.layout import RunLayout
from simval.run.cluster import (
    ClusterConfigError,
    SlurmOptions,
    cluster_options,
    parse_memory,
    slurm_kwargs,
)
from simval.run.records import (
    BLOCKED,
    COMPLETE,
    FAILED,
    StageResult,
    StageSpec,
    load_record,
)
from simval.run.stage_memory import (
    MIB,
    MemoryProfile,
    declared_memory,
    geometry,
    subarray_pixels,
)

GIB = 2**30


# ---------------------------------------------------------------------------------------
# Memory declarations
# ---------------------------------------------------------------------------------------

def _exposure(base: str, subarray: str, readpatt: str, ngroups: int, visit: int = 1,
              detector: str = "NRCB1") -> dict:
    return {"detector": detector, "subarray": subarray, "readpatt": readpatt,
            "ngroups": ngroups, "nints": 1, "visit": visit, "base_name": base}


def _chain(run_dir: str, exposures: list[dict], *, outlier: bool = False) -> list[StageSpec]:
    """simulate -> detector1 -> image2 per exposure, one image3 over all, truth, evaluate,
    as build_specs wires them (the parameters the declarations read)."""
    specs: list[StageSpec] = []
    for e in exposures:
        b = e["base_name"]
        specs += [
            StageSpec(f"simulate.{b}", "simulate", run_dir,
                      params={"base_name": b, "mirage_exposure": e}),
            StageSpec(f"detector1.{b}", "detector1", run_dir, params={"base_name": b},
                      uses={"uncal": (f"simulate.{b}", "uncal")}),
            StageSpec(f"image2.{b}", "image2", run_dir, params={"base_name": b},
                      uses={"rate": (f"detector1.{b}", "rate")})]
    members = [e["base_name"] for e in exposures]
    steps = {} if outlier else {"outlier_detection": {"skip": True}}
    specs.append(StageSpec("image3.p", "image3", run_dir,
                           params={"members": members, "steps": steps},
                           uses={f"cal:{b}": (f"image2.{b}", "cal") for b in members}))
    plan = {"exposures": exposures}
    specs.append(StageSpec("truth.p", "truth", run_dir, params={"plan": plan},
                           uses={"i2d": ("image3.p", "i2d")}))
    specs.append(StageSpec("evaluate.p", "evaluate", run_dir, params={"plan": plan},
                           uses={"truth": ("truth.p", "truth")}))
    return specs


def test_subarray_pixels_and_frames_read():
    assert subarray_pixels("SUB400P") == 400 * 400
    assert subarray_pixels("SUB64P") == 64 * 64
    assert subarray_pixels("FULL") == 2048 * 2048
    assert subarray_pixels("SUBGRISM256") == 2048 * 2048  # unknown: the safe side
    g = geometry(_exposure("a", "FULL", "SHALLOW4", 5))
    assert (g.frames, g.groups) == (25, 5)  # 5 x (4 frames + 1 skipped)
    assert geometry(_exposure("a", "SUB400P", "BRIGHT2", 10)).frames == 20


def test_declarations_cover_the_measured_peaks_within_15_percent(tmp_path):
    """The measured stage peaks (stage_memory's table, MiB) lie under their declarations
    and within 15% of them: FULL SHALLOW4 x 5 (one exposure, one-input mosaic) and the
    quickstart's SUB400P BRIGHT2 x 10 (4 inputs per mosaic)."""
    full = declared_memory(_chain(str(tmp_path), [_exposure("f", "FULL", "SHALLOW4", 5)]))
    measured_full = {"simulate.f": 5022, "detector1.f": 1948, "image2.f": 1386,
                     "image3.p": 1331, "truth.p": 1477}
    for sid, mb in measured_full.items():
        got = full[sid] / MIB
        assert mb <= got <= 1.15 * mb, (sid, got, mb)
    # the COSMOS-Web-like block's 1-visit slice: a 16-input mosaic on 4 detectors (its
    # evaluation with the footprint and aperture-noise groups; the 1-input evaluate peak of
    # 1034 MiB predates them)
    block = declared_memory(_chain(str(tmp_path), [
        _exposure(f"b{d}{i}", "FULL", "SHALLOW4", 5, detector=f"NRCB{d}")
        for d in range(1, 5) for i in range(4)]))
    for sid, mb in {"image3.p": 4196, "truth.p": 4075, "evaluate.p": 2777}.items():
        got = block[sid] / MIB
        assert 0.95 * mb <= got <= 1.2 * mb, (sid, got, mb)
    assert full["evaluate.p"] / MIB >= 1034
    sub = declared_memory(_chain(str(tmp_path), [
        _exposure(f"s{i}", "SUB400P", "BRIGHT2", 10) for i in range(4)]))
    measured_sub = {"simulate.s0": 2282, "detector1.s0": 547, "image2.s0": 514,
                    "image3.p": 493, "truth.p": 508, "evaluate.p": 481}
    for sid, mb in measured_sub.items():
        got = sub[sid] / MIB
        assert mb <= got, (sid, got, mb)
    # a full-frame MIRAGE exposure is the run's largest stage, ~5 GB
    assert max(full, key=full.__getitem__) == "simulate.f"
    assert 5.0e9 <= full["simulate.f"] <= 5.8e9


def test_image3_grows_with_inputs_tiles_and_outlier_detection(tmp_path):
    one = declared_memory(_chain(str(tmp_path), [_exposure("a", "FULL", "SHALLOW4", 5)]))
    dithers = [_exposure(f"d{i}", "FULL", "SHALLOW4", 5) for i in range(4)]
    tiles = [_exposure(f"t{i}", "FULL", "SHALLOW4", 5, visit=i) for i in range(4)]
    stacked = declared_memory(_chain(str(tmp_path), dithers))
    tiled = declared_memory(_chain(str(tmp_path), tiles))
    with_od = declared_memory(_chain(str(tmp_path), tiles, outlier=True))
    px = 2048 * 2048
    # 4 dithers of one tile: + 3 inputs x 28 B/pixel; the mosaic stays one tile
    assert stacked["image3.p"] - one["image3.p"] == pytest.approx(3 * 28 * px, abs=2)
    # 4 visits: + 3 tiles of 1.25 x 120 B/pixel on top of that
    assert tiled["image3.p"] - stacked["image3.p"] == pytest.approx(3 * 1.25 * 120 * px,
                                                                    abs=2)
    # outlier_detection: + 8 B per mosaic pixel per input
    assert with_od["image3.p"] - tiled["image3.p"] == pytest.approx(8 * 4 * 5 * px, abs=2)
    # truth and evaluate follow the mosaic, not the number of dithers
    assert stacked["truth.p"] == one["truth.p"] < tiled["truth.p"]


def test_memory_mb_on_a_spec_overrides_its_kind(tmp_path):
    spec = StageSpec("x", "simulate", str(tmp_path), memory_mb=123.0)
    assert declared_memory([spec]) == {"x": 123 * MIB}
    assert declared_memory([StageSpec("y", "made-up-kind", str(tmp_path))])["y"] == 700 * MIB


def test_default_workers_follow_cpus_and_memory(monkeypatch):
    import psutil

    from simval.run import executor

    class Memory:
        total = 24 * GIB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    uniform = MemoryProfile.uniform
    assert executor.memory_budget() == 23 * GIB
    assert executor.default_workers(uniform(5.4 * GIB)) == 2   # full-frame MIRAGE: 2 fit
    assert executor.default_workers(uniform(12 * GIB)) == 1    # only one fits in 23 GiB
    assert executor.default_workers(uniform(40 * GIB)) == 1    # never fewer than one
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert executor.default_workers(uniform(5 * GIB)) == 4     # memory binds: 23 // 5
    assert executor.default_workers(uniform(1 * GIB)) == 16    # CPUs bind


def test_worker_shares_never_add_up_to_more_than_the_budget():
    """2 cores, 23 GiB: the quickstart gets two equal workers; a COSMOS-Web-like run
    (mosaics 17.1 GiB, simulations 5.1 GiB) one worker for the mosaics and one that still
    holds a simulation, not a single worker; on 16 cores and 63 GiB, 8 more workers of
    5.7 GiB beside the 17.1 GiB one (memory, not cores, binds)."""
    from simval.run.executor import worker_shares

    quick = MemoryProfile(int(2.39 * GIB), int(2.39 * GIB), 300 * MIB)
    assert worker_shares(quick, budget=23 * GIB, cpus=2) == [23 * GIB // 2] * 2
    cosmos = MemoryProfile(int(17.1 * GIB), int(5.24 * GIB), 300 * MIB)
    shares = worker_shares(cosmos, budget=23 * GIB, cpus=2)
    assert shares == [int(17.1 * GIB), 23 * GIB - int(17.1 * GIB)]
    assert shares[1] >= cosmos.bulk
    big = worker_shares(cosmos, budget=63 * GIB, cpus=16)
    assert len(big) == 9 and big[0] == cosmos.largest and min(big[1:]) >= cosmos.bulk
    # 8 GiB, 2 cores: no second worker can hold a simulation; one takes what fits beside
    small = worker_shares(MemoryProfile(int(5.24 * GIB), int(5.24 * GIB), 300 * MIB),
                          budget=8 * GIB, cpus=2)
    assert small == [int(5.24 * GIB), 8 * GIB - int(5.24 * GIB)]
    # --workers 3 with the cosmos profile: the first holds the mosaics
    three = worker_shares(cosmos, workers=3, budget=23 * GIB, cpus=2)
    assert len(three) == 3 and three[0] == cosmos.largest
    for s in (shares, big, small, three):
        assert sum(s) <= (63 if s is big else 23 if s is not small else 8) * GIB


def test_memory_profile_of_a_run(tmp_path):
    specs = _chain(str(tmp_path), [_exposure(f"e{i}", "FULL", "SHALLOW4", 5, visit=i)
                                   for i in range(4)])
    declared = declared_memory(specs)
    profile = MemoryProfile.of(specs, declared)
    assert profile.largest == max(declared.values())
    # the most numerous kinds (simulate, detector1, image2), the largest of them
    assert profile.bulk == declared["simulate.e0"] > declared["detector1.e0"]
    assert profile.smallest == min(declared.values())


# ---------------------------------------------------------------------------------------
# Dask resources: a worker never runs more than its memory
# ---------------------------------------------------------------------------------------

def _interval(ctx):
    """Sleeps ``params['sleep_s']``; writes its start and end times."""
    t0 = time.time()
    time.sleep(ctx.params["sleep_s"])
    out = ctx.layout.root / f"{ctx.spec.stage_id}.json"
    out.write_text(json.dumps({"start": t0, "end": time.time()}))
    return StageResult({"times": out})


def _times(run_dir: Path, sid: str) -> tuple[float, float]:
    d = json.loads((run_dir / f"{sid}.json").read_text())
    return d["start"], d["end"]


def _overlap(run_dir: Path, a: str, b: str) -> bool:
    (s1, e1), (s2, e2) = _times(run_dir, a), _times(run_dir, b)
    return max(s1, s2) < min(e1, e2)


def test_two_stages_of_60_percent_of_a_worker_never_run_together(tmp_path):
    """One in-process worker with 2 threads and MEMORY = 1 GiB: two stages declaring 40%
    each run side by side (so the worker could run two), two declaring 60% each never do,
    and one declaring 8x the worker's memory still runs (lowered to the worker's size)."""
    from simval.run.executor import dask_client, memory_requests, run_graph

    layout = RunLayout(tmp_path)
    layout.make()

    def spec(sid: str, mb: float) -> StageSpec:
        return StageSpec(sid, "test", str(tmp_path), params={"sleep_s": 0.6, "id": sid},
                         func=_interval, memory_mb=mb)

    saved = sys.stdout, sys.stderr  # stages in threads of one process share these
    try:
        with dask_client(workers=1, processes=False, threads_per_worker=2,
                         budget_bytes=GIB) as (client, how):
            assert how.worker_memory_mb == 1024
            small = [spec("small_a", 0.4 * 1024), spec("small_b", 0.4 * 1024)]
            big = [spec("big_a", 0.6 * 1024), spec("big_b", 0.6 * 1024)]
            huge = [spec("huge", 8 * 1024)]
            assert memory_requests(client, huge) == {"huge": GIB}
            for group in (small, big, huge):
                outcomes = run_graph(client, group, layout)
                assert {o.status for o in outcomes.values()} == {COMPLETE}, outcomes
    finally:
        sys.stdout, sys.stderr = saved
    assert _overlap(tmp_path, "small_a", "small_b")
    assert not _overlap(tmp_path, "big_a", "big_b")


def test_local_workers_get_their_own_shares(tmp_path):
    """An in-process cluster sized for a 3 GiB stage in a 4 GiB budget: one worker of
    3 GiB and one of 1 GiB, and a 2 GiB stage can only go to the first."""
    from simval.run.executor import dask_client, memory_requests, worker_memory

    profile = MemoryProfile(3 * GIB, GIB, GIB // 4)
    with dask_client(processes=False, memory=profile, budget_bytes=4 * GIB) as (client, how):
        assert sorted(worker_memory(client).values()) == [GIB, 3 * GIB]
        assert how.workers == 2 and how.as_dict()["worker_shares_mb"] == [3072, 1024]
        spec = StageSpec("s", "test", str(tmp_path), memory_mb=2048)
        assert memory_requests(client, [spec]) == {"s": 2 * GIB}


def test_workers_without_memory_resource_get_unrestricted_stages(tmp_path):
    from distributed import Client, LocalCluster

    from simval.run.executor import memory_requests

    with LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            Client(cluster, set_as_default=False) as client:
        spec = StageSpec("s", "simulate", str(tmp_path))
        assert memory_requests(client, [spec]) == {}


# ---------------------------------------------------------------------------------------
# A worker killed mid-stage
# ---------------------------------------------------------------------------------------

def _dies(ctx):
    """Counts its attempts in ``params['marker']``; the first ``params['deaths']`` kill
    their own worker process halfway through writing the output."""
    marker = Path(ctx.params["marker"])
    attempts = len(marker.read_text()) if marker.exists() else 0
    marker.write_text("x" * (attempts + 1))
    out = ctx.layout.root / ctx.params["name"]
    if attempts < ctx.params["deaths"]:
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    with atomic_path(out) as tmp:
        tmp.write_text("whole")
    return StageResult({"out": out})


def _copy(ctx):
    out = ctx.layout.root / f"{ctx.spec.stage_id}.txt"
    out.write_text(ctx.inputs["a"].read_text())
    return StageResult({"out": out})


def test_a_killed_worker_retries_the_stage_once_then_records_it_failed(tmp_path):
    """Worker processes (a LocalCluster of 2): a stage whose worker dies once runs again
    and completes; one whose worker dies every time is tried twice, then recorded failed
    (KilledWorker) with nothing at its output path, and what depends on it is blocked."""
    from simval.run.executor import dask_client, run_graph

    layout = RunLayout(tmp_path)
    layout.make()

    def dying(sid: str, deaths: int) -> StageSpec:
        return StageSpec(sid, "test", str(tmp_path), func=_dies,
                         params={"marker": str(tmp_path / f"{sid}.attempts"),
                                 "name": f"{sid}.txt", "deaths": deaths})

    once, always = dying("once", 1), dying("always", 99)
    after = StageSpec("after", "test", str(tmp_path), uses={"a": ("always", "out")},
                      func=_copy)
    with dask_client(workers=2, budget_bytes=2 * GIB) as (client, _):
        first = run_graph(client, [once], layout)
        second = run_graph(client, [always, after], layout)
    assert first["once"].status == COMPLETE
    assert (tmp_path / "once.attempts").read_text() == "xx"
    assert (tmp_path / "once.txt").read_text() == "whole"
    assert load_record(layout, "once")["status"] == "complete"

    assert second["always"].status == FAILED
    assert "KilledWorker" in second["always"].error
    assert (tmp_path / "always.attempts").read_text() == "xx"  # one retry, no more
    assert not (tmp_path / "always.txt").exists()
    rec = load_record(layout, "always")
    assert rec["status"] == "failed" and "KilledWorker" in rec["error"]
    assert second["after"].status == BLOCKED and second["after"].blocked_by == "always"


# ---------------------------------------------------------------------------------------
# SLURM options
# ---------------------------------------------------------------------------------------

def test_cluster_yaml_with_flags_on_top(tmp_path):
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text("kind: slurm\nqueue: compute\ncores: 2\nmemory: 16GB\n"
                   "walltime: '02:00:00'\njobs: 4\n"
                   "job_extra_directives: ['#SBATCH --qos=normal', '--constraint=skylake']\n"
                   "job_script_prologue: ['source /shared/venv/bin/activate']\n"
                   "interface: ib0\n")
    opts = cluster_options(None, cfg, {"jobs": 8, "queue": None, "memory": None})
    assert opts.queue == "compute" and opts.cores == 2 and opts.jobs == 8
    assert opts.memory == 16_000_000_000 and opts.walltime == "02:00:00"
    assert opts.job_extra_directives == ["--qos=normal", "--constraint=skylake"]
    assert opts.worker_memory(5 * GIB) == 8_000_000_000
    # without memory: cores x the run's largest declaration
    assert SlurmOptions(cores=3).job_memory(5 * GIB) == 15 * GIB
    assert SlurmOptions().job_memory(100 * MIB) == 2 * GIB
    assert cluster_options(None, None, {"jobs": None}) is None


@pytest.mark.parametrize(("text", "field", "expect"), [
    ("cores: 0\n", "cores", "greater than or equal to 1"),
    ("memory: lots\n", "memory", "expected a size such as 16GB"),
    ("walltime: 2 hours\n", "walltime", "SLURM's time format"),
    ("partition: compute\n", "partition", "Extra inputs are not permitted"),
    ("job_extra_directives: [qos=normal]\n", "job_extra_directives.0", "sbatch option"),
    ("kind: pbs\n", "kind", "Input should be 'slurm'"),
])
def test_bad_cluster_yaml_names_file_and_field(tmp_path, text, field, expect):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ClusterConfigError) as err:
        cluster_options(None, cfg)
    msg = str(err.value)
    assert msg.startswith(f"{cfg}: {field}: ") and expect in msg, msg


def test_bad_cluster_flags_name_the_flag(tmp_path):
    flags = {"cores": "--cores", "walltime": "--walltime"}
    with pytest.raises(ClusterConfigError, match=r"^--cores: Input should be greater"):
        cluster_options("slurm", None, {"cores": 0}, flags)
    with pytest.raises(ClusterConfigError, match="--jobs: cluster options need --cluster"):
        cluster_options(None, None, {"jobs": 3})
    with pytest.raises(ClusterConfigError, match="--cluster: 'pbs' is not supported"):
        cluster_options("pbs")
    (tmp_path / "c.yaml").write_text("- a\n- b\n")
    with pytest.raises(ClusterConfigError, match="expected a mapping"):
        cluster_options("slurm", tmp_path / "c.yaml")
    assert parse_memory("4 GiB") == 4 * GIB


def test_cli_refuses_cluster_with_workers_or_scheduler(tmp_path, capsys):
    from simval.cli import main
    from tests.conftest import mini_scenario

    scenario = mini_scenario(tmp_path)
    assert main(["run", str(scenario), "--cluster", "slurm", "--workers", "2"]) == 2
    assert "--workers is for the local cluster" in capsys.readouterr().err
    assert main(["run", str(scenario), "--cluster", "slurm", "--scheduler",
                 "tcp://127.0.0.1:1"]) == 2
    assert "choose one" in capsys.readouterr().err
    assert main(["run", str(scenario), "--cluster", "slurm", "--walltime", "soon"]) == 2
    assert "--walltime: " in capsys.readouterr().err


def test_slurm_job_script_from_options(tmp_path):
    """The job script dask-jobqueue makes of the options (no job is submitted)."""
    from dask_jobqueue import SLURMCluster

    opts = SlurmOptions(queue="compute", account="proj", cores=2, memory="8GB",
                        walltime="00:30:00", job_extra_directives=["--qos=normal"],
                        python="/shared/venv/bin/python",
                        job_script_prologue=["source /shared/venv/bin/activate"])
    kwargs = slurm_kwargs(opts, stage_memory=GIB, log_directory=tmp_path / "logs")
    with SLURMCluster(**kwargs) as cluster:
        script = cluster.job_script()
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    for line in ("#SBATCH -p compute", "#SBATCH -A proj", "#SBATCH --cpus-per-task=2",
                 "#SBATCH --mem=8G", "#SBATCH -t 00:30:00", "#SBATCH --qos=normal",
                 "export DASK_DISTRIBUTED__WORKER__DAEMON=False",
                 "source /shared/venv/bin/activate"):
        assert line in script.splitlines(), (line, script)
    command = script.splitlines()[-1]
    assert command.startswith("/shared/venv/bin/python -m distributed.cli.dask_worker")
    for arg in ("--nthreads 1", "--nworkers 2", "--resources MEMORY=4000000000",
                "--interface lo", "--no-dashboard"):
        assert arg in command, (arg, command)
    # the last --memory-limit wins: no Dask memory limit on a worker
    assert command.rindex("--memory-limit 0") > command.index("--memory-limit")


def test_slurm_tests_skip_without_root_unless_required(monkeypatch):
    from tests import cluster_fixtures

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("SIMVAL_REQUIRE_SLURM", raising=False)
    assert "needs root" in cluster_fixtures.slurm_unavailable()
    monkeypatch.setenv("SIMVAL_REQUIRE_SLURM", "1")  # CI (.ci/run): never skip
    with pytest.raises(RuntimeError, match="SIMVAL_REQUIRE_SLURM=1 but"):
        cluster_fixtures.slurm_unavailable()


def test_slurm_refuses_a_bad_partition_before_submitting(slurm, tmp_path):
    """On the test SLURM: ``sbatch --test-only`` turns a wrong partition into an error
    naming SLURM's reason at once, and no job is queued."""
    from simval.run.executor import dask_client

    opts = cluster_options("slurm", None, {"queue": "no-such-partition"})
    t0 = time.monotonic()
    with pytest.raises(ClusterConfigError, match="invalid partition"), \
            dask_client(cluster=opts, log_directory=tmp_path):
        pass
    assert time.monotonic() - t0 < 20
    assert slurm.queued() == []


# ---------------------------------------------------------------------------------------
# End to end on SLURM and on an external scheduler (slow)
# ---------------------------------------------------------------------------------------

def _metric_values(run_dir: Path) -> dict:
    doc = json.loads((run_dir / "metrics.json").read_text())
    return {(band, m): v.get("value") for band, ms in doc["filters"].items()
            for m, v in ms.items()}


def _same_results_as(run_dir: Path, local: Path) -> None:
    """Same raw data (MIRAGE content hashes), same mosaic pixels, same metric values."""
    from astropy.io import fits

    plan = json.loads((local / "plan.json").read_text())
    for e in plan["exposures"]:
        sid = f"simulate.{e['base_name']}"
        a = load_record(RunLayout(run_dir), sid)["info"]["uncal_content_sha256"]
        b = load_record(RunLayout(local), sid)["info"]["uncal_content_sha256"]
        assert a == b, sid
    for p in plan["products"]:
        rel = Path("image3") / p["name"] / f"{p['name']}_i2d.fits"
        with fits.open(run_dir / rel) as x, fits.open(local / rel) as y:
            assert np.array_equal(x["SCI"].data, y["SCI"].data, equal_nan=True)
    got, want = _metric_values(run_dir), _metric_values(local)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
        else:
            assert got[key] == value, key


def _stages_ran_on(run_dir: Path, workers: dict) -> set[str]:
    """Every stage (but the client's kit stage) ran in one of ``workers``' processes;
    returns the worker addresses that ran any."""
    by_pid = {(w["host"], w["pid"]): addr for addr, w in workers.items()}
    used = set()
    for path in sorted((run_dir / "stages").glob("*.json")):
        rec = json.loads(path.read_text())
        if rec["stage_id"] == "kit":
            continue
        key = (rec["host"], rec["pid"])
        assert key in by_pid, (rec["stage_id"], key, workers)
        used.add(by_pid[key])
    return used


@pytest.mark.slow
def test_slurm_run_end_to_end_in_sbatch_workers(slurm, mini_run, tmp_path):
    """``simval run --cluster slurm`` with 2 sbatch'ed jobs: the run completes, every
    stage ran in a worker of a SLURM job, the jobs are gone afterwards, and the results
    equal the local run's (same scenario, same kit)."""
    from simval.cli import main

    run_dir = tmp_path / "slurm_run"
    code = main(["run", str(mini_run["scenario"]), "-o", str(run_dir), "--kit-dir",
                 str(mini_run["kit_dir"]), "--cluster", "slurm", "--jobs", "2",
                 "--walltime", "00:20:00", "--sbatch=--comment=simval-test"])
    assert code == 0
    doc = json.loads((run_dir / "manifest.json").read_text())
    assert doc["status"] == "complete", doc["failed_stages"]
    ex = doc["execution"]
    assert ex["scheduler"] == "SLURMCluster" and ex["jobs"] == 2
    script = Path(ex["job_script"]).read_text().splitlines()
    assert Path(ex["job_script"]).parent == run_dir / "logs" / "slurm"
    assert "#SBATCH --comment=simval-test" in script
    # default job memory: the largest declaration (a SUB400P simulation, ~2.3 GiB)
    assert ex["largest_declared_stage"].startswith("simulate.")
    assert ex["job_memory_mb"] == ex["largest_declared_mb"] == ex["worker_memory_mb"]
    workers = doc["workers"]
    assert all(w["slurm_job_id"] and w["host"] == slurm.node for w in workers.values())
    assert len({w["slurm_job_id"] for w in workers.values()}) == 2
    assert _stages_ran_on(run_dir, workers)
    assert list((run_dir / "logs" / "slurm").glob("simval-worker-*.err"))
    t0 = time.monotonic()
    while slurm.queued() and time.monotonic() - t0 < 30:
        time.sleep(0.5)
    assert slurm.queued() == []
    _same_results_as(run_dir, mini_run["result"].run_dir)


@pytest.mark.slow
def test_external_scheduler_and_workers_run_end_to_end(mini_run, tmp_path):
    """``--scheduler`` to a separately started ``dask scheduler`` with 2 ``dask worker``
    processes (127.0.0.1, MEMORY 4 GiB each): the run completes on those workers and
    equals the local run."""
    import psutil

    from simval.run import run_scenario
    from tests.cluster_fixtures import external_dask

    with external_dask(2, 4 * GIB, tmp_path / "dask-logs") as ext:
        result = run_scenario(mini_run["scenario"], tmp_path / "ext_run",
                              scheduler=ext.address, kit_dir=mini_run["kit_dir"])
        assert result.ok, [(o.stage_id, o.error) for o in result.failed]
        doc = json.loads(result.manifest.read_text())
        ours = {p.pid for p in ext.procs}
        for w in doc["workers"].values():  # each worker is a child of a `dask worker`
            assert psutil.Process(w["pid"]).ppid() in ours
    assert doc["execution"]["scheduler"] == ext.address
    assert doc["execution"]["workers"] == 2 and doc["execution"]["worker_memory_mb"] == 4096
    assert _stages_ran_on(result.run_dir, doc["workers"])
    _same_results_as(result.run_dir, mini_run["result"].run_dir)


def _worker_environ(name: str) -> str | None:
    return os.environ.get(name)


def test_local_workers_keep_glibc_malloc_adaptive(tmp_path):
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_ in each worker (12 % slower
    calwebb_detector1 at full frame); simval's local workers start without it and keep
    Dask's one BLAS/OpenMP thread."""
    from simval.run.executor import dask_client

    with dask_client(workers=1, budget_bytes=GIB) as (client, _):
        seen = client.run(_worker_environ, "MALLOC_TRIM_THRESHOLD_")
        threads = client.run(_worker_environ, "OMP_NUM_THREADS")
    assert list(seen.values()) == [None]
    assert list(threads.values()) == ["1"]


def test_slurm_job_environment_drops_malloc_trim(tmp_path):
    """The job script's exports, run by a shell, give the worker's nanny a pre-spawn
    environment without MALLOC_TRIM_THRESHOLD_ (and Dask's thread limits kept)."""
    import subprocess

    kwargs = slurm_kwargs(SlurmOptions(), stage_memory=GIB, log_directory=tmp_path)
    exports = [line for line in kwargs["job_script_prologue"] if line.startswith("export ")]
    probe = ("import dask, distributed; "
             "print(sorted(k for k, v in dask.config.get("
             "'distributed.nanny.pre-spawn-environ').items() if v is not None))")
    script = "\n".join([*exports, f'{sys.executable} -c "{probe}"'])
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == str(
        ["MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"])
