"""Benchmark: what a second core gives the bare tools on this machine — the ceiling of any
2-worker speed-up.

Run ``python benchmarks/concurrency_ceiling.py RUN_DIR [--step simulate|detector1]``
on a finished run (its MIRAGE yaml files, or its uncal files and CRDS environment). In one
run of the script, in fresh Python processes with one BLAS/OpenMP thread each (as Dask's
workers have):

1. ``alone``: one exposure's step (MIRAGE's ``ImgSim`` or ``Detector1Pipeline``) by itself;
2. ``two at once``: the same step on two exposures started together;
3. with ``--dask-environ``, 1 and 2 again in the environment Dask's nanny gives its worker
   processes (``distributed.nanny.pre-spawn-environ``, e.g. ``MALLOC_TRIM_THRESHOLD_``),
   which simval's stages and their MIRAGE children inherit.

Printed: each step's wall time alone and side by side, the slowdown of a step when another
runs beside it, and the speed-up two processes can give (2 / slowdown). Full-frame steps
move arrays far larger than the caches; on a machine whose two cores share memory
bandwidth, they slow each other down, and no scheduler can beat that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

SIMULATE = r'''
import os, sys, time, yaml
from pathlib import Path
src, out = Path(sys.argv[1]), Path(sys.argv[2])
params = yaml.safe_load(src.read_text())
os.environ["MIRAGE_DATA"] = params["simval"]["mirage_data"]
out.mkdir(parents=True, exist_ok=True)
os.chdir(out)
params["Output"]["directory"] = str(out)
ipc = params["Reffiles"].get("ipc", "None")
if ipc != "None":  # MIRAGE writes its inverted kernel next to the IPC file
    staged = out / Path(ipc).name
    if not staged.exists():
        staged.symlink_to(ipc)
    params["Reffiles"]["ipc"] = str(staged)
mine = out / src.name
mine.write_text(yaml.safe_dump(params))
from mirage import imaging_simulator
t0 = time.perf_counter()
imaging_simulator.ImgSim(paramfile=str(mine), offline=True).create()
print(time.perf_counter() - t0)
'''

DETECTOR1 = r'''
import json, os, sys, time
from pathlib import Path
src, out = sys.argv[1], Path(sys.argv[2])
os.environ.update(json.loads(sys.argv[3]))
out.mkdir(parents=True, exist_ok=True)
from jwst.pipeline import Detector1Pipeline
t0 = time.perf_counter()
Detector1Pipeline.call(src, output_dir=str(out), save_results=True)
print(time.perf_counter() - t0)
'''


def _inputs(run: Path, step: str) -> tuple[list[str], dict[str, str]]:
    recs = [json.loads(p.read_text()) for p in sorted((run / "stages").glob("*.json"))]
    sims = [r for r in recs if r["kind"] == "simulate" and r.get("status") == "complete"]
    if step == "simulate":
        return [str(run / r["outputs"]["yaml"]["path"]) for r in sims], {}
    env = next(r["parameters"]["crds_env"] for r in recs if r["kind"] == "detector1")
    return [str(run / r["outputs"]["uncal"]["path"]) for r in sims], env


def _start(step: str, src: str, out: Path, env: dict[str, str],
           extra: dict[str, str]) -> subprocess.Popen:
    code = SIMULATE if step == "simulate" else DETECTOR1
    args = [sys.executable, "-c", code, src, str(out)] + ([json.dumps(env)] if env else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **ONE_THREAD, **extra})


def dask_worker_environ() -> dict[str, str]:
    """The variables Dask's nanny sets in a worker process before it starts."""
    import dask
    import distributed  # noqa: F401  (loads the distributed config defaults)
    found = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {k: str(v) for k, v in found.items()}


def _measure(step: str, srcs: list[str], out: Path, env: dict[str, str],
             extra: dict[str, str], label: str) -> float:
    alone = _seconds(_start(step, srcs[0], out / "alone", env, extra))
    t0 = time.perf_counter()
    pair = [_start(step, s, out / f"pair-{i}", env, extra) for i, s in enumerate(srcs[1:3])]
    both = [_seconds(p) for p in pair]
    wall = time.perf_counter() - t0
    slowdown = sum(both) / 2 / alone
    print(f"{label}\n  {step}: alone {alone:.1f} s; two at once {both[0]:.1f} s and "
          f"{both[1]:.1f} s (wall {wall:.1f} s)")
    print(f"  slowdown of a step beside another: {slowdown:.2f}x; the speed-up two processes "
          f"can give: {2 / slowdown:.2f}x")
    return alone


def _seconds(proc: subprocess.Popen) -> float:
    stdout, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the step failed (exit {proc.returncode})")
    return float(stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--step", choices=["simulate", "detector1"], default="simulate")
    parser.add_argument("--out", type=Path, default=Path("bench_ceiling"))
    parser.add_argument("--dask-environ", action="store_true",
                        help="also measure in the environment of a Dask worker process")
    args = parser.parse_args()
    srcs, env = _inputs(args.run.resolve(), args.step)
    if len(srcs) < 3:
        sys.exit(f"{args.run}: needs 3 exposures, has {len(srcs)}")
    out = args.out.resolve()
    bare = _measure(args.step, srcs, out / "bare", env, {}, "bare tools, one thread each:")
    if args.dask_environ:
        extra = dask_worker_environ()
        shown = " ".join(f"{k}={v}" for k, v in extra.items())
        dask = _measure(args.step, srcs, out / "dask", env, extra,
                        f"the same in a Dask worker's environment ({shown}):")
        print(f"Dask environment / bare, alone: {dask / bare:.2f}")

if __name__ == "__main__":
    main()
