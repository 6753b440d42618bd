"""Benchmark: a survey-scale run (the COSMOS-Web-like block) — time, memory, closure per detector.

Run ``python benchmarks/survey_run.py [SCENARIO] [-o RUN_DIR] [--workers 2] [--kit-dir DIR]``
(default ``scenarios/cosmos_web_like.yaml``), or ``--summarize RUN_DIR`` for a finished run.
Prints, from the run's stage records and ``metrics.json``:

- the wall time of the run (first stage start to last stage end) and the machine's peak
  memory in use (sampled every 2 s while the run goes; with ``--summarize``, the largest
  stage peak);
- per stage kind: count, sum of stage times, mean and max, peak resident memory;
- the simulate overhead per exposure (stage wall minus MIRAGE's own ``ImgSim`` time);
- image3's time against its number of inputs;
- the closure table per filter (bright-star photometric bias, astrometric rms, sky residual
  against the noiseless truth mosaic, completeness of S/N >= 20 sources) and per detector
  (the per-detector breakdown of the same, ``details.groups`` of the ``*_detector_worst_*``
  metrics).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _records(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run / "stages").glob("*.json"))]


def _value(metrics: dict, name: str) -> float | None:
    entry = metrics.get(name) or {}
    return entry.get("value")


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def summarize(run: Path, peak_machine_gb: float | None = None) -> None:
    recs = [r for r in _records(run) if r.get("started_utc") and r.get("finished_utc")]
    start = min(_when(r["started_utc"]) for r in recs)
    end = max(_when(r["finished_utc"]) for r in recs)
    print(f"run {run}: wall {end - start:.0f} s ({(end - start) / 60:.1f} min)")
    if peak_machine_gb is not None:
        print(f"machine memory in use, peak: {peak_machine_gb:.1f} GiB")
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        by_kind[r["kind"]].append(r)
    print(f"\n{'stage':10s} {'n':>4s} {'sum s':>8s} {'mean s':>7s} {'max s':>7s} {'peak MiB':>9s}")
    for kind, rs in by_kind.items():
        walls = [r.get("wall_s", 0.0) for r in rs]
        print(f"{kind:10s} {len(rs):4d} {sum(walls):8.0f} {sum(walls) / len(walls):7.1f} "
              f"{max(walls):7.1f} {max(r.get('peak_rss_mb', 0.0) for r in rs):9.0f}")
    sims = [r for r in by_kind.get("simulate", []) if r.get("status") == "complete"]
    if sims:
        over = sorted(r["wall_s"] - r["info"]["mirage_stage_seconds"]["mirage"] for r in sims)
        print(f"\nsimulate overhead per exposure (stage - MIRAGE ImgSim): median "
              f"{over[len(over) // 2]:.2f} s, max {over[-1]:.2f} s (first per worker "
              "includes the fork server's imports)")
    for r in by_kind.get("image3", []):
        n = len([k for k in r.get("inputs", {}) if k.startswith("cal:")])
        print(f"image3 {r['stage_id'].split('.', 1)[1]}: {n} inputs, {r.get('wall_s', 0):.0f} s, "
              f"{r.get('peak_rss_mb', 0):.0f} MiB")
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        print("\nno metrics.json (the run did not finish)")
        return
    doc = json.loads(metrics_path.read_text())
    print(f"\n{'filter':7s} {'phot bright mag':>15s} {'astrom rms mas':>14s} {'sky frac':>9s} "
          f"{'compl S/N>=20':>13s}")
    for band, m in doc["filters"].items():
        print(f"{band:7s} {_fmt(_value(m, 'phot_bias_bright_star_mag'), '+15.4f')} "
              f"{_fmt(_value(m, 'astrom_rms_bright_star_mas'), '14.2f')} "
              f"{_fmt(_value(m, 'bkg_residual_frac'), '+9.4f')} "
              f"{_fmt(_value(m, 'completeness_snr20'), '13.3f')}")
    print(f"\n{'filter':7s} {'detector':9s} {'n src':>6s} {'phot mag':>9s} {'dx mas':>7s} "
          f"{'dy mas':>7s} {'rms mas':>8s} {'sky frac':>9s}")
    for band, m in doc["filters"].items():
        groups = ((m.get("phot_offset_detector_worst_mag") or {}).get("details") or {}).get(
            "groups") or {}
        for det, g in sorted(groups.items()):
            print(f"{band:7s} {det:9s} {g.get('n_sources', 0):6d} "
                  f"{_fmt(g.get('phot_offset_mag'), '+9.4f')} {_fmt(g.get('dx_mas'), '+7.2f')} "
                  f"{_fmt(g.get('dy_mas'), '+7.2f')} {_fmt(g.get('rms_mas'), '8.2f')} "
                  f"{_fmt(g.get('bkg_residual_frac'), '+9.4f')}")


def _sample_memory(stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], psutil.virtual_memory().used / 2**30)
        stop.wait(2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path,
                        default=ROOT / "scenarios" / "cosmos_web_like.yaml")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/cosmos_web_like"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kit-dir", type=Path, default=None)
    parser.add_argument("--summarize", type=Path, default=None, metavar="RUN_DIR")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    cmd = [sys.executable, "-m", "simval.cli", "run", str(args.scenario), "-o",
           str(args.output), "--workers", str(args.workers)]
    if args.kit_dir:
        cmd += ["--kit-dir", str(args.kit_dir)]
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_sample_memory, args=(stop, peak), daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    code = subprocess.run(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL).returncode
    stop.set()
    print(f"simval run exited {code} after {time.perf_counter() - t0:.0f} s (kit included)")
    summarize(args.output, peak[0])


if __name__ == "__main__":
    main()
