"""Benchmark: a scenario done by hand against ``simval run``, side by side in one run.

Run ``python benchmarks/by_hand_baseline.py SCENARIO [--out DIR] [--kit-dir DIR]``
(default scenario: ``scenarios/quickstart.yaml``). The kit is built (untimed) before the
clock starts. In one run of this script, on the same kit and the same MIRAGE yaml files:

1. ``simval, 2 workers``: ``simval run SCENARIO --workers 2`` (MIRAGE children forked from
   a fork server that has imported MIRAGE);
2. ``simval, 1 worker``: the same with ``--workers 1``;
3. ``simval, 2 workers, spawned MIRAGE``: ``SIMVAL_MIRAGE_START=spawn`` (a fresh interpreter
   per exposure, as before the fork server);
4. ``simval, 2 workers, submission order``: ``SIMVAL_STAGE_ORDER=submission`` (every
   stage priority 0, as before the executor ordered stages by their longest chain);
5. ``by hand``: one fresh Python process that imports MIRAGE and jwst, then runs MIRAGE's
   ``ImgSim`` on each exposure's yaml, ``Detector1Pipeline``, ``Image2Pipeline`` and, per
   filter, ``Image3Pipeline`` on an association made with jwst's ``asn_from_list``, one after
   the other, with the scenario's step parameters and the kit's CRDS context;
6. ``by hand, 1 thread`` and ``by hand, 2 processes x 1 thread``: the same with one BLAS /
   OpenMP thread per process (as Dask's workers have), sequentially and in two processes at
   once with the filters split between them: what the bare tools gain from the machine's
   second core on this scenario, the ceiling to hold simval's 2-worker speed-up against.

``--arms`` picks a subset (``simval2,simval1,spawned,submission2,hand,hand1,hand2``;
default all); with ``--no-warm-up`` the kit is built untimed by ``simval kit build``
instead of a whole run, and the by-hand arms read the MIRAGE yaml files of the first simval
arm (for full-frame scenarios, where a warm-up run costs as much as an arm).

Printed: wall times (simval: the time during which a calibration stage was running, from the
catalog to the last mosaic, and the evaluation apart: on 1 worker Dask runs a mosaic's
evaluation before the next filter's exposures when its chain is longer, so a plain
first-to-last span would count it; the whole run's span is printed too), the sum of stage
times per kind against the by-hand step times, the simulate overhead per exposure (stage
wall minus MIRAGE's own ``ImgSim`` time), and the ratios the project aims for: 2 workers vs
1 (>= 1.8x), simval on 2 workers vs by hand sequential (<= 0.6x), sum of simval's stage
times vs by hand (within 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ("catalog", "simulate", "detector1", "image2", "image3")
STEP_KINDS = ("simulate", "detector1", "image2", "image3")


def _simval(scenario: Path, run_dir: Path, kit_dir: Path, workers: int,
            env: dict[str, str] | None = None) -> float:
    cmd = [sys.executable, "-m", "simval.cli", "run", str(scenario), "-o", str(run_dir),
           "--workers", str(workers), "--kit-dir", str(kit_dir)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "stages").glob("*.json"))]


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _covered(recs: list[dict]) -> float:
    """Seconds during which at least one of ``recs`` was running (union of intervals)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted((_when(r["started_utc"]), _when(r["finished_utc"])) for r in recs):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def summarize(run_dir: Path) -> dict:
    """Wall of the calibration stages (the time during which one was running: evaluation
    stages that Dask runs in between, longest chain first, are left out), the whole run's
    span (first stage to last), per-kind sums, evaluation wall, simulate overhead."""
    recs = [r for r in _records(run_dir) if r.get("status") == "complete"]
    cal = [r for r in recs if r["kind"] in CALIBRATION]
    ev = [r for r in recs if r["kind"] not in (*CALIBRATION, "kit")]
    staged = cal + ev
    span = (max(_when(r["finished_utc"]) for r in staged)
            - min(_when(r["started_utc"]) for r in staged)) if staged else 0.0
    sums = {k: sum(r["wall_s"] for r in cal if r["kind"] == k) for k in STEP_KINDS}
    sims = [r for r in cal if r["kind"] == "simulate"]
    overhead = [r["wall_s"] - r["info"]["mirage_stage_seconds"]["mirage"] for r in sims]
    mirage = [r["info"]["mirage_stage_seconds"]["mirage"] for r in sims]
    peak = max((r.get("peak_rss_mb", 0.0) for r in recs), default=0.0)
    return {"wall": _covered(cal), "span": span, "evaluation_wall": _covered(ev),
            "sums": sums, "overhead": overhead, "mirage": mirage, "peak_rss_mb": peak}


