"""Benchmark: the coronagraphic chain stage by stage, cold and with the PSF cache warm.

Run ``python benchmarks/coron_stages.py [--out DIR] [--rolls 2] [--dithers 5]
[--nlambda 4]``. Each stage runs in a fresh process (its peak RSS is the stage's):

1. ``kit``: the coronagraphy kit (:class:`simval.kit.coron_jobs.CoronKitSpec`);
2. ``simulate``: the observation (target at each roll with two companions, PSF reference
   on a small-grid dither; :func:`simval.simulate.coron_observation
   .simulate_coron_observation`), first with an empty PSF cache, then again into a new
   directory with the cache filled: the second run computes no PSF;
3. ``image2``: calwebb_image2 on every rateints;
4. ``coron3``: calwebb_coron3 on the association.

Printed: wall seconds and peak MiB per stage, side by side for the cold and the warm
simulation (these machines are noisy; the ratio is what holds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CHILD = r'''
import json, resource, sys, time
from dataclasses import replace
from pathlib import Path
args = json.loads(sys.argv[1])
out = Path(args["out"])
t0 = time.perf_counter()
from simval.instruments.nircam_coron import get_mask
from simval.kit.build import build_kit
from simval.kit.coron_jobs import CoronKitSpec
mask = get_mask("MASKA335R")
kit = build_kit(CoronKitSpec(seed=7), out / "kits")
info = {}
if args["stage"] == "simulate":
    import numpy as np
    from simval.instruments.detectors import detector_facts
    from simval.kit.coron_psf import CoronOptics, cached_psf, lyot_throughput
    from simval.kit.coron_refs import coron_photmjsr
    from simval.kit.photometry import abmag_to_jy, zeropoint_row
    from simval.simulate.coron_exposure import CoronSetup
    from simval.simulate.coron_observation import Companion, simulate_coron_observation
    from simval.simulate.coron_rateints import CoronReadout
    from simval.simulate.coron_scene import OVERSAMPLE, Source, grid_pixels
    lyot = lyot_throughput()
    facts = detector_facts(mask.detector)
    setup = CoronSetup(zeropoint_row("NRCA5", "F335M", "CLEAR").photfnu,
                       coron_photmjsr(mask.name, "F335M", lyot) * lyot, lyot, 0.2,
                       facts.gain_e_per_dn, facts.readnoise_cds_e)
    waves = list(np.linspace(3.20, 3.52, args["nlambda"]))
    optics = CoronOptics.for_mask(mask, waves, [1.0] * len(waves), wfe_seed=3, wfe_scale=1.0,
                                  fov_pixels=grid_pixels(mask), oversample=OVERSAMPLE)
    computed = []
    def psf_for(o):
        def get(off):
            image, hit = cached_psf(o, off, out / "psf_cache")
            computed.append(not hit)
            return image
        return get
    star = Source(150.0, 2.0, float(abmag_to_jy(8.0)))
    dithers = [(0.0, 0.0), (0.02, 0.0), (-0.02, 0.0), (0.0, 0.02), (0.0, -0.02),
               (0.02, 0.02), (-0.02, -0.02), (0.02, -0.02), (-0.02, 0.02)][:args["dithers"]]
    members = simulate_coron_observation(
        out / args["sim_dir"], mask=mask, star=star,
        companions=[Companion(1.0, 60.0, 1e-4), Companion(2.0, 200.0, 2e-5)],
        rolls_deg=[250.0 + 10.0 * k for k in range(args["rolls"])],
        reference=Source(150.5, 2.3, star.flux_jy), dithers_arcsec=dithers,
        reference_pa_deg=255.0, readout=CoronReadout("MEDIUM8", 10, 3), setup=setup,
        psf_for=psf_for(optics), reference_psf_for=psf_for(replace(optics, wfe_scale=1.05)),
        filter_name="F335M", seed=1)
    info = {"exposures": len(members), "psfs_computed": int(sum(computed)),
            "psfs_read": int(len(computed) - sum(computed))}
    (out / "members.json").write_text(json.dumps(
        [[str(m.products.rateints), m.role] for m in members]))
elif args["stage"] in ("image2", "coron3"):
    from simval import calibrate
    crds = calibrate.CrdsSetup.from_kit(kit, kit.context)
    members = json.loads((out / "members.json").read_text())
    if args["stage"] == "image2":
        cal = [[str(calibrate.image2(Path(p), out / "image2", crds, out / "image2.log")), r]
               for p, r in members]
        (out / "calints.json").write_text(json.dumps(cal))
    else:
        cal = json.loads((out / "calints.json").read_text())
        calibrate.coron3([(Path(p), r) for p, r in cal], "jw00001-o001_t001_nircam_f335m",
                         out / "coron3", crds, out / "coron3.log")
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  **info}))
'''


def _stage(stage: str, out: Path, **extra) -> dict:
    args = {"stage": stage, "out": str(out), **extra}
    run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                         text=True, check=False)
    if run.returncode:
        sys.stderr.write(run.stderr[-3000:])
        raise SystemExit(f"stage {stage} failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_coron"))
    p.add_argument("--rolls", type=int, default=2)
    p.add_argument("--dithers", type=int, default=5, choices=range(1, 10))
    p.add_argument("--nlambda", type=int, default=4)
    a = p.parse_args(argv)
    out = a.out.resolve()
    t0 = time.perf_counter()
    common = {"rolls": a.rolls, "dithers": a.dithers, "nlambda": a.nlambda}
    rows = [("kit", _stage("kit", out, **common))]
    rows.append(("simulate (PSFs computed)", _stage("simulate", out, sim_dir="sim_cold",
                                                    **common)))
    rows.append(("simulate (PSF cache warm)", _stage("simulate", out, sim_dir="sim_warm",
                                                     **common)))
    rows.append(("image2", _stage("image2", out, **common)))
    rows.append(("coron3", _stage("coron3", out, **common)))
    print(f"{'stage':28s} {'wall s':>8s} {'peak MiB':>9s}  notes")
    for name, r in rows:
        notes = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("seconds", "peak_mib"))
        print(f"{name:28s} {r['seconds']:8.1f} {r['peak_mib']:9.0f}  {notes}")
    cold, warm = rows[1][1]["seconds"], rows[2][1]["seconds"]
    print(f"warm / cold simulation: {warm / cold:.2f}; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
