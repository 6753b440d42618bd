"""Benchmark: read a 10^7-row DREaM-style catalog and cut it to the quickstart footprint.

Run ``python benchmarks/catalog_read.py [--rows 10000000] [--format parquet|fits]
[--dir DIR] [--keep]``.

1. Writes a DREaM-style file (positions uniform over 1 deg^2 of offsets about (0, 0),
   redshift, Re_maj (kpc), axis ratio, Sersic index, PA and five NIRCam AB magnitudes) in
   chunks of 10^6 rows (Parquet row groups, or a FITS binary table).
2. In a fresh child process (so that its peak RSS is the read's own), reads it with
   ``read_catalog_file(..., 'dream', ['F115W', 'F150W'], plan=<quickstart plan>,
   options=ReadOptions(mag_limit=28))``: the streamed footprint pre-cut, magnitude limit and
   conversion of the survivors.

Prints the write time, file size, the read's wall and CPU time, the child's peak RSS (VmHWM)
before and after the read (imports and the plan included in "before"), the peak of numpy
allocations traced by tracemalloc during the read, and the rows kept. pyarrow's own buffers
are not seen by tracemalloc; the RSS covers them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BANDS = ("F115W", "F150W", "F200W", "F277W", "F444W")
CHUNK = 1_000_000


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image, MB: VmHWM on Linux (ru_maxrss would
    include the parent's peak from before the child's exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 1024.0**2


def _chunk(rng: np.random.Generator, start: int, n: int) -> dict[str, np.ndarray]:
    """n DREaM-style rows: 1 deg^2 of offsets, magnitudes 20-31 AB (steep counts)."""
    half = 0.5
    mag = 31.0 - 11.0 * rng.power(4.0, n)  # more faint than bright sources
    cols = {
        "ID": np.arange(start + 1, start + n + 1, dtype=np.int64),
        "RA": rng.uniform(-half, half, n),
        "DEC": rng.uniform(-half, half, n),
        "redshift": rng.uniform(0.1, 8.0, n).astype(np.float32),
        "Re_maj": (10 ** rng.normal(0.2, 0.3, n)).astype(np.float32),
        "axis_ratio": rng.uniform(0.2, 1.0, n).astype(np.float32),
        "sersic_n": rng.uniform(0.8, 4.0, n).astype(np.float32),
        "PA": rng.uniform(0.0, 180.0, n).astype(np.float32),
    }
    for i, band in enumerate(BANDS):
        cols[band] = (mag + 0.1 * i + rng.normal(0.0, 0.2, n)).astype(np.float32)
    return cols


def write_file(path: Path, rows: int, fmt: str, seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        for start in range(0, rows, CHUNK):
            cols = _chunk(rng, start, min(CHUNK, rows - start))
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        writer.close()
    else:
        from astropy.io import fits

        first = _chunk(rng, 0, min(CHUNK, rows))
        coldefs = fits.ColDefs([fits.Column(name=k, array=v,
                                            format="K" if v.dtype == np.int64 else
                                            ("D" if v.dtype == np.float64 else "E"))
                                for k, v in first.items()])
        hdu = fits.BinTableHDU.from_columns(coldefs, nrows=rows)
        for start in range(0, rows, CHUNK):
            cols = first if start == 0 else _chunk(rng, start, min(CHUNK, rows - start))
            for k, v in cols.items():
                hdu.data[k][start:start + len(v)] = v
        hdu.writeto(path, overwrite=True)
    return time.perf_counter() - t0


def child(path: str) -> None:
    """Run in a fresh process: read + cut, report as JSON on stdout."""
    import tracemalloc

    from simval import offline

    offline.configure()
    from simval.catalogs import read_catalog_file
    from simval.catalogs.readers import ReadOptions
    from simval.plan import make_plan
    from simval.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    plan = make_plan(load_scenario(root / "scenarios" / "quickstart.yaml"))
    from simval.catalogs.simple import Footprint

    Footprint.of_plan(plan).contains([plan.ra_deg], [plan.dec_deg])  # SIAF loaded
    # Imports the read needs once per process (~1.5 s: pyarrow, pandas via pyarrow, scipy,
    # astropy.cosmology), done first so that the timing below is the read itself.
    import astropy.cosmology  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.interpolate  # noqa: F401

    from simval.catalogs.cosmology import get_cosmology

    get_cosmology("Planck18")
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    before = _peak_rss_mb()
    tracemalloc.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    cat = read_catalog_file(path, "dream", ["F115W", "F150W"], plan=plan,
                            options=ReadOptions(mag_limit=28.0))
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "rss_before_mb": before,
                      "rss_after_mb": _peak_rss_mb(),
                      "tracemalloc_peak_mb": traced_peak / 2**20,
                      "rows_in_file": cat.meta["rows_in_file"],
                      "galaxies_kept": len(cat.galaxies), "drops": cat.meta["drops"]}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--format", choices=("parquet", "fits"), default="parquet")
    p.add_argument("--dir", type=Path, default=None, help="where to write the file")
    p.add_argument("--keep", action="store_true", help="keep the file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child)
        return
    directory = args.dir or Path(tempfile.mkdtemp(prefix="simval-catbench-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"dream_{args.rows}.{'parquet' if args.format == 'parquet' else 'fits'}"
    try:
        t_write = write_file(path, args.rows, args.format)
        size = path.stat().st_size
        print(f"wrote {args.rows} rows to {path} ({size / 1e6:.0f} MB) in {t_write:.1f} s")
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                             capture_output=True, text=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        grow = res["rss_after_mb"] - res["rss_before_mb"]
        print(f"read + footprint cut + mag limit 28: {res['wall_s']:.2f} s wall, "
              f"{res['cpu_s']:.2f} s CPU; "
              f"peak RSS {res['rss_before_mb']:.0f} MB before the read (imports, plan), "
              f"{res['rss_after_mb']:.0f} MB after (+{grow:.0f} MB); "
              f"tracemalloc peak {res['tracemalloc_peak_mb']:.0f} MB")
        print(f"rows in file {res['rows_in_file']}, galaxies kept {res['galaxies_kept']}, "
              f"drops {res['drops']}")
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            if args.dir is None:
                os.rmdir(directory)


if __name__ == "__main__":
    main()