BY_HAND = r'''
import json, os, sys, time
from pathlib import Path
t_start = time.perf_counter()
run, out = Path(sys.argv[1]), Path(sys.argv[2])
plan_steps = json.loads(sys.argv[3])
crds_env = json.loads(sys.argv[4])
times = {"imports": 0.0, "simulate": 0.0, "detector1": 0.0, "image2": 0.0, "image3": 0.0}
yamls = [Path(y) for y in json.loads(sys.argv[5])]
import yaml as pyyaml
first = pyyaml.safe_load(yamls[0].read_text())
os.environ["MIRAGE_DATA"] = first["simval"]["mirage_data"]
os.environ.update(crds_env)
(out / "exposures").mkdir(parents=True, exist_ok=True)
(out / "work").mkdir(parents=True, exist_ok=True)
os.chdir(out / "work")  # MIRAGE opens mirage_latest.log here at import and copies it later
t0 = time.perf_counter()
from mirage import imaging_simulator
from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
from jwst.associations import asn_from_list
from jwst.associations.lib.rules_level3_base import DMS_Level3_Base
times["imports"] = time.perf_counter() - t0
uncals = []
for y in yamls:
    params = pyyaml.safe_load(y.read_text())
    params["Output"]["directory"] = str(out / "exposures")
    ipc = params["Reffiles"].get("ipc", "None")
    if ipc != "None":  # MIRAGE writes its inverted kernel next to the IPC file
        staged = out / "work" / Path(ipc).name
        if not staged.exists():
            staged.symlink_to(ipc)
        params["Reffiles"]["ipc"] = str(staged)
    mine = out / "work" / y.name
    mine.write_text(pyyaml.safe_dump(params))
    t0 = time.perf_counter()
    imaging_simulator.ImgSim(paramfile=str(mine), offline=True).create()
    times["simulate"] += time.perf_counter() - t0
    uncals.append(out / "exposures" / params["Output"]["file"])
cals = {}
for u in uncals:
    t0 = time.perf_counter()
    Detector1Pipeline.call(str(u), output_dir=str(out / "exposures"), save_results=True,
                           steps=plan_steps.get("detector1", {}))
    times["detector1"] += time.perf_counter() - t0
    rate = out / "exposures" / u.name.replace("_uncal.fits", "_rate.fits")
    t0 = time.perf_counter()
    Image2Pipeline.call(str(rate), output_dir=str(out / "exposures"), save_results=True,
                        steps=plan_steps.get("image2", {}))
    times["image2"] += time.perf_counter() - t0
    cal = out / "exposures" / u.name.replace("_uncal.fits", "_cal.fits")
    from astropy.io import fits
    cals.setdefault(fits.getheader(cal)["FILTER"], []).append(cal.name)
for filt, names in sorted(cals.items()):
    asn = asn_from_list.asn_from_list(names, rule=DMS_Level3_Base, product_name=f"hand_{filt}")
    _, text = asn.dump(format="json")
    path = out / "exposures" / f"hand_{filt}_asn.json"
    path.write_text(text)
    t0 = time.perf_counter()
    Image3Pipeline.call(str(path), output_dir=str(out / "exposures"), save_results=True,
                        steps=plan_steps.get("image3", {}))
    times["image3"] += time.perf_counter() - t0
times["total"] = time.perf_counter() - t_start
print(json.dumps(times))
'''


