"""The run report: ``report.html`` in a run directory, and the verdicts of a finished run.

Public API
----------
:func:`write_report` (run directory -> ``report.html``, self-contained),
:func:`load_run` (what a finished run holds: manifest, plan, thresholds, metrics and the
threshold verdicts recomputed from ``metrics.json``), :func:`print_verdicts` (a rich
table, failures first), :func:`report_main` (``simval report RUN_DIR``) and
:func:`format_value` (``+0.031 ± 0.005 mag``).

Modules: :mod:`~simval.report.rundir` (reading a run directory),
:mod:`~simval.report.html` (the HTML document), :mod:`~simval.report.plots` (matplotlib
figures as small embedded PNGs).

Everything here reads files of the run directory (:mod:`simval.layout`); nothing needs
the in-memory objects of the run or the evaluation. This module imports neither
matplotlib nor the pipeline, so the pytest plugin and the CLI can use it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from simval.report.html import write_report as _write
from simval.report.rundir import (
    FilterInputs,
    RunContents,
    filter_inputs,
    format_value,
    load_run,
    sort_verdicts,
)

if TYPE_CHECKING:
    from rich.console import Console

    from simval.verdict import Verdict

__all__ = [
    "REPORT_FILE",
    "FilterInputs",
    "RunContents",
    "filter_inputs",
    "format_value",
    "load_run",
    "print_verdicts",
    "report_main",
    "sort_verdicts",
    "write_report",
]

#: The report's file name inside a run directory.
REPORT_FILE = "report.html"  # RunLayout.report


def print_verdicts(verdicts: list[Verdict], console: Console) -> None:
    """Print verdicts as a rich table (failures first, coloured) with a one-line summary.

    Columns: filter, metric, value ± uncertainty (unit), limit, n, result.
    """
    from rich.table import Table

    if not verdicts:
        console.print("[dim]no verdicts (the scenario sets no thresholds)[/dim]")
        return
    table = Table(title="simval verdicts", title_justify="left", header_style="bold")
    for name, kw in (("filter", {}), ("metric", {}), ("value", {"justify": "right"}),
                     ("limit", {}), ("n", {"justify": "right"}), ("result", {})):
        table.add_column(name, **kw)
    for v in sort_verdicts(verdicts):
        result = "[bold green]PASS[/]" if v.passed else "[bold red]FAIL[/]"
        kind = "" if v.kind == "threshold" else f" ({v.kind})"
        table.add_row(v.filter, v.metric + kind, format_value(v.value, v.uncertainty, v.unit),
                      v.limit, str(v.n), result, style=None if v.passed else "red")
    console.print(table)
    failed = sum(not v.passed for v in verdicts)
    if failed:
        console.print(f"[bold red]{failed} of {len(verdicts)} checks FAILED[/]")
    else:
        console.print(f"[bold green]all {len(verdicts)} checks passed[/]")


def write_report(run_dir: str | os.PathLike, *, verdicts: list[Verdict] | None = None,
                 output: str | os.PathLike | None = None) -> Path:
    """Write ``report.html`` of a run and ``report.json`` beside it (see
    :mod:`simval.report.html`); return the HTML file's path.

    Parameters
    ----------
    run_dir : path
        The run directory.
    verdicts : list of Verdict, optional
        Verdicts to show (e.g. ``EvaluationResult.verdicts``, with baseline verdicts);
        default: the threshold verdicts recomputed from ``metrics.json``.
    output : path, optional
        Where to write (default ``run_dir/report.html``).
    """

    return _write(run_dir, verdicts=verdicts, output=output)


def report_main(run_dir: str | os.PathLike, *, console: Console | None = None) -> int:
    """``simval report RUN_DIR``: write the report and print the verdicts (the CLI first
    makes sure the run is evaluated: :func:`simval.run.evaluation.ensure_evaluated`).

    Returns
    -------
    int
        0: report written and every verdict passed; 1: the run failed, it has no valid
        ``metrics.json``, or a verdict failed; 2: no such run directory.
    """
    from rich.console import Console

    console = console or Console()
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        console.print(f"[red]{root}: no such run directory[/]")
        return 2
    code = 0
    contents = load_run(root)
    if contents.status not in ("complete", "unknown"):
        failed = (contents.manifest or {}).get("failed_stages") or []
        console.print(f"[red]the run is {contents.status}"
                      + (f": failed stages {', '.join(failed)}" if failed else "") + "[/]")
        code = 1
    if contents.metrics is None:
        code = 1
    path = write_report(root, verdicts=contents.verdicts)
    print_verdicts(contents.verdicts, console)
    for note in contents.notes:
        if "sets no thresholds" not in note:  # print_verdicts says so
            console.print(f"[yellow]note:[/] {note}")
    console.print(f"report: {path}")
    if any(not v.passed for v in contents.verdicts):
        code = 1
    return code
