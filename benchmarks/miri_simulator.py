"""Benchmark: simval's MIRI simulator on one exposure, and where its time goes.

Run ``python benchmarks/miri_simulator.py [--subarray FULL] [--ngroups 60] [--nints 1]
[--stars 200] [--galaxies 200] [--kit-dir DIR] [--out DIR]``. Builds (or reuses) a MIRI
kit for F770W, simulates one exposure of a random field through
:func:`simval.simulate.miri_exposure.simulate_miri_exposure` in a fresh process (its peak
RSS is the exposure's), and prints the wall time, the peak memory and a cProfile
breakdown by function (cumulative time of the top entries). The goal set for the
simulator: no more than MIRAGE's cost per pixel-read on NIRCam (a FULL exposure of 4.2
Mpixel x 24 frames in ~48 s), i.e. at most ~30 s for FULL x 60 groups.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CHILD = r'''
import cProfile, io, json, pstats, resource, sys, time
from pathlib import Path
import numpy as np
from simval.instruments import miri
from simval.instruments.miri_detector import MiriEffects, Readout
from simval.kit.build import build_kit
from simval.kit.miri_jobs import MiriKitSpec
from simval.pointing import attitude_at_pa_v3
from simval.simulate.miri_exposure import MiriSources, simulate_miri_exposure
from simval.simulate.miri_scene import MiriCalibration
from simval.simulate.miri_uncal import MiriExposure, miri_aperture

args = json.loads(sys.argv[1])
kit = build_kit(MiriKitSpec(filters=("F770W",), readouts=(Readout("SUB256", "FASTR1", 10, 1),)),
                args["kit_dir"])
readout = Readout(args["subarray"], "FASTR1", args["ngroups"], args["nints"])
ap = miri_aperture(readout.subarray)
att = attitude_at_pa_v3(ap.V2Ref, ap.V3Ref, 150.1, 2.2, 70.0)
rng = np.random.default_rng(1)
half = 0.5 * ap.XSciSize * 0.11 / 3600
def pos(n):
    return (150.1 + rng.uniform(-half, half, n) / np.cos(np.radians(2.2)),
            2.2 + rng.uniform(-half, half, n))
sra, sdec = pos(args["stars"])
gra, gdec = pos(args["galaxies"])
ng = args["galaxies"]
sources = MiriSources(star_ra=sra, star_dec=sdec, star_mag=rng.uniform(16, 24, len(sra)),
                      star_index=np.arange(1, len(sra) + 1), gal_ra=gra, gal_dec=gdec,
                      gal_mag=rng.uniform(17, 24, ng), gal_radius=rng.uniform(0.1, 1.0, ng),
                      gal_ellipticity=rng.uniform(0, 0.7, ng),
                      gal_pos_angle=rng.uniform(0, 180, ng),
                      gal_sersic=rng.uniform(0.5, 4, ng),
                      gal_index=np.arange(10001, 10001 + ng))
cal = MiriCalibration.from_kit(kit, "F770W")
out = Path(args["out"])
prof = cProfile.Profile()
t0 = time.perf_counter()
prof.enable()
simulate_miri_exposure(out, "jw00001001001_01101_00001_mirimage", cal=cal,
                       detector_seed=kit.spec.seed, exposure=MiriExposure("F770W", 60000.5),
                       readout=readout, attitude=att, sources=sources, sky_mjy_sr=2.0, seed=3,
                       effects=MiriEffects())
prof.disable()
wall = time.perf_counter() - t0
s = io.StringIO()
pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": wall, "peak_mb": peak, "profile": s.getvalue()}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subarray", default="FULL")
    parser.add_argument("--ngroups", type=int, default=60)
    parser.add_argument("--nints", type=int, default=1)
    parser.add_argument("--stars", type=int, default=200)
    parser.add_argument("--galaxies", type=int, default=200)
    parser.add_argument("--kit-dir", type=Path, default=Path("bench_miri") / "kits")
    parser.add_argument("--out", type=Path, default=Path("bench_miri") / "exposure")
    args = parser.parse_args()
    params = {"subarray": args.subarray, "ngroups": args.ngroups, "nints": args.nints,
              "stars": args.stars, "galaxies": args.galaxies,
              "kit_dir": str(args.kit_dir.resolve()), "out": str(args.out.resolve())}
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(params)],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(run.stderr[-3000:])
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"MIRI {args.subarray} x {args.ngroups} groups x {args.nints} int, "
          f"{args.stars} stars + {args.galaxies} galaxies: simulate {doc['wall_s']:.1f} s, "
          f"peak {doc['peak_mb']:.0f} MiB (process incl. kit check: "
          f"{time.perf_counter() - t0:.1f} s)")
    print(doc["profile"])


if __name__ == "__main__":
    main()
