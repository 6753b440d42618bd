"""The run report: ``report.html`` in a run directory, and the verdicts of a finished run.

Public API
----------
:func:`write_report` (run directory -> ``report.html``, self-contained),
:func:`load_run` (what a finished run holds: manifest, plan, thresholds, metrics and the
threshold verdicts recomputed from ``metrics.json``), :func:`print_verdicts` (a rich
table, failures first), :func:`report_main` (``simval report RUN_DIR``) and
:func:`format_value` (``+0.031 ± 0.005 mag``).

Modules: :mod:`~simval.report.html` (the HTML document), :mod:`~simval.report.plots`
(matplotlib figures as small embedded PNGs).

Everything here reads files of the run directory (:mod:`simval.run.layout`); nothing needs
the in-memory objects of the run or the evaluation. This module imports neither
matplotlib nor the pipeline, so the pytest plugin and the CLI can use it cheaply.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from simval.metrics_schema import MetricsDocument
    from simval.scenario.inputs import Comparison
    from simval.verdict import Verdict

__all__ = [
    "METRICS_FILE",
    "REPORT_FILE",
    "RunContents",
    "format_value",
    "load_run",
    "print_verdicts",
    "report_main",
    "sort_verdicts",
    "write_report",
]

#: File names inside a run directory.
REPORT_FILE = "report.html"
METRICS_FILE = "metrics.json"


@dataclass
class RunContents:
    """What a run directory holds, read without running anything.

    Attributes
    ----------
    run_dir : Path
        Absolute run directory.
    manifest, plan : dict or None
        ``manifest.json`` and ``plan.json`` as JSON (None if absent or unreadable).
    comparison : simval.scenario.inputs.Comparison or None
        The scenario's ``comparison`` (thresholds, match radius) from ``plan.json``, else
        from ``scenario.yaml``.
    metrics : MetricsDocument or None
        ``metrics.json`` (None if absent or invalid; see ``notes``).
    verdicts : list of Verdict
        Threshold verdicts of ``metrics`` against ``comparison`` (empty without either).
    filters : list of str
        Filters of the run, upper case: the plan's products in plan order, then any other
        filter of ``metrics``.
    products : dict
        filter -> product (mosaic) name.
    notes : list of str
        What is missing or could not be read, one sentence each.
    """

    run_dir: Path
    manifest: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    comparison: Comparison | None = None
    metrics: MetricsDocument | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    products: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def scenario_name(self) -> str:
        """The scenario's name (metrics, plan or manifest; else the directory name)."""
        if self.metrics is not None:
            return self.metrics.scenario_name
        for doc, key in ((self.plan, "scenario_name"), (self.manifest, "scenario")):
            value = (doc or {}).get(key)
            if isinstance(value, dict):
                value = value.get("name")
            if isinstance(value, str) and value:
                return value
        return self.run_dir.name

    @property
    def status(self) -> str:
        """``manifest.json``'s status (``complete``, ``failed``, ``interrupted``), or
        ``unknown`` without a manifest."""
        return str((self.manifest or {}).get("status", "unknown"))

    def product_path(self, band: str, suffix: str) -> Path | None:
        """``image3/<product>/<product><suffix>`` of a filter (None without a product)."""
        name = self.products.get(band.upper())
        return None if name is None else self.run_dir / "image3" / name / f"{name}{suffix}"

    def truth_path(self, band: str) -> Path | None:
        """``truth/<product>_truth.ecsv`` of a filter (None without a product)."""
        name = self.products.get(band.upper())
        return None if name is None else self.run_dir / "truth" / f"{name}_truth.ecsv"


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} cannot be read ({type(exc).__name__}: {exc}).")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name} is not a JSON object.")
        return None
    return data


def _comparison(root: Path, plan: dict[str, Any] | None, notes: list[str]
                ) -> Comparison | None:
    """The scenario's comparison block: plan.json's normalised scenario, else scenario.yaml."""
    from simval.scenario.inputs import Comparison

    raw = ((plan or {}).get("scenario") or {}).get("comparison")
    if raw is None and (root / "scenario.yaml").is_file():
        import yaml

        try:
            doc = yaml.safe_load((root / "scenario.yaml").read_text()) or {}
            raw = doc.get("comparison") if isinstance(doc, dict) else None
        except (OSError, yaml.YAMLError) as exc:
            notes.append(f"scenario.yaml cannot be read ({type(exc).__name__}: {exc}).")
    if raw is None:
        return None
    try:
        return Comparison.model_validate(raw)
    except ValueError as exc:
        notes.append(f"the scenario's comparison block is invalid: {exc}")
        return None


