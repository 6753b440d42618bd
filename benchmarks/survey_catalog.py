"""Benchmark: a survey-sized catalog (10^5 sources) through catalog, matching, metrics, report.

Run ``python benchmarks/survey_catalog.py [--n 100000] [--out DIR]``. Side by side, in one
run of this script, for ``--n`` sources and for a tenth of them (the ratio shows how each
part scales):

1. ``catalog``: the ``dream_like`` generator over the COSMOS-Web-like block's footprint
   (``scenarios/cosmos_web_like.yaml``, its closure grid included) with the galaxy density
   scaled to give about ``--n`` sources, written as the catalog stage writes it
   (``stars.ecsv`` + ``galaxies.ecsv``), and read back as every simulate stage reads it;
2. ``match + catalog metrics``: a finished synthetic run (:func:`simval.testing.make_fake_run`:
   a truth table of ``--n`` sources on a 3000 x 3000 mosaic, a measured catalog with known
   errors) evaluated through simval's own matching and metric code (the part of
   :func:`simval.testing.make_fake_run` timed here is :func:`simval.testing.write_evaluation`);
3. ``report``: ``report.html`` written for that run (:func:`simval.report.write_report`).

Prints each part's wall time and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml
from astropy.table import Table

from simval import testing
from simval.catalogs import make_catalog
from simval.catalogs.model import GALAXY_FILE, STAR_FILE
from simval.plan import make_plan
from simval.report import write_report
from simval.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[1]
#: Sources the COSMOS-Web-like block's generator gives at density_scale 1 (measured).
BLOCK_SOURCES = 10_600


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def _timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"  {label:34s} {time.perf_counter() - t0:7.2f} s   peak {_peak_mb():6.0f} MB",
          flush=True)
    return out


def catalog_part(n: int, out: Path) -> None:
    data = yaml.safe_load((ROOT / "scenarios" / "cosmos_web_like.yaml").read_text())
    data["catalog"]["generator"]["density_scale"] = n / BLOCK_SOURCES
    scaled = validate_scenario(data, base_dir=ROOT / "scenarios")
    plan = _timed("plan (160 exposures)", lambda: make_plan(scaled))
    cat = _timed("catalog: generate", lambda: make_catalog(scaled, plan))
    print(f"    {len(cat.stars)} stars, {len(cat.galaxies)} galaxies")
    _timed("catalog: write ECSV", lambda: cat.write(out))
    _timed("catalog: read ECSV (per exposure)",
           lambda: (Table.read(out / STAR_FILE), Table.read(out / GALAXY_FILE)))


def evaluation_part(n: int, out: Path) -> None:
    n_stars = n // 5
    spent = []
    real = testing.write_evaluation

    def timed_evaluation(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    testing.write_evaluation = timed_evaluation
    try:
        run = _timed("synthetic run (fixture + evaluation)", lambda: testing.make_fake_run(
            out / "run", bands=("F115W", "F150W", "F277W", "F444W"), shape=(3000, 3000),
            truth_options={"n_stars": n_stars, "n_galaxies": n - n_stars,
                           "mag_range": (18, 29)}))
    finally:
        testing.write_evaluation = real
    print(f"  {'match + catalog metrics (4 bands)':34s} {sum(spent):7.2f} s")
    _timed("report.html", lambda: write_report(run))
    size = (run / "report.html").stat().st_size / 1e6
    print(f"    report.html {size:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="simval-survey-"))
    for n in (args.n // 10, args.n):
        print(f"{n} sources:")
        out = base / f"n{n}"
        out.mkdir(parents=True, exist_ok=True)
        catalog_part(n, out)
        evaluation_part(n, out)


if __name__ == "__main__":
    main()
