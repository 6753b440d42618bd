"""``simval catalog generate | validate | convert``: input catalogs from the command line.

Errors (an unreadable or invalid catalog, bad options) print one clear message and exit 2;
``validate`` exits 1 when a check fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from simval.atomic import atomic_path
from simval.catalogs import CatalogError, read_catalog_file
from simval.catalogs.bands import BANDS, normalise_band
from simval.catalogs.dream_like import (
    DreamLikeParams,
    generate_box,
    round_for_storage,
    round_generic_for_storage,
)
from simval.catalogs.readers import (
    Field,
    ReadOptions,
    angular_diameter_distance_mpc,
    get_cosmology,
    open_table,
    read_dream,
)
from simval.catalogs.validate import validate_catalog
from simval.console import UsageError, console
from simval.constants import ARCSEC_PER_RAD
from simval.instruments.nircam import wheel_elements
from simval.simulate.mirage_catalogs import write_catalogs
from simval.sky import move_offsets

FORMATS = ("dream", "jaguar", "generic", "mirage")


def add_catalog_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``simval catalog ...`` to the top-level ``subparsers``; returns its parser."""
    cat = subparsers.add_parser("catalog", help="input catalogs: generate a DREaM-like field, "
                                                "validate a mock catalog, convert formats")
    sub = cat.add_subparsers(dest="catalog_command", required=True)

    g = sub.add_parser(
        "generate", help="a seeded DREaM-like field (published counts, redshifts, sizes, "
                         "shapes, colours; docs/catalogs.md)",
        description="Write a dream_like field: DREaM schema (offsets about (0, 0) deg, radii "
                    "in kpc) or, with --schema generic, absolute RA/Dec and radii in arcsec "
                    "(needs --ra/--dec). The output format follows the suffix: .ecsv, .fits, "
                    ".parquet.")
    g.add_argument("output", type=Path)
    g.add_argument("--schema", choices=("dream", "generic"), default="dream")
    g.add_argument("--ra", type=float, default=None, help="field centre RA, deg (generic)")
    g.add_argument("--dec", type=float, default=None, help="field centre Dec, deg (generic)")
    g.add_argument("--width", type=float, default=120.0, help="field width, arcsec")
    g.add_argument("--height", type=float, default=None, help="field height, arcsec "
                                                             "(default: the width)")
    g.add_argument("--mag-limit", type=float, default=28.0, help="galaxy faint limit, AB")
    g.add_argument("--mag-bright", type=float, default=16.0, help="galaxy bright limit, AB")
    g.add_argument("--ref-band", default="F150W", help="band of counts and star magnitudes")
    g.add_argument("--density-scale", type=float, default=1.0,
                   help="multiply the galaxy counts")
    g.add_argument("--n-stars", type=int, default=None,
                   help="number of stars (default: from --star-density)")
    g.add_argument("--star-mag-range", type=float, nargs=2, default=(18.0, 25.0),
                   metavar=("BRIGHT", "FAINT"))
    g.add_argument("--star-density", type=float, default=1.0, help="stars per arcmin^2")
    g.add_argument("--star-isolation", type=float, default=0.0, metavar="ARCSEC",
                   help="keep stars at least this far from galaxy centres and other stars")
    g.add_argument("--bands", default=None, help="comma-separated bands (default: NIRCam "
                                                 "F070W..F444W wide filters)")
    g.add_argument("--cosmology", default="Planck18")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--compact", action="store_true",
                   help="round values to storage precision (positions 1e-8 deg, magnitudes "
                        "1e-4 mag, ...) for small shipped files")
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser("validate", help="compare a mock catalog with reference counts, "
                                        "size-magnitude, colour and redshift relations",
                       description="Writes validation_summary.json, validation_bins.ecsv and "
                                   "plots into --out; exit 1 if a check fails.")
    v.add_argument("catalog", type=Path)
    _read_options(v)
    v.add_argument("--area-arcmin2", type=float, default=None,
                   help="sky area of the catalog (default: from the file's metadata, else the "
                        "bounding box of the positions)")
    v.add_argument("--out", type=Path, default=None,
                   help="output directory (default: <catalog>_validation)")
    v.add_argument("--no-plots", action="store_true")
    v.set_defaults(func=cmd_validate)

    c = sub.add_parser("convert", help="convert between catalog formats",
                       description="Read any supported format and write generic (one table: "
                                   ".ecsv/.fits/.parquet), dream (offsets about --ra/--dec, "
                                   "radii in kpc) or mirage (a directory of MIRAGE ascii "
                                   "catalogs, one pair per band).")
    c.add_argument("catalog", type=Path)
    c.add_argument("output", type=Path)
    _read_options(c)
    c.add_argument("--to", choices=("generic", "dream", "mirage"), default="generic")
    c.set_defaults(func=cmd_convert)
    return cat


