"""Kit build time and disk size per detector and filter (fresh kit directory each run).

Usage: python benchmarks/kit_build.py [--detectors NRCB1] [--filters F115W,F150W] [--all]
       [--dark SUB400P:12]
Prints wall time of the whole build, then per job: build time (s) and size (MB).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from simval.kit.build import build_kit
from simval.kit.detectors import DETECTORS
from simval.kit.registry import Registry
from simval.kit.spec import DarkNeed, KitSpec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--detectors", default="NRCB1")
    p.add_argument("--filters", default="F115W,F150W")
    p.add_argument("--all", action="store_true", help="all ten detectors")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dark", default="SUB400P:12", help="SUBARRAY:NFRAMES")
    args = p.parse_args()
    dets = tuple(DETECTORS) if args.all else tuple(args.detectors.split(","))
    spec = KitSpec(detectors=dets, filters=tuple(args.filters.split(",")),
                   darks=(DarkNeed(args.dark.split(":")[0], int(args.dark.split(":")[1])),))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        kit = build_kit(spec, tmp, workers=args.workers)
        wall = time.perf_counter() - t0
        reg = Registry.load(kit.layout)
        per_det: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for job_id, job in sorted(reg.jobs.items()):
            size = sum(reg.files[r]["size"] for r in job["outputs"]) / 1e6
            parts = job_id.split("/")
            key = "/".join(parts[1:]) or "shared"
            per_det[key][0] += kit.timings.get(job_id, 0.0)
            per_det[key][1] += size
        total = sum(v[1] for v in per_det.values())
        print(f"kit {dets} x {spec.filters}: {wall:.1f} s wall on {args.workers} workers, "
              f"{total:.0f} MB, peak RSS of this process "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        print(f"{'group':28s} {'cpu s':>7s} {'MB':>8s}")
        for key, (sec, size) in sorted(per_det.items()):
            print(f"{key:28s} {sec:7.1f} {size:8.1f}")
        assert Path(kit.layout.crds_path).is_dir()


if __name__ == "__main__":
    main()
