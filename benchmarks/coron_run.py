"""`simval run` on a coronagraphy scenario twice in one run of this script: first from an
empty kit directory (kit built, every occulted PSF computed by poppy), then into a new run
directory on the same kit (the PSF cache read back). Per stage kind: wall-time sum and max,
peak memory; per run: wall time, PSFs computed and read from the cache.

    .venv/bin/python benchmarks/coron_run.py [--scenario scenarios/coron_quickstart.yaml]
        [--workers 2] [--out /tmp/coron_bench] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(scenario: Path, run_dir: Path, kit_dir: Path, workers: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "simval.cli", "run", str(scenario), "-o",
                           str(run_dir), "--kit-dir", str(kit_dir), "--workers", str(workers),
                           "--no-disk-check"], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if manifest["status"] != "complete":
        raise SystemExit(f"{run_dir}: {manifest['status']}\n{proc.stderr[-2000:]}")
    kinds: dict[str, dict] = {}
    computed = cached = 0
    for sid, stage in manifest["stages"].items():
        k = kinds.setdefault(stage["kind"], {"n": 0, "sum_s": 0.0, "max_s": 0.0,
                                             "peak_mib": 0.0})
        k["n"] += 1
        k["sum_s"] += stage["wall_s"]
        k["max_s"] = max(k["max_s"], stage["wall_s"])
        k["peak_mib"] = max(k["peak_mib"], stage["peak_rss_mb"])
        if stage["kind"] == "simulate":
            record = json.loads((run_dir / "stages" / f"{sid}.json").read_text())
            computed += record["info"].get("psfs_computed", 0)
            cached += record["info"].get("psfs_from_cache", 0)
    return {"command_wall_s": round(wall, 1), "run_wall_s": manifest["wall_s"],
            "kinds": kinds, "psfs_computed": computed, "psfs_from_cache": cached}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "coron_quickstart.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/simval_coron_bench"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    kit = args.out / "kits"
    results = {"cold": _run(args.scenario.resolve(), args.out / "cold", kit, args.workers),
               "warm": _run(args.scenario.resolve(), args.out / "warm", kit, args.workers)}
    for name, r in results.items():
        print(f"{name}: run {r['run_wall_s']:.1f} s (command {r['command_wall_s']:.1f} s), "
              f"PSFs computed {r['psfs_computed']}, from cache {r['psfs_from_cache']}")
        for kind, k in r["kinds"].items():
            print(f"  {kind:9s} n={k['n']:2d} sum {k['sum_s']:6.1f} s  max {k['max_s']:5.1f} s"
                  f"  peak {k['peak_mib']:5.0f} MiB")
    sim = [results[n]["kinds"]["simulate"]["sum_s"] for n in ("cold", "warm")]
    print(f"simulate warm / cold: {sim[1] / sim[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