def _read_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="dream")
    p.add_argument("--quiescent-file", type=Path, default=None,
                   help="JAGUAR quiescent file (the positional file is the star-forming one)")
    p.add_argument("--bands", default=None,
                   help="comma-separated bands to read (default: all the file has)")
    p.add_argument("--column-map", action="append", default=[], metavar="NAME=COLUMN",
                   help="simval name = file column (repeatable), e.g. ra=RAJ2000")
    p.add_argument("--cosmology", default="Planck18")
    p.add_argument("--mag-limit", type=float, default=None)
    p.add_argument("--positions", choices=("offsets", "absolute"), default=None)
    p.add_argument("--ra", type=float, default=None,
                   help="where offsets land / the dream output's centre, deg")
    p.add_argument("--dec", type=float, default=None)


def _usage(message: str) -> UsageError:
    return UsageError(message)


def _bands(text: str | None) -> list[str] | None:
    if not text:
        return None

    try:
        return [normalise_band(b) for b in text.split(",") if b.strip()]
    except ValueError as err:
        raise _usage(str(err)) from err


def _column_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise _usage(f"--column-map expects NAME=COLUMN, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _file_bands(path: Path, fmt: str) -> list[str]:
    """Bands a file has magnitudes (or JAGUAR fluxes) for."""

    if fmt == "mirage":
        return []
    cols = open_table(path).columns
    upper = {c.upper() for c in cols}
    found = []
    for band in BANDS:
        if band == "F814W":
            continue
        names = {"dream": [band], "jaguar": [f"NRC_{band}_FNU", f"MIRI_{band}_FNU"],
                 "generic": [f"MAG_{band}"]}[fmt]
        if any(n in upper for n in names):
            found.append(band)
    return found


def read_for_cli(args) -> Any:
    """The SourceCatalog a validate/convert command reads."""

    bands = _bands(args.bands) or _file_bands(args.catalog, args.format)
    if not bands:
        if args.format == "mirage":
            raise _usage("--bands is required with --format mirage (e.g. --bands F150W)")
        raise _usage(f"{args.catalog}: found no magnitude columns for known bands; give "
                     "--bands and, if the columns are named differently, --column-map")
    centre = None
    if args.ra is not None or args.dec is not None:
        if args.ra is None or args.dec is None:
            raise _usage("give both --ra and --dec")
        centre = (args.ra, args.dec)
    positions = args.positions or ("offsets" if args.format == "dream" else "absolute")
    if centre is None and positions == "offsets":
        centre = (0.0, 0.0)
    options = ReadOptions(column_map=_column_map(args.column_map), cosmology=args.cosmology,
                          mag_limit=args.mag_limit, positions=args.positions)
    if args.quiescent_file is not None and args.format != "jaguar":
        raise _usage("--quiescent-file goes with --format jaguar")
    return read_catalog_file(args.catalog, args.format, bands, centre=centre, options=options,
                             quiescent_file=args.quiescent_file), bands


def file_area_arcmin2(path: Path) -> float | None:
    """``area_arcmin2`` from a file's metadata (ECSV header or Parquet schema), if any."""
    name = path.name.lower()
    try:
        if name.endswith(".ecsv"):
            from astropy.table import Table

            value = Table.read(path, format="ascii.ecsv").meta.get("area_arcmin2")
            return float(value) if value is not None else None
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq
            import yaml

            meta = pq.read_schema(path).metadata or {}
            text = meta.get(b"table_meta_yaml")
            if text:
                doc = yaml.safe_load(text.decode()) or {}
                value = (doc.get("meta") or {}).get("area_arcmin2")
                return float(value) if value is not None else None
    except Exception:  # metadata is optional; the bounding box is the fallback
        return None
    return None


def _run(fn, args) -> int:
    try:
        return fn(args)
    except (CatalogError, ValueError, OSError) as err:
        if isinstance(err, UsageError):
            raise
        raise _usage(str(err)) from err


def cmd_generate(args) -> int:
    return _run(_generate, args)


def cmd_validate(args) -> int:
    return _run(_validate, args)


def cmd_convert(args) -> int:
    return _run(_convert, args)


def _generate(args) -> int:
    get_cosmology(args.cosmology)
    params = DreamLikeParams(mag_limit=args.mag_limit, mag_bright=args.mag_bright,
                             ref_band=args.ref_band, density_scale=args.density_scale,
                             n_stars=args.n_stars, star_mag_range=tuple(args.star_mag_range),
                             star_density_arcmin2=args.star_density, cosmology=args.cosmology,
                             star_isolation_arcsec=args.star_isolation)
    bands = _bands(args.bands)
    height = args.width if args.height is None else args.height
    suffix = args.output.suffix.lower()
    if suffix not in (".ecsv", ".fits", ".parquet"):
        raise _usage(f"{args.output}: the output must end in .ecsv, .fits or .parquet")
    table = generate_box(args.width, height, seed=args.seed, params=params, bands=bands)
    if args.compact:
        table = round_for_storage(table)
    if args.schema == "dream":
        if args.ra is not None or args.dec is not None:
            raise _usage("the DREaM schema stores offsets about (0, 0) deg: --ra/--dec go with "
                         "--schema generic")
        _write_table(table, args.output)
        what = "DREaM schema (offsets about (0, 0) deg, Re_maj in kpc)"
    else:
        if args.ra is None or args.dec is None:
            raise _usage("--schema generic needs the field centre: --ra and --dec (deg)")

        cat = read_dream(table, list(table.meta["bands"]), field_=Field(args.ra, args.dec),
                         options=ReadOptions(cosmology=args.cosmology))
        cat.meta = {**{k: v for k, v in table.meta.items() if k != "positions"},
                    "positions": "absolute RA/Dec, deg", "centre_deg": [args.ra, args.dec]}
        if args.compact:
            for t in (cat.stars, cat.galaxies):
                round_generic_for_storage(t)
        cat.write_generic(args.output)
        what = f"generic schema centred on RA {args.ra}, Dec {args.dec} (radius in arcsec)"
    n_gal, n_star = table.meta["n_galaxies"], table.meta["n_stars"]
    size = os.path.getsize(args.output)
    console.print(f"{args.output}: {n_gal} galaxies + {n_star} stars over {args.width:g}\" x "
                  f"{height:g}\" ({table.meta['area_arcmin2']:.3f} arcmin^2), seed {args.seed}, "
                  f"{what}; {size / 1000:.1f} kB")
    return 0


def _write_table(table, path: Path) -> None:
    fmt = {".ecsv": "ascii.ecsv", ".fits": "fits", ".parquet": "parquet"}[path.suffix.lower()]
    with atomic_path(path) as tmp:
        if fmt == "fits":
            table = table.copy()
            table.meta = {k: v for k, v in table.meta.items()
                          if isinstance(v, str | int | float)}
        table.write(tmp, format=fmt, overwrite=True)


def _validate(args) -> int:
    from rich.table import Table as RichTable

    cat, bands = read_for_cli(args)
    area = args.area_arcmin2 if args.area_arcmin2 is not None else file_area_arcmin2(
        args.catalog)
    out = args.out or args.catalog.with_name(args.catalog.name.split(".")[0] + "_validation")
    result = validate_catalog(cat, area_arcmin2=area, bands=bands, out_dir=out,
                              label=args.catalog.name, plots=not args.no_plots)
    table = RichTable(title=f"{args.catalog}: {result.summary['n_galaxies']} galaxies, "
                            f"{result.summary['n_stars']} stars, "
                            f"{result.summary['area_arcmin2']} arcmin^2 "
                            f"({result.summary['area']})")
    for col in ("check", "band", "bins judged", "failed", "max |dev|", "rule", "reference"):
        table.add_column(col)
    for c in result.checks:
        dev = "-" if c.n_bins_judged == 0 else f"{c.max_abs_deviation:.3f} {c.unit}"
        table.add_row(c.name, c.band, str(c.n_bins_judged),
                      f"[red]{c.n_bins_failed}" if c.n_bins_failed else "0", dev, c.rule,
                      c.reference)
    console.print(table)
    console.print(f"{'[green]passed' if result.passed else '[red]failed'}[/]; "
                  f"files in {out}: {', '.join(p.name for p in result.files.values())}")
    return 0 if result.passed else 1


def to_dream_table(cat, centre: tuple[float, float], cosmology: str = "Planck18"):
    """A SourceCatalog as a DREaM-schema table: offsets about ``centre`` moved to (0, 0),
    radii in kpc from each galaxy's redshift (galaxies without a redshift > 0 cannot be
    written: CatalogError)."""
    import numpy as np
    from astropy.table import Table

    rows = []
    mags = sorted({c for t in (cat.stars, cat.galaxies) for c in t.colnames
                   if c.startswith("mag_")})
    for kind, t in (("galaxy", cat.galaxies), ("star", cat.stars)):
        if not len(t):
            continue
        out = Table()
        out["ID"] = np.asarray(t["source_id"] if "source_id" in t.colnames else t["index"])
        ra, dec = move_offsets(t["ra"], t["dec"], 0.0, 0.0, origin=centre)
        out["RA"], out["DEC"] = np.where(ra > 180, ra - 360, ra), dec
        out["type"] = np.full(len(t), kind, dtype="U6")
        if kind == "galaxy":
            z = (np.asarray(t["redshift"], dtype=float) if "redshift" in t.colnames
                 else np.full(len(t), np.nan))
            if not (np.isfinite(z) & (z > 0)).all():
                raise CatalogError("the DREaM schema gives radii in kpc: every galaxy needs a "
                                   "redshift > 0 (write --to generic instead)")
            out["redshift"] = z
            out["Re_maj"] = (np.asarray(t["radius"], dtype=float) / ARCSEC_PER_RAD
                             * angular_diameter_distance_mpc(z, cosmology) * 1000.0)
            out["axis_ratio"] = np.asarray(t["axis_ratio"], dtype=float)
            out["sersic_n"] = np.asarray(t["sersic_index"], dtype=float)
            out["PA"] = np.asarray(t["pos_angle"], dtype=float)
        else:
            out["redshift"] = np.zeros(len(t))
            for c in ("Re_maj", "axis_ratio", "sersic_n", "PA"):
                out[c] = np.full(len(t), np.nan)
        for c in mags:
            out[c[4:].upper()] = (np.asarray(t[c], dtype=float) if c in t.colnames
                                  else np.full(len(t), np.nan))
        rows.append(out)
    from astropy.table import vstack

    table = vstack(rows) if rows else Table()
    table.meta.update({"schema": "simval-dream-like/1", "cosmology": cosmology,
                       "positions": f"offsets about (0, 0) deg; centre was {list(centre)}"})
    return table


def _convert(args) -> int:
    cat, bands = read_for_cli(args)
    if args.to == "generic":
        if args.output.suffix.lower() not in (".ecsv", ".fits", ".parquet"):
            raise _usage(f"{args.output}: the output must end in .ecsv, .fits or .parquet")
        cat.write_generic(args.output)
        written = [args.output]
    elif args.to == "dream":
        if args.output.suffix.lower() not in (".ecsv", ".fits", ".parquet"):
            raise _usage(f"{args.output}: the output must end in .ecsv, .fits or .parquet")
        centre = (args.ra, args.dec) if args.ra is not None else _centre(cat)
        _write_table(to_dream_table(cat, centre, args.cosmology), args.output)
        written = [args.output]
    else:
        written = []
        for band in bands:
            stars, galaxies = cat.for_band(band)
            fw, pw = wheel_elements(band)
            paths = write_catalogs(stars, galaxies, args.output,
                                   f"{args.catalog.name.split('.')[0]}_{band.lower()}",
                                   filter_name=fw, pupil=pw)
            written += [p for p in paths if p is not None]
    console.print(f"{args.catalog} ({args.format}): {len(cat.stars)} stars, "
                  f"{len(cat.galaxies)} galaxies -> " + ", ".join(str(p) for p in written))
    return 0


def _centre(cat) -> tuple[float, float]:
    import numpy as np

    ra = np.concatenate([np.asarray(cat.stars["ra"]), np.asarray(cat.galaxies["ra"])])
    dec = np.concatenate([np.asarray(cat.stars["dec"]), np.asarray(cat.galaxies["dec"])])
    ra0 = float(np.degrees(np.angle(np.mean(np.exp(1j * np.radians(ra))))) % 360.0)
    return ra0, float(np.median(dec))