def load_run(run_dir: str | os.PathLike) -> RunContents:
    """Read a run directory's manifest, plan, thresholds and ``metrics.json``.

    The threshold verdicts are recomputed from ``metrics.json`` with
    :func:`simval.verdict.evaluate_thresholds` (baseline verdicts need the baseline run and
    are not recomputed). Missing or unreadable files are recorded in ``notes``; nothing
    raises except a missing directory.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a directory.
    """
    from simval.metrics_schema import MetricsFileError, UnknownMetricError, read_metrics
    from simval.verdict import evaluate_thresholds

    root = Path(run_dir).expanduser().absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run directory")
    out = RunContents(root)
    out.manifest = _read_json(root / "manifest.json", out.notes)
    out.plan = _read_json(root / "plan.json", out.notes)
    out.comparison = _comparison(root, out.plan, out.notes)
    metrics_path = root / METRICS_FILE
    if metrics_path.is_file():
        try:
            out.metrics = read_metrics(metrics_path)
        except MetricsFileError as exc:
            out.notes.append(f"metrics.json is not valid: {exc}")
    else:
        out.notes.append("no metrics.json yet: the run has not been evaluated "
                         "(simval.evaluate.evaluate_run).")

    for p in (out.plan or {}).get("products") or []:
        if isinstance(p, dict) and p.get("filter_name") and p.get("name"):
            out.products[str(p["filter_name"]).upper()] = str(p["name"])
    for band, p in ((out.manifest or {}).get("products") or {}).items():
        if isinstance(p, dict) and p.get("name"):
            out.products.setdefault(str(band).upper(), str(p["name"]))
    prov = (out.metrics.provenance.get("filters") or {}) if out.metrics else {}
    for band, p in prov.items():
        if isinstance(p, dict) and p.get("product"):
            out.products.setdefault(str(band).upper(), str(p["product"]))
    out.filters = list(out.products)
    for band in sorted(out.metrics.filters if out.metrics else ()):
        if band not in out.filters:
            out.filters.append(band)

    if out.metrics is not None and out.comparison is not None and out.comparison.thresholds:
        try:
            out.verdicts = evaluate_thresholds(out.metrics, out.comparison)
        except UnknownMetricError as exc:
            out.notes.append(f"thresholds cannot be applied: {exc}")
    elif out.comparison is None or not out.comparison.thresholds:
        out.notes.append("the scenario sets no thresholds (comparison.thresholds): "
                         "there are no verdicts.")
    return out


def sort_verdicts(verdicts: list[Verdict]) -> list[Verdict]:
    """Failures first, then by filter and metric (as :func:`simval.verdict.verdict_table`)."""
    return sorted(verdicts, key=lambda v: (v.passed, v.filter, v.metric))


def format_value(value: float | None, uncertainty: float | None, unit: str) -> str:
    """``+0.031 ± 0.005 mag``; ``not measured`` for None.

    With an uncertainty, the value is rounded to the uncertainty's second significant
    digit (``0.667 ± 0.061``); without, to 4 significant digits. Differences (unit
    ``mag``, ``mas``, ``MJy/sr``) carry a sign; fractions, ratios, counts and AB magnitudes
    do not.
    """
    import math

    if value is None:
        return "not measured"
    sign = "+" if unit in ("mag", "mas", "MJy/sr") else ""
    if uncertainty is not None and 0 < uncertainty < 1e6 and abs(value) < 1e9:
        decimals = min(max(0, 1 - math.floor(math.log10(uncertainty))), 9)
        text = f"{value:{sign}.{decimals}f} ± {uncertainty:.{decimals}f}"
    else:
        text = f"{value:{sign}.4g}"
        if uncertainty is not None:
            text += f" ± {uncertainty:.2g}"
    return text if unit in ("count", "") else f"{text} {unit}"


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
    """Write ``report.html`` of a run (see :mod:`simval.report.html`); return its path.

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
    from simval.report.html import write_report as _write

    return _write(run_dir, verdicts=verdicts, output=output)


def report_main(run_dir: str | os.PathLike, *, console: Console | None = None,
                evaluate: bool = True) -> int:
    """``simval report RUN_DIR``: (evaluate if needed,) write the report, print verdicts.

    Parameters
    ----------
    run_dir : path
        A run directory.
    console : rich Console, optional
        Where to print (default: stdout).
    evaluate : bool
        If ``metrics.json`` is missing and the run completed, run
        :func:`simval.evaluate.evaluate_run` first (its verdicts, baseline ones excluded,
        are the same as those recomputed from the file).

    Returns
    -------
    int
        0: report written and every verdict passed; 1: the run failed, its evaluation
        failed, or a verdict failed; 2: no such run directory.
    """
    from rich.console import Console

    console = console or Console()
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        console.print(f"[red]{root}: no such run directory[/]")
        return 2
    code = 0
    contents = load_run(root)
    if contents.metrics is None and evaluate and contents.status == "complete":
        from simval.evaluate import evaluate_run

        console.print(f"evaluating {root} (no metrics.json yet)")
        try:
            evaluate_run(root)
        except Exception as exc:  # the report still shows what there is
            console.print(f"[red]evaluation failed: {type(exc).__name__}: {exc}[/]")
            code = 1
        contents = load_run(root)
    if contents.status not in ("complete", "unknown"):
        failed = (contents.manifest or {}).get("failed_stages") or []
        console.print(f"[red]the run is {contents.status}"
                      + (f": failed stages {', '.join(failed)}" if failed else "") + "[/]")
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