def _by_hand_inputs(run_dir: Path) -> tuple[dict, dict, dict[str, list[str]]]:
    """Step parameters, CRDS environment and the MIRAGE yaml files per filter of a run."""
    import yaml as pyyaml

    plan = json.loads((run_dir / "plan.json").read_text())
    crds_env = next(r["parameters"]["crds_env"] for r in _records(run_dir)
                    if r["kind"] == "detector1")
    by_filter: dict[str, list[str]] = {}
    for r in _records(run_dir):
        if r["kind"] == "simulate":
            path = run_dir / r["outputs"]["yaml"]["path"]
            band = pyyaml.safe_load(path.read_text())["Readout"]["filter"]
            by_filter.setdefault(band, []).append(str(path))
    return plan["scenario"]["pipeline"], crds_env, by_filter


#: One thread per process for numpy's BLAS and OpenMP, as Dask sets for its workers (its
#: nanny's pre-spawn environment): two processes on two cores then do not oversubscribe.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def by_hand(run_dir: Path, out: Path, processes: int = 1, one_thread: bool = False) -> dict:
    """The by-hand baseline on ``run_dir``'s MIRAGE yaml files: ``processes`` fresh Python
    processes at once, the filters dealt out among them (each process simulates and
    calibrates its filters' exposures and makes their mosaics), with :data:`ONE_THREAD` if
    ``one_thread``. Times of the slowest process (``total``: its wall) and, per step, the
    sums over processes."""
    env = {**os.environ, **(ONE_THREAD if one_thread else {})}
    steps, crds_env, by_filter = _by_hand_inputs(run_dir)
    bands = sorted(by_filter)
    shares = [[y for band in bands[i::processes] for y in sorted(by_filter[band])]
              for i in range(processes)]
    procs = [subprocess.Popen([sys.executable, "-c", BY_HAND, str(run_dir),
                               str(out / f"process-{i}" if processes > 1 else out),
                               json.dumps(steps), json.dumps(crds_env), json.dumps(share)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
             for i, share in enumerate(shares) if share]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"by-hand run failed:\n{stderr[-3000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    summed = {k: sum(r[k] for r in results) for k in (*STEP_KINDS, "imports")}
    return {**summed, "total": max(r["total"] for r in results)}


ARMS = {"simval2": ("simval, 2 workers", 2, {}),
        "simval1": ("simval, 1 worker", 1, {}),
        "spawned": ("simval, 2 workers, spawned MIRAGE", 2, {"SIMVAL_MIRAGE_START": "spawn"}),
        "submission2": ("simval, 2 workers, submission order", 2,
                        {"SIMVAL_STAGE_ORDER": "submission"})}
HAND_ARMS = {"hand": ("by hand (one process, sequential)", 1, False, "by-hand"),
             "hand1": ("by hand, 1 thread", 1, True, "by-hand_1-thread"),
             "hand2": ("by hand, 2 processes x 1 thread", 2, True, "by-hand_2-processes")}


def _build_kit(scenario: Path, kit_dir: Path) -> float:
    """``simval kit build`` for the scenario's detectors, filters and darks (untimed)."""
    from simval.kit.build import build_kit
    from simval.plan import make_plan
    from simval.scenario import load_scenario

    t0 = time.perf_counter()
    build_kit(make_plan(load_scenario(scenario)).kit_spec(), kit_dir)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path,
                        default=ROOT / "scenarios" / "quickstart.yaml")
    parser.add_argument("--out", type=Path, default=Path("bench_by_hand"))
    parser.add_argument("--kit-dir", type=Path, default=None)
    parser.add_argument("--arms", default=",".join([*ARMS, *HAND_ARMS]),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="build the kit instead of a whole warm-up run")
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS) - set(HAND_ARMS))
    if unknown:
        parser.error(f"unknown arm(s) {unknown}: choose from {[*ARMS, *HAND_ARMS]}")
    out = args.out.resolve()
    kit_dir = (args.kit_dir or out / "kits").resolve()
    if args.no_warm_up:
        print(f"kit (untimed): {_build_kit(args.scenario, kit_dir):.0f} s")
        source = None
    else:
        source = out / "warm-up"
        print(f"kit and warm-up run (untimed): {_simval(args.scenario, source, kit_dir, 2):.0f} s")
    results = {}
    for key in (a for a in ARMS if a in arms):
        label, workers, env = ARMS[key]
        run_dir = out / label.replace(", ", "_").replace(" ", "-")
        _simval(args.scenario, run_dir, kit_dir, workers, env)
        results[label] = summarize(run_dir)
        source = source or run_dir
    if source is None and any(a in HAND_ARMS for a in arms):
        parser.error("the by-hand arms need a simval arm (or the warm-up run) for their yaml")
    hands = {HAND_ARMS[k][0]: by_hand(source, out / HAND_ARMS[k][3], processes=HAND_ARMS[k][1],
                                      one_thread=HAND_ARMS[k][2])
             for k in HAND_ARMS if k in arms}
    report(results, hands)


