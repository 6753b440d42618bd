"""``simval compare RUN_A RUN_B [RUN_C ...]``: the command line of :mod:`simval.compare`.

Exit codes: 0 every requested check passed (or none was requested); 1 a check failed (a
metric moved by more than its ``--tolerance``, or the median flux ratio is further from 1
than ``--fail-on-flux-ratio``); 2 bad input (not a run directory, no metrics.json,
different filters, an unknown metric...).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simval.compare import (
    CompareInputError,
    compare_runs,
    default_output,
    parse_tolerances,
    write_compare,
)
from simval.compare.core import ratio_text
from simval.console import UsageError, console, err_console
from simval.report.rundir import load_run
from simval.run.evaluation import EvaluationError, ensure_evaluated

__all__ = ["add_compare_parser", "cmd_compare"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def add_compare_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command to the ``simval`` parser."""
    p = sub.add_parser(
        "compare", help="compare finished runs (pipeline versions, CRDS contexts, "
                        "parameters); exit 1 if a --tolerance check fails",
        description="Compare each run with the first (A): metrics B - A with uncertainties, "
                    "flux ratio of the same sources, mosaics pixel by pixel, and what "
                    "differs in the manifests. Writes compare.html and compare.json.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="run directories with metrics.json, reference first (at least two)")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="OUT_DIR",
                   help="output directory (default: compare/<A>_vs_<B>)")
    p.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                   help="fail (exit 1) if |B - A| of METRIC exceeds VALUE (metric unit) in "
                        "any filter; repeatable")
    p.add_argument("--fail-on-flux-ratio", type=float, default=None, metavar="X",
                   help="fail (exit 1) if |median flux ratio B/A - 1| > X (sources with "
                        "S/N > 20 in A), e.g. 0.01")
    p.add_argument("--filter", action="append", default=None, metavar="FILTER",
                   help="compare only this filter (repeatable; every run must have it)")
    p.add_argument("--n-boot", type=_positive_int, default=200, metavar="N",
                   help="bootstrap resamples (default: %(default)s; 0: no bootstrap)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--snr-min", type=float, default=20.0,
                   help="S/N cut in A of the flux and pixel ratios (default: 20)")
    p.add_argument("--flux-column", default="aper_total_flux",
                   help="catalog flux column of the flux ratio (default: aper_total_flux)")
    p.add_argument("--diff-fits", action="store_true",
                   help="also write the difference images diff_<FILTER>.fits")
    p.add_argument("--no-pixels", action="store_true",
                   help="skip the pixel-level mosaic comparison")
    p.add_argument("--evaluate", action="store_true",
                   help="evaluate runs without metrics.json first (writes it into them)")
    p.set_defaults(func=cmd_compare)
    return p


def _summary(result, console) -> None:
    from rich.table import Table

    for pair in result.pairs:
        table = Table(title=f"{pair.b.label} {pair.b.name} vs {pair.a.label} {pair.a.name}",
                      title_justify="left", header_style="bold")
        for col in ("filter", "flux ratio B/A (S/N>20)", "pixel ratio B/A", "sky B - A",
                    "changed reference types"):
            table.add_column(col)
        prov = pair.provenance
        reftypes = ", ".join(prov.reftypes_changed) if prov and prov.reftypes_changed else "-"
        for band, fc in pair.filters.items():
            cat, pix = fc.catalog, fc.pixels
            flux = "-" if cat is None or cat.median_ratio is None else \
                f"{ratio_text(cat.median_ratio, cat.uncertainty)} (n={cat.n})"
            if pix is None:
                pixel, sky = "-", "-"
            elif not pix.same_grid:
                pixel, sky = "different grids", "-"
            else:
                pixel = "-" if pix.ratio_median is None else f"{pix.ratio_median:.5f}"
                sky = "-" if pix.diff_median_mjysr is None else \
                    f"{pix.diff_median_mjysr:+.3g} MJy/sr"
            table.add_row(band, flux, pixel, sky, reftypes)
        console.print(table)
        for v in pair.verdict_changes:
            console.print(f"  verdict changed: {v.metric}[{v.filter}] "
                          f"{'PASS' if v.a_passed else 'FAIL'} -> "
                          f"{'PASS' if v.b_passed else 'FAIL'} ({v.limit})")
    for c in sorted(result.checks, key=lambda c: c.passed):
        colour = "green" if c.passed else "red"
        console.print(f"[{colour}]{'PASS' if c.passed else 'FAIL'}[/] {c.message}")


def cmd_compare(args) -> int:
    """Run the comparison, write the outputs, print a summary; return the exit code."""

    try:
        if len(args.runs) < 2:
            raise CompareInputError("give at least two run directories (RUN_A RUN_B ...)")
        tolerances = parse_tolerances(args.tolerance)
        if args.fail_on_flux_ratio is not None and not args.fail_on_flux_ratio >= 0:
            raise CompareInputError(f"--fail-on-flux-ratio must be >= 0, got "
                                    f"{args.fail_on_flux_ratio}")
        if args.evaluate:
            _evaluate(args.runs)
        with err_console.status("comparing runs"):
            result = compare_runs(args.runs, tolerances=tolerances,
                                  fail_on_flux_ratio=args.fail_on_flux_ratio,
                                  filters=args.filter, n_boot=args.n_boot, seed=args.seed,
                                  snr_min=args.snr_min, flux_column=args.flux_column,
                                  pixels=not args.no_pixels)
    except CompareInputError as exc:
        raise UsageError(str(exc)) from exc
    out = args.output or default_output(result.runs)
    written = write_compare(result, out, diff_fits=args.diff_fits)
    _summary(result, console)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"compare: {written['compare.html']}  json: {written['compare.json']}")
    if result.checks:
        failed = sum(not c.passed for c in result.checks)
        console.print(f"[bold red]{failed} of {len(result.checks)} checks FAILED[/]" if failed
                      else f"[bold green]all {len(result.checks)} checks passed[/]")
    return result.exit_code


def _evaluate(paths: list[str]) -> None:
    """``--evaluate``: bring every complete run's evaluation up to date first (an entry
    point, like :mod:`simval.cli`: it may drive the run layer)."""

    for path in paths:
        if Path(path).is_dir() and load_run(path).status == "complete":
            try:
                ensure_evaluated(path)
            except (EvaluationError, FileNotFoundError) as exc:
                raise CompareInputError(f"{path}: cannot be evaluated: {exc}") from exc
