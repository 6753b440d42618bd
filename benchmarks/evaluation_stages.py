"""Benchmark: evaluating a finished run, one process against a 2-worker Dask cluster.

Run ``python benchmarks/evaluation_stages.py RUN_DIR [--repeat 2]`` on a finished run
(``simval run scenarios/quickstart.yaml -o RUN_DIR`` makes one).

Side by side, in one run of this script (the machines are noisy; compare the ratios):

1. ``cached``: :func:`simval.run.ensure_evaluated` on the evaluated run (the resume rule
   checks every input's sha256 and reuses every stage);
2. ``serial``: the truth/ and evaluation/ outputs and metrics.json removed, then
   ``ensure_evaluated`` in this process (products one after the other);
3. ``2 workers``: the same on a LocalCluster of 2 worker processes (the cluster started
   before the clock; products in parallel);
4. ``thresholds only``: the scenario's thresholds changed in plan.json (the metrics join
   re-runs, truth and evaluation are reused).

Each line prints the wall time (median of ``--repeat``, after one untimed warm-up) and the
stage statuses. The script
restores plan.json and leaves the run evaluated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path

from simval.layout import RunLayout
from simval.run import ensure_evaluated
from simval.run.executor import dask_client


def _clear(layout: RunLayout) -> None:
    for d in (layout.truth, layout.evaluation):
        shutil.rmtree(d, ignore_errors=True)
    layout.metrics.unlink(missing_ok=True)


def _timed(fn, repeat: int, before=None) -> tuple[float, Counter]:
    """Median wall time of ``repeat`` calls after one untimed warm-up (imports of jwst and
    the metric code in each process), and the stage statuses of the last."""
    if before is not None:
        before()
    fn()
    times, statuses = [], Counter()
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        outcomes = fn()
        times.append(time.perf_counter() - t0)
        statuses = Counter(f"{sid.partition('.')[0]}:{o.status}" for sid, o in outcomes.items())
    return statistics.median(times), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    layout = RunLayout(args.run_dir)
    ensure_evaluated(layout)  # start from an evaluated run
    rows = [("cached", *_timed(lambda: ensure_evaluated(layout), args.repeat))]
    rows.append(("serial", *_timed(lambda: ensure_evaluated(layout), args.repeat,
                                   lambda: _clear(layout))))
    with dask_client(2) as (client, _):
        rows.append(("2 workers", *_timed(lambda: ensure_evaluated(layout, client=client),
                                          args.repeat, lambda: _clear(layout))))
    plan_text = layout.plan.read_text()
    try:
        def change_thresholds() -> None:
            data = json.loads(plan_text)
            data["scenario_hash"] = f"bench{time.perf_counter_ns()}"
            layout.plan.write_text(json.dumps(data))

        rows.append(("thresholds only", *_timed(lambda: ensure_evaluated(layout),
                                                args.repeat, change_thresholds)))
    finally:
        layout.plan.write_text(plan_text)
        ensure_evaluated(layout)
    print(f"{'case':<16} {'wall s':>8}  stages")
    for name, wall, statuses in rows:
        counts = ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items()))
        print(f"{name:<16} {wall:8.2f}  {counts}")


if __name__ == "__main__":
    main()