def report(results: dict[str, dict], hands: dict[str, dict]) -> None:
    """Print the side-by-side table and the ratios whose arms ran."""
    print(f"\n{'':38s} {'wall s':>8s} " + " ".join(f"{k:>10s}" for k in STEP_KINDS)
          + f" {'eval s':>7s} {'peak MB':>8s}")
    for label, h in hands.items():
        print(f"{label:38s} {h['total']:8.1f} " + " ".join(f"{h[k]:10.1f}" for k in STEP_KINDS)
              + f" {'':>7s} {'':>8s}   (imports {h['imports']:.1f} s)")
    for label, r in results.items():
        print(f"{label:38s} {r['wall']:8.1f} " + " ".join(f"{r['sums'][k]:10.1f}"
                                                       for k in STEP_KINDS)
              + f" {r['evaluation_wall']:7.1f} {r['peak_rss_mb']:8.0f}")
    print("\nsimulate overhead per exposure (stage wall - MIRAGE ImgSim), s:")
    for label, r in results.items():
        ov = sorted(r["overhead"])
        print(f"  {label:36s} mean {sum(ov) / len(ov):5.2f}  median {ov[len(ov) // 2]:5.2f}  "
              f"max {max(ov):5.2f}  (MIRAGE itself mean "
              f"{sum(r['mirage']) / len(r['mirage']):.2f})")
    w2, w1 = results.get(ARMS["simval2"][0]), results.get(ARMS["simval1"][0])
    hand, hand1, hand2 = (hands.get(HAND_ARMS[k][0]) for k in ("hand", "hand1", "hand2"))
    fifo = results.get(ARMS["submission2"][0])
    if w2 and fifo:
        print(f"\n2 workers, longest chain first / submission order: "
              f"{w2['wall']:.1f} / {fifo['wall']:.1f} s = {w2['wall'] / fifo['wall']:.2f}")
        if w1:
            print(f"speed-up 2 workers vs 1 in submission order: {w1['wall'] / fifo['wall']:.2f}x")
    if w2 and w1:
        speed_up = w1["wall"] / w2["wall"]
        print(f"\nspeed-up 2 workers vs 1: {speed_up:.2f}x (goal >= 1.8); whole run "
              f"(calibration and evaluation, first stage to last): "
              f"{w1['span']:.1f} / {w2['span']:.1f} s = {w1['span'] / w2['span']:.2f}x")
        if hand1 and hand2:
            ceiling = hand1["total"] / hand2["total"]
            print(f"the bare tools on this machine, 2 processes vs 1 (1 thread each): "
                  f"{ceiling:.2f}x; simval's speed-up is {speed_up / ceiling:.2f} of theirs")
    if hand:
        hand_steps = sum(hand[k] for k in STEP_KINDS)
        if w2:
            print(f"simval 2 workers / by hand: {w2['wall'] / hand['total']:.2f} (goal <= 0.6)")
        one = w1 or w2
        if one:
            which = "1 worker" if w1 else "2 workers, each stage slowed by the other"
            print(f"sum of simval stage times / by-hand step times: "
                  f"{sum(one['sums'].values()) / hand_steps:.2f} ({which}; goal within 1.10)")


if __name__ == "__main__":
    main()
