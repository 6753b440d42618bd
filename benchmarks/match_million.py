"""Benchmark: match a 10^6-source synthetic catalog against itself perturbed.

Run ``python benchmarks/match_million.py [--n 1000000] [--noise-mas 20] [--area-deg2 1]``.
Prints, for ``prefer="distance"`` and ``prefer="magnitude"``: wall time, the increase of
the process's peak resident memory during the match (``ru_maxrss``), the fraction matched,
and the fraction matched to the right source.

Sources are uniform in a square of ``area_deg2`` at Dec -27.8 (the quickstart field);
magnitudes uniform in 18-30 AB; the perturbed copy gets Gaussian offsets of
``noise_mas`` per axis and 0.05 mag of magnitude noise. The match radius is 100 mas.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 1024.0**2


def main(argv: list[str] | None = None) -> None:
    from simval.match import match_sky

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--noise-mas", type=float, default=20.0)
    p.add_argument("--area-deg2", type=float, default=1.0)
    p.add_argument("--radius-mas", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    side = np.sqrt(args.area_deg2)
    dec0 = -27.8
    dec = dec0 + (rng.random(args.n) - 0.5) * side
    ra = 53.16 + (rng.random(args.n) - 0.5) * side / np.cos(np.radians(dec0))
    mag = rng.uniform(18.0, 30.0, args.n)
    sig = args.noise_mas / 3.6e6
    dec2 = dec + rng.normal(0.0, sig, args.n)
    ra2 = ra + rng.normal(0.0, sig, args.n) / np.cos(np.radians(dec))
    mag2 = mag + rng.normal(0.0, 0.05, args.n)
    perm = rng.permutation(args.n)  # the measured catalog in another order
    ra2, dec2, mag2 = ra2[perm], dec2[perm], mag2[perm]

    density = args.n / (args.area_deg2 * 3600.0)
    print(f"n = {args.n}, area = {args.area_deg2} deg2 ({density:.0f} per arcmin2), "
          f"noise = {args.noise_mas} mas per axis, radius = {args.radius_mas} mas")
    print(f"baseline peak RSS: {_peak_rss_mb():.0f} MB")
    for prefer in ("distance", "magnitude"):
        before = _peak_rss_mb()
        t0 = time.perf_counter()
        res = match_sky(ra2, dec2, ra, dec, args.radius_mas, prefer=prefer,
                        measured_mag=mag2, truth_mag=mag)
        dt = time.perf_counter() - t0
        after = _peak_rss_mb()
        right = np.mean(perm[res.measured_index] == res.truth_index)
        print(f"prefer={prefer:9s}: {dt:6.2f} s, peak RSS {after:.0f} MB "
              f"(+{after - before:.0f} MB), matched {res.n_pairs / args.n:.4%}, "
              f"right counterpart {right:.4%}, median sep "
              f"{np.median(res.separation_mas):.1f} mas")


if __name__ == "__main__":
    main()
